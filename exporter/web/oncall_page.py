"""The HTML of the on-call page and of the log tail: plain server-rendered HTML, inline CSS, no
script and no external asset (air-gapped users), refreshed by a meta refresh. Every value from
CircleCI or a config is escaped here, log lines included."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from exporter import __version__
from exporter.state.snapshot import FailedStep
from exporter.web.failures import FailingJob, Failures, Health, RedBranch, Waiting

REFRESH_SECONDS = 60

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1f24;
background:#f6f8fa}
header{background:#0b3d5c;color:#fff;padding:.8em 1.5em;display:flex;gap:1.5em;
align-items:baseline;flex-wrap:wrap}
header h1{font-size:1.3em;margin:0}header a{color:#cfe8ff}
main{padding:0 1.5em 2em}h2{margin:1.4em 0 .5em;font-size:1.1em}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{padding:.45em .7em;text-align:left;vertical-align:top;border-bottom:1px solid #e4e8ec}
th{background:#eef1f4;font-weight:600;font-size:.9em}
tr.red td:first-child{border-left:6px solid #d1242f}tr.red{background:#fff5f5}
.muted{color:#57606a;font-size:.85em}.step{font-family:ui-monospace,monospace;color:#a40e26}
.ok{color:#1a7f37;font-weight:600}.down{color:#d1242f;font-weight:600}
.streak{font-weight:700;color:#d1242f}
pre{background:#0d1117;color:#e6edf3;padding:.7em;overflow-x:auto;font-size:.8em;
max-height:32em;margin:.4em 0 0;white-space:pre-wrap;word-break:break-all}
details summary{cursor:pointer;color:#0969da}
.banner{background:#fff8c5;border-bottom:1px solid #d4a72c;padding:.6em 1.5em;font-weight:600}
.none{padding:.8em;background:#fff;box-shadow:0 1px 2px #0002}
"""


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s ago"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days}d {hours % 24}h ago"
    if hours:
        return f"{hours}h {minutes % 60}m ago"
    return f"{minutes}m ago"


