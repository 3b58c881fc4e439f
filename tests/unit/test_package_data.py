"""What the package needs at run time ships in it: every .sql and .json file
under messaging/ is covered by pyproject's package data, and the migrations are
found through the package, not through the checkout around it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import messaging
from messaging.schema import MIGRATIONS_DIR, TRIGGERS_DIR, migration_versions, trigger_files

PACKAGE = Path(messaging.__file__).parent
ROOT = PACKAGE.parent


def test_every_data_file_of_the_package_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["messaging"]
    shipped = {p for pattern in patterns for p in PACKAGE.glob(pattern)}
    data = {p for suffix in ("*.sql", "*.json") for p in PACKAGE.rglob(suffix)}
    assert data and data <= shipped, sorted(str(p) for p in data - shipped)


def test_migrations_and_triggers_are_found_inside_the_package() -> None:
    assert MIGRATIONS_DIR.is_relative_to(PACKAGE)
    assert TRIGGERS_DIR.is_relative_to(PACKAGE)
    assert len(migration_versions()) >= 7
    assert [p.name for p in trigger_files()] == [
        "api_keys_notify.sql",
        "inbound_events_notify.sql",
        "messages_stream.sql",
        "outbound_messages_notify.sql",
    ]
