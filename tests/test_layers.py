"""The imports follow the layers (docs/architecture.md), read from the source with `ast`.

Data flows one way: API client → collectors → state → snapshot → exposition, with the web layer
on top. In imports, a layer may use only the layers listed for it below; the composition root
(`exporter.components`) is the one module that knows every part, and only the entry points
use it. The simulator stands apart: only the demo wiring and the CLI start it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "exporter"

# Each layer, by module name prefix (the longest prefix wins), ...
LAYERS = {
    "exporter": "foundation",  # the package itself: its version
    "exporter.durations": "foundation",
    "exporter.logs": "foundation",
    "exporter.log_tail": "foundation",  # what a step-log reader hands the web layer
    "exporter.settings": "foundation",
    "exporter.catalog": "foundation",  # the metric catalog, read by every layer naming one
    "exporter.sharding": "foundation",  # which projects this replica owns, read by settings too
    "exporter.webhook_outcome": "foundation",  # what apply_event hands the webhook receiver
    "exporter.circleci": "client",
    "exporter.state": "state",
    "exporter.collect": "collect",
    "exporter.metrics": "exposition",
    "exporter.web": "web",
    "exporter.components": "composition root",
    "exporter.service": "entry point",
    "exporter.webhook_sync": "entry point",
    "exporter.demo": "entry point",
    "exporter.cli": "entry point",
    "exporter.__main__": "entry point",
    "exporter.settings_doc": "entry point",
    "exporter.healthcheck": "entry point",  # `python -m exporter.healthcheck`, the container check
    "exporter.backfill": "entry point",  # `circleci-exporter backfill`, a command of its own
    "exporter.simulator": "simulator",
}
# ... and the layers it may import (besides its own).
MAY_IMPORT = {
    "foundation": set(),
    "client": {"foundation"},
    "state": {"foundation"},
    "collect": {"foundation", "client", "state"},
    "exposition": {"foundation", "state"},
    "web": {"foundation", "state", "exposition"},
    "composition root": {"foundation", "client", "state", "collect", "exposition", "web"},
    "entry point": {
        "foundation",
        "client",
        "state",
        "collect",
        "exposition",
        "web",
        "composition root",
        "entry point",
    },
    "simulator": set(),
}
# The simulator is a fake CircleCI: only these start it.
SIMULATOR_USERS = {"exporter.demo", "exporter.cli"}
# HTTP clients outside exporter/circleci/ that do not speak to CircleCI.
OTHER_HTTP = {"exporter.backfill.command": "reads the live exporter's own /metrics"}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    candidates = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(candidates, key=len)]


def imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module the file imports, at any depth (lazy and TYPE_CHECKING imports too)."""
    package = module_name(path if path.name == "__init__.py" else path.parent, root)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from exporter.x import y` may name a module y.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(path): imports(path) for path in SOURCES}


def exporter_modules(names: set[str]) -> set[str]:
    """The imported names that are modules of the package."""
    return {name for name in names if name in MODULES}


def test_every_module_has_a_layer() -> None:
    assert len(MODULES) > 50
    for module in MODULES:
        assert layer_of(module) in MAY_IMPORT, module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_it_may_not(module: str) -> None:
    layer = layer_of(module)
    allowed = MAY_IMPORT[layer] | {layer} | ({"simulator"} if module in SIMULATOR_USERS else set())
    wrong = sorted(
        f"{target} ({layer_of(target)})"
        for target in exporter_modules(MODULES[module])
        if layer_of(target) not in allowed
    )
    assert not wrong, f"{module} ({layer}) imports {', '.join(wrong)}"


def test_the_web_layer_reaches_collectors_only_through_the_composition_root() -> None:
    for module, names in MODULES.items():
        if layer_of(module) == "web":
            reached = {layer_of(t) for t in exporter_modules(names)}
            assert not reached & {"collect", "client", "composition root"}, module


def test_only_the_client_speaks_http_to_circleci() -> None:
    """httpx is the client's; the simulator (a fake CircleCI sending webhooks) stands apart, and
    OTHER_HTTP names each other user and whom it talks to."""
    users = {
        module
        for module, names in MODULES.items()
        if any(name == "httpx" or name.startswith("httpx.") for name in names)
    }
    assert users, "the client uses httpx"
    others = {module for module in users if layer_of(module) not in ("client", "simulator")}
    assert others == set(OTHER_HTTP), sorted(others)


def test_the_simulator_is_started_only_by_the_demo_wiring() -> None:
    users = {
        module
        for module, names in MODULES.items()
        if layer_of(module) != "simulator"
        and any(layer_of(t) == "simulator" for t in exporter_modules(names))
    }
    assert users <= SIMULATOR_USERS, sorted(users - SIMULATOR_USERS)


def test_the_composition_root_is_used_only_by_the_entry_points() -> None:
    users = {
        module
        for module, names in MODULES.items()
        if "exporter.components" in names and module != "exporter.components"
    }
    assert users and {layer_of(m) for m in users} == {"entry point"}, sorted(users)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The reader finds imports in functions and relative imports, so the rules can fail."""
    web = tmp_path / "exporter" / "web"
    web.mkdir(parents=True)
    (web / "__init__.py").write_text("")
    bad = web / "bad.py"
    bad.write_text("def f():\n    from ..collect import live\n    import httpx\n")
    found = imports(bad, tmp_path)
    assert {"exporter.collect", "exporter.collect.live", "httpx"} <= found
    assert module_name(bad, tmp_path) == "exporter.web.bad"
    assert layer_of("exporter.collect.live") not in MAY_IMPORT[layer_of("exporter.web.bad")]
