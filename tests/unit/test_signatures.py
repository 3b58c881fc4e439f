"""The Standard Webhooks check, pure: secrets, signing, and every refusal, with
the package of the scheme's authors (standardwebhooks) as the other side."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from messaging.errors import SignatureRejected
from messaging.signatures import (
    TOLERANCE_S,
    Verifier,
    decode_secret,
    encode_secret,
    sign,
    signature_headers,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = 1_730_469_600
BODY = '{"from":"+18045551234","body":"h\u00e9llo \u2603"}'.encode()


def headers(
    msg_id: str = "msg_1", timestamp: int = NOW, signature: str | None = None
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature or sign(KEY, msg_id, timestamp, BODY),
    }


def refusal(verifier: Verifier, given: dict[str, str], body: bytes = BODY) -> SignatureRejected:
    with pytest.raises(SignatureRejected) as caught:
        verifier.check_body(verifier.check_headers(given, NOW), body)
    return caught.value


def test_secrets_round_trip_and_padding_may_be_left_off() -> None:
    secret = encode_secret(KEY)
    assert secret.startswith("whsec_")
    assert decode_secret(secret) == KEY
    assert decode_secret(secret.rstrip("=")) == KEY


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        (base64.b64encode(KEY).decode(), "whsec_"),
        ("whsec_not*base64", "base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "5 bytes"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "65 bytes"),
    ],
)
def test_an_unusable_secret_says_why_and_never_repeats_it(secret: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        decode_secret(secret)
    assert secret not in str(caught.value)


@pytest.mark.parametrize("body", [BODY, b"", b"{}", "\u00e9".encode() * 1000])
def test_our_signature_is_the_packages_and_each_verifies_the_other(body: bytes) -> None:
    theirs = Webhook(encode_secret(KEY))
    at = datetime.fromtimestamp(NOW, UTC)
    assert sign(KEY, "msg_a.b", NOW, body) == theirs.sign("msg_a.b", at, body.decode())
    # Theirs checks the clock itself: sign for now.
    now = int(datetime.now(UTC).timestamp())
    theirs.verify(body, signature_headers([KEY], "msg_1", now, body), json_parse=False)
    ours = Verifier([KEY])
    given = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": theirs.sign("msg_1", at, body.decode()),
    }
    ours.check_body(ours.check_headers(given, NOW), body)


def test_the_package_refuses_what_we_refuse_for_a_wrong_key() -> None:
    now = int(datetime.now(UTC).timestamp())
    with pytest.raises(WebhookVerificationError):
        Webhook(encode_secret(OTHER_KEY)).verify(
            BODY, signature_headers([KEY], "msg_1", now, BODY), json_parse=False
        )


def test_any_valid_signature_of_several_passes_and_other_schemes_are_skipped() -> None:
    verifier = Verifier([KEY])
    junk = "v1a,bm90IG91cnM= v1,notbase64!! v1," + base64.b64encode(bytes(32)).decode()
    given = headers(signature=f"{junk} {sign(KEY, 'msg_1', NOW, BODY)}")
    verifier.check_body(verifier.check_headers(given, NOW), BODY)


def test_either_of_two_keys_passes() -> None:
    verifier = Verifier([OTHER_KEY, KEY])
    for key in (KEY, OTHER_KEY):
        given = headers(signature=sign(key, "msg_1", NOW, BODY))
        verifier.check_body(verifier.check_headers(given, NOW), BODY)


@pytest.mark.parametrize("skew", [-TOLERANCE_S, 0, TOLERANCE_S])
def test_a_timestamp_within_five_minutes_either_way_passes(skew: int) -> None:
    verifier = Verifier([KEY])
    verifier.check_body(verifier.check_headers(headers(timestamp=NOW + skew), NOW), BODY)


@pytest.mark.parametrize(
    ("skew", "says"), [(-TOLERANCE_S - 1, "past"), (TOLERANCE_S + 1, "future"), (-360, "past")]
)
def test_a_timestamp_beyond_five_minutes_is_stale(skew: int, says: str) -> None:
    verifier = Verifier([KEY])
    with pytest.raises(SignatureRejected, match=says) as caught:
        verifier.check_headers(headers(timestamp=NOW + skew), NOW)
    assert caught.value.reason == "stale"


@pytest.mark.parametrize("absent", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_named(absent: str) -> None:
    given = {k: v for k, v in headers().items() if k != absent}
    error = refusal(Verifier([KEY]), given)
    assert error.reason == "missing"
    assert absent in error.detail


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-timestamp", "soon"),
        ("webhook-timestamp", "1730469600.5"),
        ("webhook-timestamp", "-1730469600"),
        ("webhook-timestamp", "1_730_469_600"),
        ("webhook-timestamp", "\u0661\u0662"),  # Arabic-Indic digits: isdigit() but not ASCII
        ("webhook-signature", "garbage"),
        ("webhook-signature", "v1,"),
        ("webhook-signature", "v1,%%%%"),
        ("webhook-signature", "v1," + base64.b64encode(bytes(16)).decode()),
        ("webhook-signature", "v1a,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
    ],
)
def test_a_malformed_header_is_named(name: str, value: str) -> None:
    error = refusal(Verifier([KEY]), {**headers(), name: value})
    assert error.reason == "malformed"
    assert name in error.detail


def test_a_wrong_key_a_changed_body_and_another_id_are_wrong() -> None:
    verifier = Verifier([KEY])
    flipped = bytearray(BODY)
    flipped[3] ^= 1
    cases = [
        (headers(signature=sign(OTHER_KEY, "msg_1", NOW, BODY)), BODY),
        (headers(), bytes(flipped)),
        (headers(msg_id="msg_2", signature=sign(KEY, "msg_1", NOW, BODY)), BODY),
        (headers(timestamp=NOW + 1, signature=sign(KEY, "msg_1", NOW, BODY)), BODY),
    ]
    for given, body in cases:
        error = refusal(verifier, given, body)
        assert error.reason == "wrong"
        assert encode_secret(KEY) not in error.detail


@pytest.mark.parametrize("length", [1, 24, 32, 63, 64, 65, 100, 200])
def test_the_verifiers_hmac_is_hmacs_for_every_key_length(length: int) -> None:
    # The verifier computes HMAC from precomputed pad states; sign() uses hmac.
    key = os.urandom(length)
    for body in (b"", BODY, os.urandom(1000)):
        verifier = Verifier([key])
        given = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(NOW),
            "webhook-signature": sign(key, "msg_1", NOW, body),
        }
        verifier.check_body(verifier.check_headers(given, NOW), body)


def test_a_verifier_needs_a_key() -> None:
    with pytest.raises(ValueError):
        Verifier([])


def test_random_keys_and_bodies_agree_with_the_package() -> None:
    for _ in range(50):
        key, body = os.urandom(24 + os.urandom(1)[0] % 41), os.urandom(64).hex().encode()
        at = datetime.fromtimestamp(NOW, UTC)
        assert sign(key, "msg_x", NOW, body) == Webhook(encode_secret(key)).sign(
            "msg_x", at, body.decode()
        )
