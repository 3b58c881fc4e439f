import unicodedata

import pytest

from messaging.models import channel_of, conversation_key
from messaging.normalize import normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+12016661234", "+12016661234"),
        ("+1 (201) 666-1234", "+12016661234"),
        ("201.666.1234", "+12016661234"),
        ("12016661234", "+12016661234"),
        ("tel:+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+0123456789", None),
        ("12345", None),
        ("+1201666123456789", None),
        ("not a number", None),
        ("", None),
    ],
)
def test_normalize_phone(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user@usehatchapp.com", "user@usehatchapp.com"),
        ("  Contact@Gmail.COM ", "contact@gmail.com"),
        ("Ann Example <Ann@Example.org>", "ann@example.org"),
        ("no-at-sign", None),
        ("a@b", None),
        ("two@@example.com", None),
        ("spa ce@example.com", None),
        ("x" * 65 + "@example.com", None),
    ],
)
def test_normalize_email(raw: str, expected: str | None) -> None:
    assert normalize_email(raw) == expected


def test_both_directions_share_a_key() -> None:
    assert conversation_key("sms", "+18045551234", "+12016661234") == conversation_key(
        "sms", "+12016661234", "+18045551234"
    )


def test_sms_and_mms_share_a_kind_email_apart() -> None:
    assert channel_of("sms") == channel_of("mms") == "sms"
    assert channel_of("email") == "email"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("\u00e9@example.com", "e\u0301@example.com"),  # NFC: composed and decomposed
        ("\u00c9@EXAMPLE.COM", "e\u0301@example.com"),
        ("\u212a@example.com", "k@example.com"),  # the Kelvin sign is canonically K
        ("Stra\u00dfe@example.com", "STRASSE@example.com"),  # casefold, not lower
        ("\u1e9e@example.com", "ss@example.com"),  # capital sharp s
        ("\u03a3\u03c2@example.com", "\u03c3\u03c3@example.com"),  # final sigma folds
    ],
)
def test_one_email_address_in_two_spellings_normalises_to_one(one: str, other: str) -> None:
    a, b = normalize_email(one), normalize_email(other)
    assert a is not None and a == b
    assert a == unicodedata.normalize("NFC", a) == a.casefold()
