"""Constants and types shared by the CLI tests (conftest.py cannot be imported by name)."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

TOKEN = "CCIPAT_s3cr3tT0kenValue_0123456789abcdef"
# The real console script, as installed into the venv that runs the tests.
EXPORTER = Path(sys.executable).with_name("circleci-exporter")

Run = Callable[..., subprocess.CompletedProcess[str]]
