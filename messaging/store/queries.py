"""Named SQL queries, loaded once from the .sql files beside this module.

Each block starts with a header line ``-- name: some_query`` followed by comments
that say what it does and what $1..$n are; the block runs until the next header.
Python never builds SQL from strings: it asks for a query by name.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_SQL_DIR = Path(__file__).parent
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def load(filename: str) -> dict[str, str]:
    """The named queries of one .sql file of store/, by name."""
    text = (_SQL_DIR / filename).read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{filename}: query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


def query(filename: str, name: str) -> str:
    """One named query; a missing name fails at import time of the caller."""
    queries = load(filename)
    if name not in queries:
        raise KeyError(f"{filename} has no query named {name!r}")
    return queries[name]
