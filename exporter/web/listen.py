"""Opening the listening socket before anything else starts, so that a busy or forbidden
address is a clear one-line error at start-up rather than a crash later."""

from __future__ import annotations

import socket

from exporter.settings import ConfigError, host_port


def listen(address: str, key: str = "web.listen_address") -> socket.socket:
    host, port = host_port(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
    # without it each response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise ConfigError([f"{key}: cannot listen on {address}: {err.strerror}"]) from None
    sock.set_inheritable(True)
    return sock
