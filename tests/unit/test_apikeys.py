"""What a key is, its hash, scopes and names, and the Authorization header (pure)."""

from __future__ import annotations

import hashlib
import re

import pytest

from messaging.apikeys import NAME, key_hash, new_key, parse_scopes
from messaging.errors import Unauthenticated
from messaging.http.auth import bearer_key


def test_a_key_is_the_prefix_and_32_random_bytes_url_safe() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert re.fullmatch(r"msk_[A-Za-z0-9_-]{43}", key)  # 43 base64 characters: 32 bytes


def test_the_hash_is_the_sha256_of_the_whole_key() -> None:
    key = new_key()
    assert key_hash(key) == hashlib.sha256(key.encode()).digest()
    assert len(key_hash(key)) == 32


def test_scopes() -> None:
    assert parse_scopes("send,read") == ("send", "read")
    assert parse_scopes(" admin ") == ("admin",)
    for bad in ("", "send,", "write", "send,send", "SEND"):
        with pytest.raises(ValueError):
            parse_scopes(bad)


@pytest.mark.parametrize("name", ["billing", "ci-2", "a", "team.web_1", "x" * 64])
def test_names_that_are_taken(name: str) -> None:
    assert NAME.fullmatch(name)


@pytest.mark.parametrize("name", ["", "-lead", "two words", "é", "x" * 65, "a/b"])
def test_names_that_are_refused(name: str) -> None:
    assert not NAME.fullmatch(name)


def test_the_bearer_key_of_an_authorization_header() -> None:
    assert bearer_key("Bearer msk_abc") == "msk_abc"
    assert bearer_key("bearer   msk_abc  ") == "msk_abc"
    for header in (None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "msk_abc"):
        with pytest.raises(Unauthenticated) as refused:
            bearer_key(header)
        assert not refused.value.invalid_key  # no key came: a plain challenge
