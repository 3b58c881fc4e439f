"""Named SQL blocks from bench/sql/*.sql, in the format of messaging/store/*.sql:
a header line ``-- name: some_query``, comments saying what $1..$n are, then the
statement, up to the next header."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def _load(filename: str) -> dict[str, str]:
    parts = _HEADER.split((SQL_DIR / filename).read_text(encoding="utf-8"))
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def query(filename: str, name: str) -> str:
    """One named query of bench/sql/<filename>."""
    queries = _load(filename)
    if name not in queries:
        raise KeyError(f"bench/sql/{filename} has no query named {name!r}")
    return queries[name]
