"""`python -m grafana.generate [--check] [--output DIR]`: write or verify the dashboard JSON."""

import argparse
import sys
from pathlib import Path

from .render import DASHBOARDS_DIR, render_all


def _stale_files(output: Path, rendered: dict[str, str]) -> list[str]:
    stale = [
        name
        for name, text in rendered.items()
        if not (output / name).is_file() or (output / name).read_text(encoding="utf-8") != text
    ]
    unexpected = sorted(path.name for path in output.glob("*.json") if path.name not in rendered)
    return stale + unexpected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grafana.generate", description="Generate the Ocean CI Grafana dashboards."
    )
    parser.add_argument("--output", type=Path, default=DASHBOARDS_DIR, help="target directory")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files in the target directory differ",
    )
    args = parser.parse_args(argv)
    output: Path = args.output
    rendered = render_all()

    if args.check:
        stale = _stale_files(output, rendered)
        if stale:
            print(
                f"dashboards out of date in {output}: {', '.join(stale)};"
                " run `python -m grafana.generate`",
                file=sys.stderr,
            )
            return 1
        return 0

    output.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (output / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(rendered)} dashboards to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
