"""Removing a secret from text, in every spelling a transport or server may echo it back.

httpx quotes an illegal header value as bytes (`b'TOKEN\\n'`), proxies echo URLs with the token
percent-encoded, and a `repr` escapes quotes and backslashes: replacing only the raw token would
let each of these through into logs and the landing page.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

REDACTED = "***"


class Redactor:
    def __init__(self, secrets: list[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            forms.update(
                (
                    secret,
                    repr(secret)[1:-1],
                    repr(secret.encode())[2:-1],
                    json.dumps(secret)[1:-1],
                    quote(secret, safe=""),
                    quote(secret),
                    quote_plus(secret),
                    secret.strip(),
                )
            )
        forms.discard("")
        # Longest first, so that a spelling containing another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text
