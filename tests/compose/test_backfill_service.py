"""The compose stack's one-shot backfill (docs/backfill.md): `backfill-fetch` writes the
OpenMetrics file with the exporter image, `backfill` turns it into blocks in Prometheus's own
volume with the promtool of Prometheus's own image. Both sit under the `backfill` profile, so
`docker compose up` never runs them."""

import yaml
from compose_files import ROOT, services, volume_mounts


def _flags(service: str) -> dict[str, list[str]]:
    flags: dict[str, list[str]] = {}
    for part in services()[service]["command"]:
        name, _, value = part.partition("=")
        flags.setdefault(name, []).append(value)
    return flags


def test_both_steps_are_one_shot_jobs_of_the_backfill_profile() -> None:
    for name in ("backfill-fetch", "backfill"):
        service = services()[name]
        assert service["profiles"] == ["backfill"]
        assert "restart" not in service and "ports" not in service


def test_fetch_ends_where_the_running_exporter_began_watching() -> None:
    fetch = services()["backfill-fetch"]
    assert fetch["image"] == services()["exporter"]["image"]
    assert fetch["depends_on"] == {"exporter": {"condition": "service_healthy"}}
    flags = _flags("backfill-fetch")
    assert flags["backfill"] == [""]
    assert flags["--exporter-url"] == ["http://exporter:10027/metrics"]
    assert flags["--since"] == ["${BACKFILL_SINCE:-30d}"]
    # The exporter's token, the same compose secret.
    assert fetch["secrets"] == services()["exporter"]["secrets"] == ["circleci_token"]
    assert fetch["environment"] == {"CIRCLECI_TOKEN_FILE": "/run/secrets/circleci_token"}
    # The config the exporter reads: the same projects and branches are backfilled.
    exporter_config = dict((t, s) for s, t in volume_mounts("exporter"))
    fetch_mounts = dict((t, s) for s, t in volume_mounts("backfill-fetch"))
    config_path = flags["--config"][0]
    assert fetch_mounts[config_path] == exporter_config[config_path]


def test_labels_are_the_ones_prometheus_gives_the_exporter_scrape() -> None:
    scrape = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "circleci"]
    (target,) = job["static_configs"][0]["targets"]
    assert sorted(_flags("backfill-fetch")["--label"]) == sorted(
        [f"instance={target}", f"job={job['job_name']}"]
    )
    assert target == "exporter:10027"


def test_blocks_land_in_the_prometheus_volume_with_prometheus_promtool() -> None:
    blocks = services()["backfill"]
    assert blocks["image"] == services()["prometheus"]["image"]
    assert blocks["depends_on"] == {
        "backfill-fetch": {"condition": "service_completed_successfully"}
    }
    out = _flags("backfill-fetch")["--out"][0]
    assert "--split-blocks" in _flags("backfill-fetch")
    # One promtool run per block window file (docs/backfill.md), failing on the first error.
    (script,) = blocks["command"]
    assert blocks["entrypoint"] == ["/bin/sh", "-c"]
    assert f"for window in {out}.windows/*.om;" in script
    assert 'promtool tsdb create-blocks-from openmetrics -q "$$window" /prometheus || exit 1' in (
        script
    )
    prometheus_data = dict((t, s) for s, t in volume_mounts("prometheus"))["/prometheus"]
    mounts = volume_mounts("backfill")
    assert (prometheus_data, "/prometheus") in mounts
    shared = [s for s, t in volume_mounts("backfill-fetch") if out.startswith(t + "/")]
    assert shared and any(s == shared[0] and out.startswith(t + "/") for s, t in mounts)


def test_the_exporter_image_prepares_the_output_volume_for_its_user() -> None:
    # A new named volume takes the owner of the image's directory: the exporter's user.
    out_dir = _flags("backfill-fetch")["--out"][0].rsplit("/", 1)[0]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"install -d -o 10001 -g 10001 {out_dir}" in dockerfile
    assert "USER 10001:10001" in dockerfile
