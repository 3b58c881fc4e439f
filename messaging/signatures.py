"""Standard Webhooks signatures: checking a webhook's `webhook-id`,
`webhook-timestamp` and `webhook-signature` headers against a provider's
secrets, and making them (the mock providers sign what they send). Pure: no
aiohttp, no app state; the HTTP edge (http/webhooks.py) and the mock providers
(mock/providers.py) both use it, which is why it lives outside http/.

The scheme:

- A secret is `whsec_` and the base64 of the HMAC key (24 to 64 bytes).
- A signature is `v1,` and the base64 of HMAC-SHA256(key, `{id}.{timestamp}.{body}`),
  the body being the bytes as sent: before any Content-Encoding is undone, and
  never re-serialised.
- The signature header is a space-separated list: a sender rotating its secret
  signs with the old and the new one, and any valid `v1` entry passes. Entries
  of other schemes (`v1a`, asymmetric) are not ours and are skipped.
- The timestamp is integer Unix seconds within TOLERANCE_S of now, either way.
  That bounds how long a captured request can be replayed, and a replay inside
  the window stores nothing new: webhooks are deduplicated on their provider id.

Verification is two steps so that the edge can refuse a request before it
reads a byte of the body when its headers already fail (check_headers), and
then before the body is decoded or parsed (check_body). Comparisons are
constant-time (hmac.compare_digest); refusals say what was wrong (missing,
malformed, stale, wrong) and never which secret was tried. Both run on every
signed webhook, so they are kept to a few microseconds (see _Key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from binascii import b2a_base64
from collections.abc import Mapping, Sequence

from messaging.errors import SignatureRejected

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
TOLERANCE_S = 300
SCHEME = "v1"

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
# The challenge of a 401 (RFC 9110 wants one): Standard Webhooks registers no
# auth scheme, so it names the scheme the three headers follow.
CHALLENGE = "Standard-Webhooks"

_DIGEST_BYTES = 32
_V1 = f"{SCHEME},"
# "v1," and the 44 characters of 32 bytes in base64.
_V1_LENGTH = len(_V1) + 4 * -(-_DIGEST_BYTES // 3)
_BLOCK_BYTES = 64  # SHA-256's
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
# Unix seconds: ten digits until the year 2286; more is not a timestamp.
_MAX_TIMESTAMP_DIGITS = 12


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret. ValueError says what is wrong with it,
    and never repeats it."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"does not start with {SECRET_PREFIX}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # Padding may be left off, as some senders print their secrets.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"is not base64 after {SECRET_PREFIX}") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"holds a key of {len(key)} bytes; Standard Webhooks keys are "
            f"{MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes"
        )
    return key


def encode_secret(key: bytes) -> str:
    """The `whsec_` form of a key: what decode_secret reads back."""
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,...` signature of a webhook."""
    mac = hmac.digest(key, _signed_content(msg_id, str(timestamp), body), "sha256")
    return f"{SCHEME},{base64.b64encode(mac).decode('ascii')}"


def signature_headers(
    keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of a webhook signed with each of keys (a sender
    mid-rotation passes the new and the old)."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(sign(key, msg_id, timestamp, body) for key in keys),
    }


# What check_headers established, for check_body: the signed content's prefix
# (`{id}.{timestamp}.`) and the v1 signatures given, still in base64. A plain
# tuple: it is built once per webhook, on the ingest path.
SignedHeaders = tuple[bytes, tuple[str, ...]]


class Verifier:
    """Checks webhooks against one provider's secrets: one, or the new and the
    old while a secret is rotated."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a Verifier needs at least one key")
        self._keys = tuple(_Key(key) for key in keys)

    def check_headers(self, headers: Mapping[str, str], now: float) -> SignedHeaders:
        """The headers present, well formed, and the timestamp within
        TOLERANCE_S of now (Unix seconds); SignatureRejected otherwise."""
        msg_id = headers.get(ID_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if not msg_id or not timestamp or not signature:
            absent = [
                name
                for name, value in (
                    (ID_HEADER, msg_id),
                    (TIMESTAMP_HEADER, timestamp),
                    (SIGNATURE_HEADER, signature),
                )
                if not value
            ]
            named = " and ".join([", ".join(absent[:-1]), absent[-1]] if absent[:-1] else absent)
            raise _refused(
                "missing",
                f"The webhook is not signed: {named} {'is' if len(absent) == 1 else 'are'} "
                "missing. This endpoint takes webhooks signed with the provider's secret "
                "(Standard Webhooks).",
            )
        if not (
            timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS
        ):
            raise _refused(
                "malformed", f"The {TIMESTAMP_HEADER} header is not integer Unix seconds."
            )
        signatures = _v1_signatures(signature)
        skew = int(timestamp) - now
        if skew > TOLERANCE_S or skew < -TOLERANCE_S:
            raise _refused(
                "stale",
                f"The {TIMESTAMP_HEADER} header is {abs(skew):.0f} s in the "
                f"{'past' if skew < 0 else 'future'}; it must be within {TOLERANCE_S} s of "
                "the server's clock.",
            )
        return _signed_content(msg_id, timestamp, b""), signatures

    def check_body(self, signed: SignedHeaders, body: bytes) -> None:
        """A signature of check_headers' matches the body as sent under one of
        the keys; SignatureRejected otherwise."""
        prefix, signatures = signed
        content = prefix + body
        for key in self._keys:
            expected = b2a_base64(key.mac(content), newline=False).decode("ascii")
            for given in signatures:
                if hmac.compare_digest(expected, given):
                    return
        raise _refused(
            "wrong",
            f"No signature in the {SIGNATURE_HEADER} header matches this webhook "
            "under the provider's secret.",
        )


class _Key:
    """HMAC-SHA256 under one key (RFC 2104) with the hash states of the padded
    key computed once: a webhook then costs two state copies, where OpenSSL 3's
    HMAC set-up per call (hmac.digest) costs more than hashing a short body.
    sign() uses hmac itself, and the tests hold the two (and standardwebhooks)
    to the same signatures."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK_BYTES:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_BLOCK_BYTES, b"\0")
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))

    def mac(self, content: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(content)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _v1_signatures(header: str) -> tuple[str, ...]:
    """The v1 signatures of a signature header, in base64; SignatureRejected when
    there is none. An entry of another scheme (v1a), or one that cannot be the
    base64 of an HMAC-SHA256, is skipped rather than refused: another valid
    entry may follow. Signatures are compared in the canonical base64 every
    encoder writes, rather than decoded: cheaper, and as constant-time."""
    if len(header) == _V1_LENGTH and header.startswith(_V1) and header.isascii():
        return (header[len(_V1) :],)  # one signature: almost every webhook
    found = tuple(
        entry[len(_V1) :]
        for entry in header.split()
        if len(entry) == _V1_LENGTH and entry.startswith(_V1) and entry.isascii()
    )
    if not found:
        raise _refused(
            "malformed",
            f"The {SIGNATURE_HEADER} header carries no {SCHEME} signature "
            f"('{_V1}' and the base64 of a {_DIGEST_BYTES}-byte HMAC-SHA256).",
        )
    return found


def _refused(reason: str, detail: str) -> SignatureRejected:
    return SignatureRejected(reason, detail, CHALLENGE)


def _signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    # Header values reach us decoded as UTF-8 with surrogateescape (aiohttp):
    # encoding them back the same way gives the bytes that were sent.
    return f"{msg_id}.{timestamp}.".encode("utf-8", "surrogateescape") + body
