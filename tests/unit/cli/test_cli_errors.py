"""Bad configuration: exit 2, one line per problem on stderr, never a traceback."""

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import TOKEN, Run

PROJECT = "projects:\n  - slug: gh/acme/api\n"


def _problems(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert all(line.startswith("circleci-exporter: ") for line in lines), stderr
    return [line.removeprefix("circleci-exporter: ") for line in lines]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            PROJECT + "collect:\n  interval: soon\n",
            "collect.interval: expected a duration such as 30s, 5m or 1h, got 'soon'",
        ),
        (
            "projects:\n  - slug: gh/acme/api\n    brnaches: [main]\n",
            "projects[0].brnaches: unknown key (did you mean 'branches'?)",
        ),
        (PROJECT + "colect: {}\n", "colect: unknown key (did you mean 'collect'?)"),
        (
            PROJECT + "collect: [\n",
            "{path}: line 4: expected the node content, but found '<stream end>'",
        ),
        ("- gh/acme/api\n", "{path}: the top level must be a mapping of sections"),
    ],
    ids=["bad-value", "misspelt-key-in-list", "misspelt-section", "yaml-syntax", "not-a-mapping"],
)
def test_bad_config_file(
    run: Run, config_file: Callable[[str], Path], text: str, problem: str
) -> None:
    path = config_file(text)

    result = run("--config", str(path), "--check-config", env={"CIRCLECI_TOKEN": TOKEN})

    assert result.returncode == 2
    assert _problems(result.stderr) == [problem.format(path=path)]
    assert result.stdout == ""


def test_missing_config_file(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    result = run("--config", str(path), "--check-config", env={"CIRCLECI_TOKEN": TOKEN})

    assert result.returncode == 2
    assert _problems(result.stderr) == [f"{path}: cannot read: No such file or directory"]


def test_missing_token(run: Run, config_file: Callable[[str], Path]) -> None:
    result = run("--config", str(config_file(PROJECT)), "--check-config")

    assert result.returncode == 2
    assert _problems(result.stderr) == [
        "api.token: no CircleCI token: set CIRCLECI_TOKEN or CIRCLECI_TOKEN_FILE (or try --demo)"
    ]


def test_missing_token_is_checked_without_check_config(
    run: Run, config_file: Callable[[str], Path]
) -> None:
    result = run("--config", str(config_file(PROJECT)))

    assert result.returncode == 2
    assert _problems(result.stderr)[0].startswith("api.token: no CircleCI token")


def test_nothing_to_watch(run: Run) -> None:
    result = run("--check-config", env={"CIRCLECI_TOKEN": TOKEN})

    assert result.returncode == 2
    assert _problems(result.stderr) == [
        "projects: nothing to watch: list projects: or orgs: in the config"
    ]


def test_empty_token_file(run: Run, config_file: Callable[[str], Path], tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("")

    result = run(
        "--config",
        str(config_file(PROJECT)),
        "--check-config",
        env={"CIRCLECI_TOKEN_FILE": str(token_file)},
    )

    assert result.returncode == 2
    assert _problems(result.stderr) == [f"api.token_file: {str(token_file)!r} is empty"]


def test_unreadable_token_file(
    run: Run, config_file: Callable[[str], Path], tmp_path: Path
) -> None:
    token_file = tmp_path / "absent-token"

    result = run(
        "--config",
        str(config_file(PROJECT)),
        "--check-config",
        env={"CIRCLECI_TOKEN_FILE": str(token_file)},
    )

    assert result.returncode == 2
    assert _problems(result.stderr) == [
        f"api.token_file: cannot read {str(token_file)!r}: No such file or directory"
    ]


@pytest.mark.parametrize(
    ("flag", "value", "problem"),
    [
        ("--log.format", "text", "log.format: Input should be 'logfmt' or 'json'"),
        (
            "--web.listen-address",
            "10027",
            "web.listen_address: '10027' is not host:port, e.g. :10027 or 127.0.0.1:10027",
        ),
        (
            "--web.telemetry-path",
            "metrics",
            "web.telemetry_path: 'metrics' must be a plain path starting with /",
        ),
    ],
)
def test_bad_flag_values(
    run: Run, config_file: Callable[[str], Path], flag: str, value: str, problem: str
) -> None:
    result = run(
        "--config", str(config_file(PROJECT)), "--check-config", flag, value,
        env={"CIRCLECI_TOKEN": TOKEN},
    )  # fmt: skip

    assert result.returncode == 2
    assert _problems(result.stderr) == [problem]


def test_bad_environment_list(run: Run, config_file: Callable[[str], Path]) -> None:
    result = run(
        "--check-config",
        env={"CIRCLECI_TOKEN": TOKEN, "CIRCLECI_EXPORTER_PROJECTS": "gh/acme/api"},
    )

    assert result.returncode == 2
    [problem] = _problems(result.stderr)
    assert problem.startswith('environment: error parsing value for field "projects"')


def test_several_problems_one_line_each(run: Run, config_file: Callable[[str], Path]) -> None:
    path = config_file(PROJECT + "collect:\n  interval: soon\n  tets: false\n")

    result = run("--config", str(path), "--check-config", env={"CIRCLECI_TOKEN": TOKEN})

    assert result.returncode == 2
    assert sorted(_problems(result.stderr)) == [
        "collect.interval: expected a duration such as 30s, 5m or 1h, got 'soon'",
        "collect.tets: unknown key (did you mean 'tests'?)",
    ]


def test_token_never_in_error_output(run: Run, config_file: Callable[[str], Path]) -> None:
    path = config_file(PROJECT + "api:\n  url: not-a-url\n")

    result = run("--config", str(path), "--check-config", env={"CIRCLECI_TOKEN": TOKEN})

    assert result.returncode == 2
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("value", [".nan", ".inf", "1e999"])
def test_non_finite_interval_is_one_line_exit_2(
    run: Run, config_file: Callable[[str], Path], value: str
) -> None:
    path = config_file(f"projects:\n  - slug: gh/acme/api\ncollect:\n  interval: {value}\n")
    result = run("--check-config", "--config", str(path), env={"CIRCLECI_TOKEN": TOKEN})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("circleci-exporter: collect.interval:")
    assert len(result.stderr.splitlines()) == 1


def test_non_ascii_token_is_one_line_exit_2(run: Run, config_file: Callable[[str], Path]) -> None:
    path = config_file("projects:\n  - slug: gh/acme/api\n")
    result = run("--config", str(path), env={"CIRCLECI_TOKEN": f"{TOKEN}é"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and TOKEN not in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("speed", ["nan", "inf", "-1"])
def test_simulate_refuses_a_non_finite_speed(run: Run, speed: str) -> None:
    result = run("simulate", "--listen", "127.0.0.1:0", "--speed", speed)
    assert result.returncode == 2
    assert result.stderr.startswith("circleci-exporter: simulate: speed")
