"""Address normalisation: the single definition of when two addresses are the same.

Phone numbers become E.164 (+ and up to 15 digits); email addresses are
Unicode-normalised to NFC and case-folded (str.casefold), so that one address
written composed or decomposed, or in another case, is one address. A
conversation's key is made of normalised addresses (models.conversation_key).
"""

from __future__ import annotations

import re
import unicodedata

_PHONE_FORMATTING = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Deliberately simple: one @, no spaces or control characters, a dotted domain
# of letters, digits and hyphens. The provider delivers; we only need a stable key.
_EMAIL = re.compile(
    r"[^\s@<>()\[\],;:\"\\\x00-\x1f\x7f]{1,64}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def normalize_phone(raw: str) -> str | None:
    """E.164 form of a phone number, or None when it is not one.

    Formatting characters (spaces, dashes, dots, parentheses) are dropped; a
    leading 00 means +; a bare ten-digit number is taken as North American (+1).
    """
    if _E164.fullmatch(raw):
        return raw  # already E.164, as providers send it: nothing below changes it
    value = raw.strip()
    if value.lower().startswith("tel:"):
        value = value[4:]
    value = _PHONE_FORMATTING.sub("", value)
    if value.startswith("00"):
        value = "+" + value[2:]
    if not value.startswith("+"):
        if len(value) == 10 and value.isdigit():
            value = "+1" + value
        elif len(value) == 11 and value.startswith("1") and value.isdigit():
            value = "+" + value
    return value if _E164.fullmatch(value) else None


def normalize_email(raw: str) -> str | None:
    """The address in NFC, case-folded, or None when it is not an email address.

    A display-name form such as ``Ann <ann@example.com>`` gives the bare address.
    Case folding may change a length (ß becomes ss), so the address is checked
    after it is normalised, and NFC is applied again after folding.
    """
    value = raw.strip()
    if value.endswith(">") and "<" in value:
        value = value[value.rindex("<") + 1 : -1].strip()
    value = unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).casefold())
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        return None
    return value