def _time(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return '<span class="muted">unknown</span>'
    iso = datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
    return (
        f'{_ago(now - timestamp)}<br><time class="muted" datetime="{iso}">{_when(timestamp)}</time>'
    )


def _link(url: str, text: str) -> str:
    if not url:
        return escape(text)
    return f'<a href="{escape(url)}">{escape(text)}</a>'


def _job_cell(job: FailingJob) -> str:
    step = (
        f'<span class="step">{escape(job.step)}</span>'
        if job.step
        else '<span class="muted">step unknown (API v1.1 did not answer)</span>'
    )
    return f"{_link(job.url, f'{job.job} #{job.job_number}')}<br>{step}"


def _log_cell(job: FailingJob, log: list[str] | str | None, log_lines: int, *, open_: bool) -> str:
    if job.log_path is None:
        return '<span class="muted">no log</span>'
    if log is None:
        return '<span class="muted">log not fetched</span>'
    if isinstance(log, str):
        return f'<span class="muted">{escape(log)}</span>'
    body = "\n".join(escape(line) for line in log)
    return (
        f"<details{' open' if open_ else ''}><summary>last {min(len(log), log_lines)} lines of "
        f"{escape(job.job)}</summary><pre>{body}</pre></details>"
    )


def _red_rows(red: tuple[RedBranch, ...], logs: dict[str, list[str] | str], now: float,
              log_lines: int) -> str:  # fmt: skip
    rows: list[str] = []
    for r in red:
        jobs = r.jobs or ()
        job_cells = "<br>".join(_job_cell(j) for j in jobs) or (
            '<span class="muted">failing job not known yet</span>'
        )
        # The newest red branch's log is open: the first thing the on-call engineer reads.
        log_cells = "".join(
            _log_cell(j, logs.get(j.log_path or ""), log_lines, open_=not rows and i == 0)
            for i, j in enumerate(jobs)
        )
        rows.append(
            '<tr class="red">'
            f"<td><strong>{escape(r.project_name)}</strong><br>"
            f'<span class="muted">{escape(r.project)} · {escape(r.branch)}</span></td>'
            f"<td>{_link(r.workflow_url, r.workflow)}<br>"
            f'<span class="muted">{escape(r.status)}</span></td>'
            f"<td>{_time(r.since, now)}</td>"
            f'<td class="streak">{r.streak}</td>'
            f"<td>{job_cells}</td><td>{log_cells}</td></tr>"
        )
    return "".join(rows)


def _waiting_rows(waiting: tuple[Waiting, ...], now: float) -> str:
    label = {"on_hold": "on hold (approval)", "running_long": "running long"}
    return "".join(
        f"<tr><td><strong>{escape(w.project_name)}</strong><br>"
        f'<span class="muted">{escape(w.project)} · {escape(w.branch)}</span></td>'
        f"<td>{_link(w.url, w.workflow)}</td><td>{escape(label.get(w.state, w.state))}</td>"
        f"<td>{_time(w.since, now)}</td></tr>"
        for w in waiting
    )


def _state(value: str | None) -> str:
    if value is None:
        return '<span class="muted">n/a</span>'
    return f'<span class="{"ok" if value == "up" else "down"}">{escape(value)}</span>'


def _health_rows(rows: tuple[Health, ...], now: float, *, orgs: bool) -> str:
    return "".join(
        f"<tr><td><strong>{escape(h.name)}</strong><br>"
        f'<span class="muted">{escape(h.key)}</span></td>'
        + ("" if orgs else f"<td>{_state(h.live)}</td>")
        + f"<td>{_state(h.insights)}</td><td>{_time(h.last_success, now)}</td>"
        f"<td>{'<br>'.join(escape(e) for e in h.errors)}</td></tr>"
        for h in rows
    )


def _table(headers: list[str], rows: str, empty: str, id_: str) -> str:
    if not rows:
        return f'<p class="none" id="{id_}">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f'<table id="{id_}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def render(
    view: Failures,
    logs: dict[str, list[str] | str],
    *,
    now: float,
    demo: bool,
    telemetry_path: str,
    log_lines: int,
) -> str:
    banner = (
        '<div class="banner" id="demo-banner">Demo mode: this is a simulated CircleCI '
        "organisation, not your projects.</div>"
        if demo
        else ""
    )
    red = _table(
        ["Project", "Workflow", "Red since", "Streak", "Failing job and step", "Last log lines"],
        _red_rows(view.red, logs, now, log_lines),
        "No default branch is red.",
        "red",
    )
    waiting = _table(
        ["Project", "Workflow", "State", "Since"],
        _waiting_rows(view.waiting, now),
        "Nothing is on hold or running long.",
        "waiting",
    )
    projects = _table(
        ["Project", "Live", "Insights", "Last success", "Last error"],
        _health_rows(view.projects, now, orgs=False),
        "No project collected yet.",
        "health",
    )
    orgs = (
        "<h3>Organisations (Insights)</h3>"
        + _table(
            ["Organisation", "Insights", "Last success", "Last error"],
            _health_rows(view.orgs, now, orgs=True),
            "",
            "org-health",
        )
        if view.orgs
        else ""
    )
    path = escape(telemetry_path)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{len(view.red)} red · CircleCI on-call</title><style>{_CSS}</style></head>
<body>{banner}
<header><h1>CircleCI on-call</h1>
<span>{len(view.red)} red default branch{"es" if len(view.red) != 1 else ""}</span>
<span class="muted" style="color:#cfe8ff">data of {_when(view.taken_at)} ·
refreshes every {REFRESH_SECONDS}s</span>
<nav><a href="{path}">Metrics</a> · <a href="/api/v1/failures">JSON</a> ·
<a href="/healthz">Health</a> · <a href="/readyz">Readiness</a></nav>
<span class="muted" style="color:#cfe8ff">Ocean CI exporter {escape(__version__)}</span>
</header>
<main>
<h2>Red default branches</h2>{red}
<h2>On hold or running long</h2>{waiting}
<h2>Collection health</h2>{projects}{orgs}
</main></body></html>
"""


def log_page(project: str, step: FailedStep, lines: list[str], *, error: str | None) -> str:
    title = f"{project} job {step.job_number}: {step.step or 'failed step'}"
    body = (
        f'<p class="down">{escape(error)}</p>'
        if error is not None
        else f"<pre>{''.join(escape(line) + chr(10) for line in lines)}</pre>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_CSS}</style></head><body>
<header><h1>{escape(title)}</h1><a href="{escape(step.url)}">Open the job on CircleCI</a></header>
<main><p class="muted">Last {len(lines)} lines of step {escape(step.step)}
(container {step.index}).</p>{body}</main></body></html>
"""
