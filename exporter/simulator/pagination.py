"""CircleCI-style pages: 20 items, an opaque `next_page_token`, 404 Not Found for a bad token."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import TypeVar

PAGE_SIZE = 20  # fixed by the server, not settable by the client (circleci-api.md §Pagination)

T = TypeVar("T")


class InvalidPageToken(Exception):
    """A token this list never issued; CircleCI answers 404 Not Found (circleci-docs#6472)."""


def encode_token(scope: str, position: int | str) -> str:
    raw = json.dumps([scope, position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, scope: str) -> int | str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        issued_for, position = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidPageToken(token) from None
    if issued_for != scope or not isinstance(position, int | str) or isinstance(position, bool):
        raise InvalidPageToken(token)
    return position


def offset_page(
    items: Sequence[T], token: str | None, scope: str
) -> tuple[Sequence[T], str | None]:
    """One page of a list that does not change while it is paged (jobs, tests, Insights rows)."""
    start = 0
    if token:
        position = decode_token(token, scope)
        if not isinstance(position, int) or not 0 < position <= len(items):
            raise InvalidPageToken(token)
        start = position
    end = start + PAGE_SIZE
    return items[start:end], (encode_token(scope, end) if end < len(items) else None)


def take_page(items: Iterable[T]) -> tuple[list[T], bool]:
    """The first page of a (possibly lazy) stream and whether more items follow."""
    page = list(islice(items, PAGE_SIZE + 1))
    return page[:PAGE_SIZE], len(page) > PAGE_SIZE


def page_body(items: list[object], next_token: str | None) -> dict[str, object]:
    """Items plus the token, which is always present and `null` on the last page.

    The live API always sends the key (docs/circleci-api.md §Pagination); leaving it out is an
    opt-in fault (`FaultRule.omit_last_page_token_ratio`).
    """
    return {"items": items, "next_page_token": next_token}
