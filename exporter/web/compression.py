"""gzip for /metrics, paid once per rendered part rather than once per scrape.

Prometheus asks for gzip on every scrape. Each render comes with the gzip member of its body
all but the end (`exporter.metrics.exposition.GzipHead`, built from pieces deflated when they
were rendered); a scrape adds the few live process families in the final deflate block and the
trailer. The result is one ordinary gzip member, with the CRC and length of the whole body, for
the cost of compressing a few kilobytes per scrape.
"""

from __future__ import annotations


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (a `q=0` refuses it)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in {"gzip", "x-gzip", "*"}:
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False
