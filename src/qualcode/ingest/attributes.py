"""Document attributes: from front matter, a manifest CSV, and command-line options.

Precedence, most specific last: front matter < manifest < options. The options
are what the user typed for this very ingest, so they win.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import IngestError
from .decode import decode_text
from .csvread import read_csv

#: Attributes stored as their own columns; anything else goes into ``attributes`` JSON.
COLUMNS = ("id", "title", "kind", "site", "district", "role", "date", "published")
KINDS = ("interview", "focus_group", "site_visit", "observation", "document")
_DATE = re.compile(r"[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?")


@dataclass
class Manifest:
    path: Path
    rows: dict[Path, tuple[int, dict]]  # resolved file path -> (line, attributes)

    def lookup(self, file: Path) -> tuple[str, dict]:
        """The manifest's attributes for a file, and where they came from."""
        hit = self.rows.get(file.resolve())
        if hit is None:
            return str(self.path), {}
        line, attrs = hit
        return f"{self.path}:{line}", attrs


def read_manifest(path: str | Path) -> Manifest:
    """Read a manifest CSV: a ``path`` column, then any attributes.

    Paths are relative to the manifest's own folder, so a corpus folder can be
    moved or cloned anywhere.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError("no such manifest file", path)
    text, _ = decode_text(path.read_bytes(), str(path))
    fields, records = read_csv(text, path)
    if "path" not in fields:
        raise IngestError(
            f"the manifest has no 'path' column (columns: {', '.join(fields)})",
            path,
            1,
            hint="add a 'path' column naming each file relative to the manifest",
        )
    rows: dict[Path, tuple[int, dict]] = {}
    for line, cells in records:
        row = {k: v.strip() for k, v in zip(fields, cells) if k}
        if not row.get("path"):
            raise IngestError("row has no path", path, line)
        named = row.pop("path")
        try:
            file = (path.parent / named).resolve()
            found = file.is_file()
        except (OSError, ValueError):  # a name too long for the file system, say
            found = False
        if not found:
            raise IngestError(
                f"no such file '{named[:80]}'", path, line, hint="fix the path (it is relative to the manifest's folder)"
            )
        attrs = {k: v for k, v in row.items() if k and v}
        check_attributes(attrs, f"{path}", line)
        rows[file] = (line, attrs)
    return Manifest(path, rows)


def normalise_kind(kind: str) -> str:
    return re.sub(r"[\s-]+", "_", kind.strip().lower())


def check_attributes(attrs: dict, where: str, line: int | dict[str, int] | None = None) -> dict:
    """Normalise kind and date in place, refusing values a researcher would regret.

    ``line`` is the line of the whole row (a manifest) or of each key (front matter).
    """
    def at(key: str) -> int | None:
        return line.get(key) if isinstance(line, dict) else line

    if attrs.get("kind"):
        attrs["kind"] = normalise_kind(str(attrs["kind"]))
        if attrs["kind"] not in KINDS:
            raise IngestError(
                f"unknown kind '{attrs['kind'][:60]}'", where, at("kind"), hint=f"use one of: {', '.join(KINDS)}"
            )
    if attrs.get("date"):
        attrs["date"] = str(attrs["date"]).strip()
        if not _DATE.fullmatch(attrs["date"]):
            raise IngestError(
                f"date '{attrs['date'][:40]}' is not YYYY-MM-DD", where, at("date"), hint="write dates as 2024-10-15"
            )
        if not _real_date(attrs["date"]):
            raise IngestError(f"date '{attrs['date']}' is not a real date", where, at("date"),
                              hint="check the month (01-12) and day; write dates as 2024-10-15")
    if "published" in attrs:  # `published: false` keeps a document out of `qualcode publish`
        value = attrs["published"]
        flag = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(str(value).strip().lower())
        if flag is None:
            raise IngestError(f"published '{value}' is not true or false", where, at("published"), hint="write published: false")
        attrs["published"] = flag
    return attrs


def _real_date(value: str) -> bool:
    """Whether YYYY, YYYY-MM or YYYY-MM-DD names a day, month or year that exists."""
    year, month, day = (value.split("-") + ["01", "01"])[:3]
    try:
        datetime.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def merge(*layers: dict) -> tuple[dict, dict]:
    """Merge attribute layers (later wins) into (columns, extra attributes)."""
    merged: dict = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v not in (None, "")})
    columns = {k: str(merged.pop(k)) for k in COLUMNS if k in merged}
    return columns, merged
