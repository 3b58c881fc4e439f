"""JSON text from outside the service, parsed with the limits that keep hostile
input out: nesting deeper than MAX_DEPTH, NUL characters and lone surrogates
(which PostgreSQL's jsonb refuses), non-finite or enormous numbers, and lists or
objects of more than MAX_LIST_ITEMS members. Pure; used by the HTTP edge and the
mock providers alike.

Two passes. The first is compiled (msgspec): it takes the shape of almost every
body the service receives, an object whose values are strings, nulls or lists
of strings, and then needs only the NUL and size checks. Anything else (numbers,
nesting, invalid JSON, a lone surrogate) goes to the second, the json module and
a walk of the whole value, which finds and names the problem. Both passes answer
the same value for every body the first one takes."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec

from messaging.errors import FieldError, InvalidRequest

MAX_DEPTH = 16
# Members of any one JSON list or object in a request body, unless the caller
# allows more (the mock's script: 10,000).
MAX_LIST_ITEMS = 1000

# The first pass's shape: no number, no nesting below a list of strings.
_FLAT = msgspec.json.Decoder(dict[str, str | list[str] | None])
_NUL = "\x00"


def parse_json(raw: bytes, *, max_items: int = MAX_LIST_ITEMS) -> dict[str, Any]:
    """The JSON object in a request body, or InvalidRequest (400); max_items bounds
    the members of every list and object in it."""
    return parse_json_text(raw, max_items=max_items)[0]


def parse_json_text(raw: bytes, *, max_items: int = MAX_LIST_ITEMS) -> tuple[dict[str, Any], str]:
    """parse_json's object and the body's text: JSON that passed every check here,
    fit to be stored as it came (PostgreSQL's jsonb takes whatever passes)."""
    flat = _flat(raw, max_items)
    if flat is not None:
        return flat, raw.decode("utf-8")
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidRequest(f"The body is not valid JSON: {_short(exc)}") from None
    if not isinstance(value, dict):
        raise InvalidRequest("The body must be a JSON object.")
    problem = _hostile(value, "", 0, max_items)
    if problem:
        raise InvalidRequest("The body contains a value this service does not accept.", [problem])
    return value, text


def _flat(raw: bytes, max_items: int) -> dict[str, Any] | None:
    """The first pass: the object, if it has the flat shape and passes the
    checks; None sends the body to the second pass (which may still accept it)."""
    try:
        value = _FLAT.decode(raw)
    except msgspec.DecodeError:
        return None
    if len(value) > max_items:
        return None
    for key, item in value.items():
        if _NUL in key:
            return None
        if item.__class__ is str:
            if _NUL in item:
                return None
        elif item is not None and (len(item) > max_items or any(_NUL in s for s in item)):
            return None
    return value


def _hostile(value: Any, pointer: str, depth: int, max_items: int) -> FieldError | None:
    """The first value PostgreSQL's jsonb or our limits cannot take, if any."""
    if depth > MAX_DEPTH:
        return FieldError(pointer or "/", f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return _bad_string(value, pointer)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if abs(value) < 10**18 else FieldError(pointer, "number is too large")
    if isinstance(value, float):
        return None if math.isfinite(value) else FieldError(pointer, "number is not finite")
    if isinstance(value, list):
        if len(value) > max_items:
            return FieldError(pointer or "/", f"list has more than {max_items} items")
        for i, item in enumerate(value):
            problem = _hostile(item, f"{pointer}/{i}", depth + 1, max_items)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        if len(value) > max_items:
            return FieldError(pointer or "/", f"object has more than {max_items} members")
        for key, item in value.items():
            key_problem = _bad_string(key, pointer)
            if key_problem:
                return key_problem
            problem = _hostile(item, f"{pointer}/{_escape(key)}", depth + 1, max_items)
            if problem:
                return problem
        return None
    return FieldError(pointer, "unsupported value")


def _bad_string(value: str, pointer: str) -> FieldError | None:
    if "\x00" in value:
        return FieldError(pointer or "/", "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return FieldError(pointer or "/", "contains an unpaired surrogate")
    return None


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")[:100]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).splitlines()[0][:200]
