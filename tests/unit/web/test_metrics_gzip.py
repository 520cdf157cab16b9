"""/metrics with Accept-Encoding: gzip: one ordinary gzip stream of the whole body, the cached
exposition's parts compressed when they are rendered, however many scrapes ask."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from exporter.metrics import exposition
from exporter.state import Buckets, State, updates
from exporter.web.app import create_app
from exporter.web.compression import accepts_gzip
from exporter.web.publisher import Publisher

P = "gh/acme/api"


def publisher() -> Publisher:
    state = State(watch_start=0.0, buckets=Buckets((60.0,), (60.0,), (5.0,)), series_ttl=1e9)
    state.apply(updates.ProjectUpdate(P, "api", "acme", "main", "https://app.circleci.com/x"))
    state.apply(updates.WorkflowUpdate(P, "main", "build", "w1", 1, "success", 20.0, 50.0, "u"))
    return Publisher(state, {"live": 30.0}, clock=lambda: 100.0)


pytestmark = pytest.mark.anyio


def client(pub: Publisher, registry: CollectorRegistry) -> httpx.AsyncClient:
    app = create_app(publisher=pub, registry=registry, ready=lambda: True)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def raw_get(
    test_client: httpx.AsyncClient, accept_encoding: str, accept: str = ""
) -> tuple[dict[str, str], bytes]:
    # httpx would decode the body; read the raw bytes as they went on the wire.
    headers = {"Accept-Encoding": accept_encoding, "Accept": accept}
    async with test_client.stream("GET", "/metrics", headers=headers) as response:
        assert response.status_code == 200
        return dict(response.headers), b"".join([c async for c in response.aiter_raw()])


async def test_gzip_body_is_one_gzip_member_of_the_plain_body() -> None:
    registry = CollectorRegistry()
    Counter("live_requests", "A process counter", registry=registry).inc()
    async with client(publisher(), registry) as test_client:
        plain_headers, plain = await raw_get(test_client, "identity")
        gz_headers, wire = await raw_get(test_client, "gzip")

    assert "content-encoding" not in plain_headers
    assert gz_headers["content-encoding"] == "gzip"
    assert gz_headers["vary"] == "Accept-Encoding"
    assert plain_headers["vary"] == "Accept-Encoding"
    assert wire[:2] == b"\x1f\x8b"
    assert len(wire) < len(plain)
    # gzip.decompress reads every member; one member proves the stream is not a concatenation.
    assert gzip.decompress(wire) == plain
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert decompressor.decompress(wire) == plain
    assert decompressor.eof and decompressor.unused_data == b""
    assert b"live_requests_total 1.0" in plain
    assert b'circleci_workflow_runs_total{project="gh/acme/api"' in plain


async def test_openmetrics_is_compressed_too() -> None:
    async with client(publisher(), CollectorRegistry()) as test_client:
        headers, wire = await raw_get(test_client, "gzip", "application/openmetrics-text")
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert gzip.decompress(wire).endswith(b"# EOF\n")


async def test_scrapes_compress_only_the_live_families_not_the_cached_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pub = publisher()
    deflated: list[int] = []
    real = exposition.deflate_piece

    def counting(data: bytes) -> bytes:
        deflated.append(len(data))
        return real(data)

    monkeypatch.setattr(exposition, "deflate_piece", counting)
    async with client(pub, CollectorRegistry()) as test_client:
        bodies = [gzip.decompress((await raw_get(test_client, "gzip"))[1]) for _ in range(5)]
    assert deflated == []  # the render's pieces were deflated once, when they were rendered
    assert all(body.startswith(pub.rendered.text) for body in bodies)


async def test_a_render_deflates_only_the_parts_it_renders_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pub = publisher()
    for n in range(20):  # another project, with many series of its own
        pub.state.apply(updates.WorkflowUpdate("gh/acme/web", "main", f"wf-{n}", f"v{n}", 1,
                                               "success", 20.0, 50.0, "u"))  # fmt: skip
    await pub.publish_now()
    deflated: list[bytes] = []
    real = exposition.deflate_piece

    def counting(data: bytes) -> bytes:
        deflated.append(data)
        return real(data)

    monkeypatch.setattr(exposition, "deflate_piece", counting)
    pub.state.apply(updates.WorkflowUpdate(P, "main", "build", "w2", 2, "failed", 60.0, 90.0, "u"))
    await pub.publish_now()
    assert deflated
    assert not any(b"gh/acme/web" in data and b"wf-" in data for data in deflated)
    head = pub.rendered.text_gzip
    assert gzip.decompress(head.head + head.finish(b"")) == pub.rendered.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("*", True),
        ("identity", False),
        ("", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, identity", False),
        ("br", False),
    ],
)
def test_accept_encoding_is_parsed(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected
