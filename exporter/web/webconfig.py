"""The web configuration file (`--web.config.file`), in the Prometheus exporter-toolkit format
that node_exporter and the other official exporters read: TLS, basic auth and response headers.

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, VerifyClientCertIfGiven
      client_ca_file: clients-ca.crt
      min_version: TLS12                             # TLS10..TLS13
      max_version: TLS13
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]   # Go names; TLS 1.2 and below
    http_server_config:
      headers: {X-Content-Type-Options: nosniff}
    basic_auth_users:
      prometheus: $2b$12$...                         # bcrypt hashes

Relative paths are relative to the file's directory. Keys of the toolkit that this exporter does
not implement are refused by name, never ignored. `load_web_config` reads and checks everything,
the certificate and key included, so a bad file is one line naming its key.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt

from exporter.settings import ConfigError, read_yaml

KEY = "web.config.file"

# Go's crypto/tls policy names. The two that take any certificate unverified have no OpenSSL
# server mode and would be a trap, so they are refused.
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's names of its TLS 1.0-1.2 cipher suites (crypto/tls CipherSuites()) → OpenSSL's names.
# TLS 1.3 suites are not configurable, in Go or here.
_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
# The headers the toolkit lets a file set, with the values it accepts where it restricts them.
_HEADERS: dict[str, frozenset[str] | None] = {
    "Content-Security-Policy": None,
    "X-Frame-Options": frozenset({"deny", "sameorigin"}),
    "X-Content-Type-Options": frozenset({"nosniff"}),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
# Each section's keys: True implemented, False a toolkit key this exporter refuses.
_KEYS: dict[str, dict[str, bool]] = {
    "": {
        "tls_server_config": True,
        "http_server_config": True,
        "basic_auth_users": True,
        "rate_limit": False,
    },
    "tls_server_config": {
        "cert_file": True,
        "key_file": True,
        "client_auth_type": True,
        "client_ca_file": True,
        "min_version": True,
        "max_version": True,
        "cipher_suites": True,
        "prefer_server_cipher_suites": True,
        "cert": False,
        "key": False,
        "client_ca": False,
        "client_allowed_sans": False,
        "curve_preferences": False,
    },
    # HTTP/2 is not served (uvicorn speaks HTTP/1.1); `http2: false` says just that.
    "http_server_config": {"headers": True, "http2": True},
}


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None
    verify_mode: ssl.VerifyMode
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    ciphers: str | None
    prefer_server_ciphers: bool

    def files(self) -> list[Path]:
        return [self.cert_file, self.key_file] + (
            [self.client_ca_file] if self.client_ca_file else []
        )

    def context(self) -> ssl.SSLContext:
        """A server context holding the certificate, key and client CAs as they are now."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.apply_policy(context)
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as err:
            raise _problem(
                "tls_server_config.cert_file", f"{self.cert_file}: {_why(err)}"
            ) from None
        if self.client_ca_file is not None:
            try:
                context.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as err:
                key = "tls_server_config.client_ca_file"
                raise _problem(key, f"{self.client_ca_file}: {_why(err)}") from None
        return context

    def apply_policy(self, context: ssl.SSLContext) -> None:
        """Versions, ciphers and client verification: OpenSSL copies these from the
        listener's context into each connection as it starts."""
        context.minimum_version = self.min_version
        context.maximum_version = self.max_version
        context.set_ciphers(self.ciphers or "DEFAULT")
        if self.prefer_server_ciphers:
            context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        else:
            context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        context.verify_mode = self.verify_mode


@dataclass(frozen=True, slots=True)
class WebConfig:
    """An empty file (or none) is plain HTTP with no authentication, as today."""

    tls: TlsConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)  # username → bcrypt hash
    headers: Mapping[str, str] = field(default_factory=dict)

    def files(self) -> list[Path]:
        """The files besides the config file itself whose change is a reload."""
        return [] if self.tls is None else self.tls.files()


def load_web_config(path: Path) -> WebConfig:
    """Read and check `path`; ConfigError with one line naming the bad key."""
    data = read_yaml(path, f"{KEY}: ")
    root = _section(data or {}, "")
    base = path.parent
    tls_data = root.get("tls_server_config")
    tls = None if tls_data is None else _tls(_section(tls_data, "tls_server_config"), base)
    http = _section(root.get("http_server_config") or {}, "http_server_config")
    if http.get("http2", False) not in (False, True):
        raise _problem("http_server_config.http2", "must be true or false")
    config = WebConfig(
        tls=tls,
        users=_users(root.get("basic_auth_users") or {}),
        headers=_headers(http.get("headers") or {}),
    )
    if tls is not None:
        tls.context()  # the certificate, key and CA files must load now, not at a handshake
    return config


