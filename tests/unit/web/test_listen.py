"""The listening socket: `:port` serves IPv6 and IPv4 at once, as Go exporters do."""

from __future__ import annotations

import socket

import pytest

from exporter.settings import ConfigError
from exporter.web.listen import listen


def _connects(family: int, host: str, port: int) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(2)
        try:
            client.connect((host, port))
        except OSError:
            return False
        return True


def _ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_empty_host_listens_on_ipv6_and_ipv4() -> None:
    if not _ipv6_loopback_works():
        pytest.fail("this machine has no IPv6 loopback; the dual-stack test needs ::1")
    sock = listen(":0")
    try:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        port = sock.getsockname()[1]
        assert _connects(socket.AF_INET, "127.0.0.1", port)
        assert _connects(socket.AF_INET6, "::1", port)
    finally:
        sock.close()


def test_an_ipv4_host_listens_on_ipv4_only() -> None:
    sock = listen("127.0.0.1:0")
    try:
        assert sock.family == socket.AF_INET
        assert _connects(socket.AF_INET, "127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


def test_a_bracketed_ipv6_host() -> None:
    if not _ipv6_loopback_works():
        pytest.fail("this machine has no IPv6 loopback")
    sock = listen("[::1]:0")
    try:
        assert sock.family == socket.AF_INET6
        assert _connects(socket.AF_INET6, "::1", sock.getsockname()[1])
    finally:
        sock.close()


def test_a_busy_port_is_one_line_naming_the_key() -> None:
    taken = listen("127.0.0.1:0")
    try:
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        # SO_REUSEADDR allows a second bind only once the first socket stops listening.
        with pytest.raises(ConfigError) as caught:
            listen(address, "webhooks.listen_address")
        (problem,) = caught.value.problems
        assert problem.startswith(f"webhooks.listen_address: cannot listen on {address}: ")
    finally:
        taken.close()
