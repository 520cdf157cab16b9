"""The v1 signature: CircleCI's test vectors, version handling and secret rotation."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from exporter.web.webhooks import SignatureVerifier
from tests.fixtures import signature_vectors

VECTORS = signature_vectors()  # CircleCI's published test vectors


def verifier(*secrets: str) -> SignatureVerifier:
    return SignatureVerifier([SecretStr(s) for s in secrets])


@pytest.mark.parametrize(("body", "secret", "hexdigest"), VECTORS)
def test_circleci_vectors_verify(body: bytes, secret: str, hexdigest: str) -> None:
    assert verifier(secret).verify(body, f"v1={hexdigest}")


@pytest.mark.parametrize(("body", "secret", "hexdigest"), VECTORS)
def test_vector_fails_with_another_body_or_secret(body: bytes, secret: str, hexdigest: str) -> None:
    assert not verifier(secret).verify(body + b" ", f"v1={hexdigest}")
    assert not verifier(secret + "x").verify(body, f"v1={hexdigest}")


@pytest.mark.parametrize(
    "header",
    [None, "", "v1=not-a-valid-signature", "v1=", "v1", "garbage", "sha256=734cc62f3284",
     # Only v1 counts: a (future) v2 alone must not be accepted, whatever it holds.
     "v2=734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a",
     # Uppercase hex is not what CircleCI sends and not what we compute.
     "v1=734CC62F32841568F45715AEB9F4D7891324E6D948E4C6C60C0621CDAC48623A"],
)  # fmt: skip
def test_missing_or_bad_signatures_are_rejected(header: str | None) -> None:
    assert not verifier("secret").verify(b"hello world", header)


def test_v1_is_found_among_several_versions() -> None:
    good = "734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a"
    check = verifier("secret")
    assert check.verify(b"hello world", f"v2=abc, v1={good}")
    assert check.verify(b"hello world", f"v1={good},v2=whatever")
    # A bad v1 next to a "valid looking" other version still fails.
    assert not check.verify(b"hello world", f"v1=00,v0={good}")


def test_any_of_several_secrets_verifies_during_rotation() -> None:
    check = verifier("new-secret", "secret")
    assert check.verify(
        b"hello world", "v1=734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a"
    )
    assert (
        check.verify(
            b"lalala", "v1=daa220016c8f29a8b214fbfc3671aeec2145cfb1e6790184ffb38b6d0425fa00"
        )
        is False
    )  # signed with "another-secret", which is not configured


def test_a_verifier_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        SignatureVerifier([])