def _section(data: Any, name: str) -> dict[str, Any]:
    where = f"{name}: " if name else ""
    if not isinstance(data, dict):
        raise ConfigError([f"{KEY}: {where}must be a mapping"])
    known = _KEYS[name]
    for key in data:
        path = f"{name}.{key}" if name else str(key)
        if key not in known:
            raise _problem(path, "unknown key")
        if not known[key]:
            raise _problem(path, "not supported by this exporter")
    return data


def _string(data: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        raise _problem(f"tls_server_config.{key}", "must be a string")
    return value


def _tls(data: dict[str, Any], base: Path) -> TlsConfig:
    files = {}
    for key in ("cert_file", "key_file", "client_ca_file"):
        value = _string(data, key)
        files[key] = None if not value else base / value
    cert, key_file = files["cert_file"], files["key_file"]
    if cert is None or key_file is None:
        missing = "cert_file" if cert is None else "key_file"
        raise _problem(f"tls_server_config.{missing}", "required with tls_server_config")
    auth = _string(data, "client_auth_type", "NoClientCert") or "NoClientCert"
    if auth not in _CLIENT_AUTH:
        hint = (
            "accepts any certificate unverified; use RequireAndVerifyClientCert"
            if auth in {"RequestClientCert", "RequireAnyClientCert"}
            else f"must be one of {', '.join(_CLIENT_AUTH)}"
        )
        raise _problem("tls_server_config.client_auth_type", f"{auth!r} {hint}")
    verify_mode = _CLIENT_AUTH[auth]
    if verify_mode != ssl.CERT_NONE and files["client_ca_file"] is None:
        raise _problem("tls_server_config.client_ca_file", f"required with {auth}")
    versions = {}
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = _string(data, key, default) or default
        if name not in _VERSIONS:
            raise _problem(
                f"tls_server_config.{key}", f"{name!r} must be one of {', '.join(_VERSIONS)}"
            )
        versions[key] = _VERSIONS[name]
    if versions["min_version"] > versions["max_version"]:
        raise _problem("tls_server_config.min_version", "is above max_version")
    suites = data.get("cipher_suites") or []
    if not isinstance(suites, list):
        raise _problem("tls_server_config.cipher_suites", "must be a list")
    for suite in suites:
        if suite not in _CIPHERS:
            raise _problem("tls_server_config.cipher_suites", f"unknown cipher suite {suite!r}")
    prefer = data.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise _problem("tls_server_config.prefer_server_cipher_suites", "must be true or false")
    return TlsConfig(
        cert_file=cert,
        key_file=key_file,
        client_ca_file=files["client_ca_file"],
        verify_mode=verify_mode,
        min_version=versions["min_version"],
        max_version=versions["max_version"],
        ciphers=":".join(_CIPHERS[s] for s in suites) or None,
        prefer_server_ciphers=prefer,
    )


def _users(data: Any) -> dict[str, bytes]:
    if not isinstance(data, dict):
        raise _problem("basic_auth_users", "must be a mapping of user names to bcrypt hashes")
    users = {}
    for user, hashed in data.items():
        key = f"basic_auth_users.{user}"
        if not isinstance(user, str) or not user or ":" in user:
            raise _problem(key, "a user name must be a non-empty string without ':'")
        if not isinstance(hashed, str):
            raise _problem(key, "must be a bcrypt hash string")
        try:
            bcrypt.checkpw(b"", hashed.encode())
        except ValueError:
            raise _problem(key, "is not a bcrypt hash") from None
        users[user] = hashed.encode()
    return users


def _headers(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        raise _problem("http_server_config.headers", "must be a mapping")
    headers = {}
    for name, value in data.items():
        key = f"http_server_config.headers.{name}"
        if name not in _HEADERS:
            raise _problem(key, f"not a header this file may set ({', '.join(_HEADERS)})")
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise _problem(key, "must be a one-line string")
        allowed = _HEADERS[name]
        if value and allowed is not None and value.lower() not in allowed:
            raise _problem(key, f"{value!r} must be one of {', '.join(sorted(allowed))}")
        if value:
            headers[name] = value
    return headers


def _problem(key: str, message: str) -> ConfigError:
    return ConfigError([f"{KEY}: {key}: {message}"])


def _why(err: OSError | ssl.SSLError) -> str:
    if isinstance(err, ssl.SSLError):
        return str(err.reason or err)
    return err.strerror or str(err)
