"""What the package ships of its schema, found through the package (so that an
installed wheel carries it, not only a checkout):

- migrations/: dbmate's migrations, applied in version order;
- triggers/: the trigger functions (CREATE OR REPLACE, versioned names),
  installed after the migrations whenever a file's content changes;
- schema.sql: the schema they build, as dbmate dumps it (`make schema`; a test
  checks it is current).

Applying them is migrate.py's; what a database has applied, store/schema_migrations.py's.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# The package's own folder: a real directory for dbmate, in a checkout and in an
# installed (unzipped) wheel alike.
_HERE = Path(str(files(__name__)))
MIGRATIONS_DIR = _HERE / "migrations"
TRIGGERS_DIR = _HERE / "triggers"
SCHEMA_FILE = _HERE / "schema.sql"


def migration_versions() -> list[str]:
    """Versions of the shipped migrations, oldest first."""
    return sorted(p.name.split("_", 1)[0] for p in MIGRATIONS_DIR.glob("*.sql"))


def trigger_files() -> list[Path]:
    """The shipped trigger files, in the order they are installed."""
    return sorted(TRIGGERS_DIR.glob("*.sql"))
