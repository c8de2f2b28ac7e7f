"""Datasette: the metadata we serve the project with, and serving it.

This module is also registered as a Datasette plugin (see pyproject.toml), so
the pages and hooks we add later live beside the code that serves them.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import tempfile
from pathlib import Path

import yaml

from .errors import QualcodeError

METADATA_FILE = "datasette-metadata.yml"
#: The database name used as the key in datasette-metadata.yml.
METADATA_DATABASE = "qualcode"


def load_metadata(path: str | Path | None, db_path: str | Path) -> dict:
    """Read the metadata file and point its database section at the file being served.

    Datasette keys metadata by database name (the file's stem), while one
    metadata file serves any project file, so we rename the section.
    """
    if path is None:
        if not Path(METADATA_FILE).is_file():
            return {}
        path = METADATA_FILE
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise QualcodeError("no such metadata file", path) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise QualcodeError(f"YAML syntax error: {getattr(e, 'problem', e)}", path, mark.line + 1 if mark else None) from None
    databases = data.get("databases") or {}
    name = Path(db_path).stem
    if METADATA_DATABASE in databases and name != METADATA_DATABASE:
        databases[name] = databases.pop(METADATA_DATABASE)
    return data


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def datasette_args(db_path: str | Path, metadata: dict, host: str, port: int) -> list[str]:
    """Arguments for ``datasette serve``; the metadata is written to a temporary file."""
    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="qualcode-metadata-", delete=False)
    with handle:
        yaml.safe_dump(metadata, handle, sort_keys=False, allow_unicode=True)
    atexit.register(os.remove, handle.name)
    return ["serve", str(db_path), "--metadata", handle.name, "--host", host, "--port", str(port)]
