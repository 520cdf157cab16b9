"""Constants and types shared by the CLI tests (conftest.py cannot be imported by name)."""

import subprocess
from collections.abc import Callable

TOKEN = "CCIPAT_s3cr3tT0kenValue_0123456789abcdef"

Run = Callable[..., subprocess.CompletedProcess[str]]
