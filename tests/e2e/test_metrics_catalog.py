"""Every `# HELP` and `# TYPE` line a running `circleci-exporter --demo` serves on /metrics, in both
exposition formats, is the catalog's: the catalog is the only place a metric is named and
described, including the self-metrics the API client, collectors and webhook receiver keep."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from exporter.catalog import BY_NAME
from tests.conftest import running_demo
from tests.rules.binaries import wait_until

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
_HEADER = re.compile(r"^# (?P<what>HELP|TYPE) (?P<name>\S+) (?P<text>.*)$")
# One family of each part of the exporter that names metrics: live collection (state), the
# Insights sweep, the exporter's own gauges, and the process registry of the API client.
MUST_APPEAR = (
    "circleci_workflow_status",
    "circleci_insights_workflow_runs",
    "circleci_up",
    "circleci_exporter_api_requests_total",
    "circleci_exporter_collect_duration_seconds",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`circleci-exporter --demo` on a free port, once its first Insights sweep is served."""

    def serves_all(url: str) -> bool:
        text = httpx.get(f"{url}/metrics", timeout=5).text
        return all(f"# TYPE {name} " in text for name in MUST_APPEAR)

    with running_demo(tmp_path_factory.mktemp("demo")) as server:
        wait_until(lambda: serves_all(server.url), f"the demo to serve {MUST_APPEAR}", 120)
        yield server.url


def _unescape(help_text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], help_text)


def expected(name: str, openmetrics: bool) -> tuple[str, str] | None:
    """(help, type) a family header must carry, by the catalog; None if the catalog lacks it.

    OpenMetrics names a counter family without its `_total` suffix. The text format carries
    prometheus_client's `<name>_created` timestamps of counters and histograms as families of
    their own: a gauge with the help of the family it belongs to.
    """
    spec = BY_NAME.get(name)
    if spec is not None:
        return spec.help, spec.prometheus_type
    if openmetrics:
        spec = BY_NAME.get(f"{name}_total")
        return (spec.help, "counter") if spec is not None and spec.kind == "counter" else None
    base = name.removesuffix("_created")
    for spec in (BY_NAME.get(f"{base}_total"), BY_NAME.get(base)):
        if name != base and spec is not None and spec.kind in ("counter", "histogram"):
            return spec.help, "gauge"
    return None


def header_mismatches(body: str, openmetrics: bool) -> list[str]:
    found = []
    for line in body.splitlines():
        match = _HEADER.match(line)
        if match is None:
            continue
        want = expected(match["name"], openmetrics)
        if want is None:
            found.append(f"{line!r}: not in the catalog")
        elif match["what"] == "HELP" and _unescape(match["text"]) != want[0]:
            found.append(f"{line!r}: the catalog says {want[0]!r}")
        elif match["what"] == "TYPE" and match["text"] != want[1]:
            found.append(f"{line!r}: the catalog says {want[1]}")
    return found


@pytest.mark.e2e
@pytest.mark.parametrize("accept", ["text/plain", OPENMETRICS], ids=["text", "openmetrics"])
def test_every_help_and_type_line_is_the_catalogs(demo: str, accept: str) -> None:
    body = httpx.get(f"{demo}/metrics", headers={"Accept": accept}, timeout=10).text
    openmetrics = accept == OPENMETRICS
    assert header_mismatches(body, openmetrics) == []
    headers = sum(1 for line in body.splitlines() if _HEADER.match(line))
    assert headers >= 2 * 40, "fewer families than a demo serves: is the scrape complete?"


def test_a_changed_help_or_type_is_caught() -> None:
    spec = BY_NAME["circleci_exporter_api_requests_total"]
    good = f"# HELP {spec.name} {spec.help}\n# TYPE {spec.name} counter\n"
    assert header_mismatches(good, openmetrics=False) == []
    assert header_mismatches(good.replace("attempts", "calls"), openmetrics=False)
    assert header_mismatches(good.replace("counter", "gauge"), openmetrics=False)
    assert header_mismatches("# TYPE circleci_made_up gauge\n", openmetrics=False)
    created = good.replace("_total ", "_created ").replace("counter", "gauge")
    assert header_mismatches(created, openmetrics=False) == []
    assert header_mismatches(created.replace("attempts", "calls"), openmetrics=False)
    om = good.replace(spec.name, "circleci_exporter_api_requests")
    assert header_mismatches(om, openmetrics=True) == []
