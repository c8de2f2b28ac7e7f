"""What a project says about itself: the title, description and licence it is served with.

They live in the project file, not in the metadata file, so one metadata file serves every project
and a project keeps its own words wherever it is served from.
"""

from __future__ import annotations

import sqlite_utils

from .errors import QualcodeError

FIELDS = ("title", "description", "license", "license_url", "source", "source_url")


def get_about(db: sqlite_utils.Database) -> dict[str, str | None]:
    """The project's title, description, licence and source; ``None`` where unset."""
    row = db.execute(f"SELECT {', '.join(FIELDS)} FROM about WHERE id = 1").fetchone()
    return dict(zip(FIELDS, row or [None] * len(FIELDS)))


def set_about(db: sqlite_utils.Database, **values: str | None) -> dict[str, str | None]:
    """Change the given fields (an empty string clears one); the others stay as they were."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise QualcodeError(f"unknown field {', '.join(sorted(unknown))}", hint=f"use {', '.join(FIELDS)}")
    for name, value in values.items():
        if value is not None and len(value) > 10_000:
            raise QualcodeError(f"the {name} is {len(value):,} characters long", hint="keep it under 10,000")
    with db.atomic():
        current = get_about(db)
        current.update({k: (v.strip() or None) for k, v in values.items() if v is not None})
        db.execute(f"INSERT OR REPLACE INTO about (id, {', '.join(FIELDS)}) VALUES (1, {', '.join('?' * len(FIELDS))})",
                   [current[k] for k in FIELDS])
    return current


def apply_to_metadata(metadata: dict, about: dict[str, str | None], default_title: str) -> dict:
    """Datasette metadata carrying the project's own words; a project that set none gets its file name."""
    data = dict(metadata)
    for key in ("title", "description", "description_html", "license", "license_url", "source", "source_url"):
        data.pop(key, None)
    data["title"] = about.get("title") or default_title
    for key in ("description", "license", "license_url", "source", "source_url"):
        if about.get(key):
            data[key] = about[key]
    return data
