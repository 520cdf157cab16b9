"""Sharding across replicas: which projects this replica tracks (docs/architecture.md §Sharding).

The convention is kube-state-metrics': `--shard N --total-shards M`, and a replica owns the
projects whose stable hash of the slug modulo M equals N. The hash is the first 8 bytes, read
as a big-endian unsigned integer, of the SHA-256 of the normalized slug in UTF-8: long VCS names
shortened (`github/` → `gh/`, `bitbucket/` → `bb/`) and lower-cased, because CircleCI compares
slugs case-insensitively. Python's `hash()` is salted per process, so replicas would disagree;
SHA-256 gives the same answer in every process and language
(`printf gh/acme/api | sha256sum`, first 16 hex digits, modulo M).

`Shard.owns` is the one ownership predicate: configured projects, projects discovered from
`orgs:` and the org change feed all pass through `LiveCollector.add_project`, which asks it.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass

_LONG_VCS = {"github": "gh", "bitbucket": "bb"}
# The ordinal a StatefulSet appends to its pods' names: `<statefulset>-<ordinal>`.
_ORDINAL = re.compile(r"-(0|[1-9][0-9]{0,8})$")


def normalized_slug(slug: str) -> str:
    """The spelling the hash reads: `GitHub/Acme/API` and `gh/acme/api` are one project."""
    head, sep, rest = slug.strip().partition("/")
    head = head.lower()
    return f"{_LONG_VCS.get(head, head)}{sep}{rest}".lower()


def slug_hash(slug: str) -> int:
    """A 64-bit hash of the normalized slug, the same in every process (see module docs)."""
    digest = hashlib.sha256(normalized_slug(slug).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def owner_of(slug: str, total_shards: int) -> int:
    """The shard, 0 to total_shards - 1, that tracks `slug`."""
    return slug_hash(slug) % total_shards


@dataclass(frozen=True, slots=True)
class Shard:
    """This replica's place: shard `index` of `total`. `Shard()` is the whole: one replica."""

    index: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        if self.total < 1 or not 0 <= self.index < self.total:
            raise ValueError(
                f"shard {self.index} of {self.total}: the shard must be 0 to total_shards - 1"
            )

    @property
    def sharded(self) -> bool:
        return self.total > 1

    def owns(self, slug: str) -> bool:
        """Whether this replica tracks the project `slug`."""
        return self.total == 1 or owner_of(slug, self.total) == self.index


UNSHARDED = Shard()


def ordinal_of_pod_name(name: str) -> int:
    """The ordinal suffix of a StatefulSet pod name, `circleci-exporter-2` → 2; ValueError
    naming the name when it has none."""
    found = _ORDINAL.search(name.strip())
    if found is None:
        raise ValueError(
            f"pod name {name.strip()!r} has no StatefulSet ordinal suffix like -0, -1, …"
        )
    return int(found.group(1))


def check_url_template(template: str) -> None:
    """ValueError, in one line, unless `template` is an http(s) URL with exactly the field
    `{shard}`, e.g. `https://metrics.example.com/shard-{shard}/webhooks/circleci`."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise ValueError(f"{template!r} is not a valid template: {err}") from None
    others = sorted({f for f in fields if f != "shard"})
    if others:
        names = ", ".join("{" + f + "}" for f in others)
        raise ValueError(f"{template!r}: unknown field {names}; the only field is {{shard}}")
    if "shard" not in fields:
        raise ValueError(f"{template!r} has no {{shard}} field to put the shard number in")
    if not template.startswith(("https://", "http://")):
        raise ValueError(f"{template!r} is not an http(s) URL")


def shard_url(template: str, shard: int) -> str:
    """The URL of `shard` from a template `check_url_template` accepted."""
    return template.format(shard=shard)
