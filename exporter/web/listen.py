"""Opening the listening socket before anything else starts, so that a busy or forbidden
address is a clear one-line error at start-up rather than a crash later."""

from __future__ import annotations

import errno
import socket

from exporter.settings import ConfigError, host_port

# What socket() or bind() say when the machine has no IPv6.
_NO_IPV6 = {errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT}


def listen(address: str, key: str = "web.listen_address") -> socket.socket:
    """A listening socket on `address`. An empty host (`:10027`) listens on every interface,
    IPv6 and IPv4 on one socket as Go exporters do, or IPv4 alone where IPv6 is off."""
    host, port = host_port(address)
    try:
        if host:
            return _bound(socket.AF_INET6 if ":" in host else socket.AF_INET, host, port)
        if socket.has_ipv6:
            try:
                return _bound(socket.AF_INET6, "::", port, dual_stack=True)
            except OSError as err:
                # A kernel without IPv6 (ipv6.disable=1, some containers) still serves IPv4.
                if err.errno not in _NO_IPV6:
                    raise
        return _bound(socket.AF_INET, "0.0.0.0", port)
    except OSError as err:
        raise ConfigError([f"{key}: cannot listen on {address}: {err.strerror}"]) from None


def _bound(family: int, host: str, port: int, *, dual_stack: bool = False) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
    # without it each response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if dual_stack:
            # Linux defaults to dual stack, but net.ipv6.bindv6only (and BSD) may say otherwise.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
