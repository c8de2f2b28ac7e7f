"""Sane sizes for what a reader will take on, checked before the work starts.

A .docx or .xlsx is a zip of XML: 470 KB can unpack to 120 MB of XML and keep
a parser busy for minutes. The zip's own directory says how large each member
unpacks, and Python's zipfile stops reading a member at that size, so checking
it up front bounds the work by the size of the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import IngestError

#: Any one source file. Larger is an archive or a database, not a transcript.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: All members of a .docx/.xlsx unpacked together.
MAX_UNZIPPED_BYTES = {"docx": 64 * 1024 * 1024, "xlsx": 512 * 1024 * 1024, "qdpx": 1024 * 1024 * 1024}
#: Unpacked / packed, for members large enough to matter. Office XML packs
#: 5-20x; zip bombs pack hundreds to millions of times.
MAX_RATIO = 100
_RATIO_FROM = 1024 * 1024
#: Columns of a segment spreadsheet (Excel allows 16,384).
MAX_COLUMNS = 1024


def check_file_size(path: Path, size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise IngestError(
            f"the file is {size / 2**20:,.0f} MB, more than qualcode reads ({MAX_FILE_BYTES // 2**20} MB)",
            path,
            hint="split it into smaller files",
        )


def check_zip(path: Path, kind: str) -> None:
    """Refuse a .docx/.xlsx/.qdpx that is not a zip or would unpack past the limits."""
    word = {"docx": "Word .docx file", "xlsx": ".xlsx workbook", "qdpx": "REFI-QDA project (.qdpx)"}[kind]
    fix = {"docx": "open and re-save it in Word or LibreOffice as .docx", "xlsx": "re-save it from Excel as .xlsx",
           "qdpx": "export the project again from the tool it came from"}[kind]
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise IngestError(f"not a valid {word} (damaged zip: {e})", path, hint=fix) from None
    total = 0
    for info in members:
        total += info.file_size
        if info.file_size > _RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise IngestError(
                f"not a valid {word}: '{info.filename[:80]}' unpacks {info.file_size / max(info.compress_size, 1):,.0f} times "
                f"its size ({info.file_size / 2**20:,.0f} MB), a zip bomb",
                path,
                hint=fix,
            )
    if total > MAX_UNZIPPED_BYTES[kind]:
        raise IngestError(
            f"the {word} unpacks to {total / 2**20:,.0f} MB, more than qualcode reads "
            f"({MAX_UNZIPPED_BYTES[kind] // 2**20} MB)",
            path,
            hint="split it into smaller files",
        )
