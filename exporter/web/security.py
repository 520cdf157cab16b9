"""The web config file at work on both listeners: TLS, basic auth and headers, re-read when it
changes so that a certificate or a password is rotated without a restart.

The file (and the certificate, key and CA files it names) is checked once a second. A change is
applied whole or not at all: a bad new version is logged, counted in
circleci_exporter_web_config_last_reload_successful, and the last good one stays in force.

TLS: OpenSSL copies versions, ciphers and the client-verification mode from the listener's
context into each connection as it starts, so reloads update that context in place; the
certificate and the client CAs come from a fresh context that the handshake switches to (the
server-name callback runs for every handshake, SNI or not). Switching TLS on or off needs a
restart: the listener is either TLS or plain from its start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import ssl
from pathlib import Path

import anyio
import bcrypt
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exporter.catalog import BY_NAME
from exporter.settings import ConfigError
from exporter.web.webconfig import WebConfig, load_web_config

logger = logging.getLogger(__name__)

RELOAD_EVERY = 1.0
# Paths that answer without basic auth: kubelet and compose probes carry no credentials, and
# the answers ("ok", "ready") tell nothing. TLS still applies to them.
UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz"})
LISTENERS = ("metrics", "webhooks")
# Verified (user, password digest) pairs: bcrypt costs ~70 ms at cost 10, too much per scrape.
_VERIFIED_CACHE_SIZE = 256
# Compared against when the user is unknown, so that the time taken does not tell.
_DUMMY_HASH = bcrypt.hashpw(b"unknown user", bcrypt.gensalt(4))

_Signature = tuple[tuple[str, int, int, int], ...]


def _signature(paths: list[Path]) -> _Signature:
    """What changes when a file is rewritten, replaced or re-linked (Kubernetes Secret
    volumes swap a symlink)."""
    found = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            found.append((str(path), -1, -1, -1))
        else:
            found.append((str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size))
    return tuple(found)


class WebSecurity:
    """The current web config of a running exporter; `path` None: plain HTTP, no auth."""

    def __init__(
        self,
        path: Path | None,
        registry: CollectorRegistry,
    ) -> None:
        self.path = path
        self.config = WebConfig() if path is None else load_web_config(path)
        self._signature = self._current_signature()
        self._verified: dict[tuple[str, bytes], bytes] = {}
        failures = BY_NAME["circleci_exporter_web_auth_failures_total"]
        self._failures = Counter(failures.name, failures.help, failures.labels, registry=registry)
        for listener in LISTENERS:
            self._failures.labels(listener)
        reload_ok = BY_NAME["circleci_exporter_web_config_last_reload_successful"]
        self._reload_ok = Gauge(reload_ok.name, reload_ok.help, registry=registry)
        self._reload_ok.set(1)
        self._listener_contexts: list[ssl.SSLContext] = []
        self._tls_context = self._fresh_tls_context()

    def _current_signature(self) -> _Signature:
        if self.path is None:
            return ()
        return _signature([self.path, *self.config.files()])

    def _fresh_tls_context(self) -> ssl.SSLContext | None:
        return None if self.config.tls is None else self.config.tls.context()

    # --- TLS -----------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context for one listener, or None for plain HTTP."""
        if self.config.tls is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.config.tls.apply_policy(context)
        # A certificate on the listener's own context too, for clients that never reach the
        # callback; the callback then switches to the newest one.
        context.load_cert_chain(self.config.tls.cert_file, self.config.tls.key_file)
        context.sni_callback = self._on_handshake
        self._listener_contexts.append(context)
        return context

    def _on_handshake(
        self, connection: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None, _: object
    ) -> None:
        if self._tls_context is not None:
            connection.context = self._tls_context

    # --- reloading -----------------------------------------------------------------------

    async def run(self) -> None:
        while self.path is not None:
            await anyio.sleep(RELOAD_EVERY)
            self.reload_if_changed()

    def reload_if_changed(self) -> bool:
        """Re-read the file if it or a file it names changed; True when a new config applies."""
        if self.path is None:
            return False
        signature = self._current_signature()
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            config = load_web_config(self.path)
            if (config.tls is None) != (self.config.tls is None):
                raise ConfigError(
                    [f"web.config.file: tls_server_config: TLS cannot be switched "
                     f"{'on' if config.tls else 'off'} without a restart"]
                )  # fmt: skip
            tls_context = None if config.tls is None else config.tls.context()
        except ConfigError as err:
            self._reload_ok.set(0)
            logger.error("web config not reloaded; the previous one stays", extra={
                "error": "; ".join(err.problems)})  # fmt: skip
            return False
        self.config = config
        self._signature = self._current_signature()
        self._tls_context = tls_context
        if config.tls is not None:
            for context in self._listener_contexts:
                config.tls.apply_policy(context)
        self._verified.clear()
        self._reload_ok.set(1)
        logger.info("web config reloaded", extra={"file": str(self.path)})
        return True

    # --- basic auth ----------------------------------------------------------------------

    async def authorized(self, authorization: str | None) -> bool:
        users = self.config.users
        if not users:
            return True
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        digest = hashlib.sha256(password).digest()
        hashed = users.get(user)
        if hashed is not None and self._verified.get((user, digest)) == hashed:
            return True
        # bcrypt in a worker thread: it is slow on purpose, the event loop must not wait.
        ok = await anyio.to_thread.run_sync(bcrypt.checkpw, password, hashed or _DUMMY_HASH)
        if ok and hashed is not None:
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[(user, digest)] = hashed
            return True
        return False

    def count_failure(self, listener: str) -> None:
        self._failures.labels(listener).inc()

    def wrap(self, app: ASGIApp, listener: str) -> ASGIApp:
        return _Secured(app, self, listener)


def _basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode(), password
    except UnicodeDecodeError:
        return None


class _Secured:
    """ASGI middleware: basic auth (when users are configured) and the configured headers."""

    def __init__(self, app: ASGIApp, security: WebSecurity, listener: str) -> None:
        self.app = app
        self.security = security
        self.listener = listener

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in self.security.config.headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if scope["path"] not in UNAUTHENTICATED_PATHS and not await self.security.authorized(
            Headers(scope=scope).get("authorization")
        ):
            self.security.count_failure(self.listener)
            await send_with_headers({
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"www-authenticate", b'Basic realm="circleci-exporter", charset="UTF-8"'),
                ],
            })  # fmt: skip
            await send({"type": "http.response.body", "body": b"Unauthorized\n"})
            return
        await self.app(scope, receive, send_with_headers)
