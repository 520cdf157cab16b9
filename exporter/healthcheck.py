"""`python -m exporter.healthcheck`: the container health check (Dockerfile HEALTHCHECK).

It asks `/healthz` on the port the exporter listens on, read from the same settings the exporter
reads (the YAML file named by CIRCLECI_EXPORTER_CONFIG and the CIRCLECI_EXPORTER_* variables),
so the check follows a changed listen address. Over TLS when the web config file says so; the
certificate is not verified, the check only asks whether the process answers on loopback.
Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request
from pathlib import Path

from exporter.settings import ConfigError, host_port, load_settings
from exporter.web.webconfig import load_web_config

TIMEOUT = 4.0


def healthz_url() -> tuple[str, ssl.SSLContext | None]:
    config = os.environ.get("CIRCLECI_EXPORTER_CONFIG")
    settings = load_settings(Path(config) if config else None)
    host, port = host_port(settings.web.listen_address)
    if host in {"", "0.0.0.0", "::"}:
        host = "127.0.0.1"  # every interface includes loopback
    tls = (
        settings.web.config_file is not None
        and load_web_config(settings.web.config_file).tls is not None
    )
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{'https' if tls else 'http'}://{netloc}/healthz", context


def main() -> int:
    try:
        url, context = healthz_url()
        with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:
            return 0 if response.status == 200 else 1
    except (ConfigError, OSError) as err:
        print(f"healthcheck: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
