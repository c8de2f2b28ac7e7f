"""Turning a file's bytes into text, or saying clearly why we cannot."""

from __future__ import annotations

from ..errors import IngestError

#: Bytes that never occur in text; one of them in the first block means binary.
_BINARY_SAMPLE = 8192


def decode_text(data: bytes, path: str) -> tuple[str, list[str]]:
    """Decode UTF-8 (with or without a BOM), falling back to cp1252 with a warning.

    Returns the text, with Windows and old-Mac line ends made ``\\n`` so that
    offsets mean the same on every platform, and any warnings.
    """
    if not data.strip():
        raise IngestError("the file is empty", path, hint="remove it or add its text")
    if b"\x00" in data[:_BINARY_SAMPLE]:
        raise IngestError(
            "this is a binary file, not text",
            path,
            hint="export it as .txt, .docx or .vtt, or leave it out of the ingest",
        )
    nul = data.find(b"\x00")
    if nul >= 0:  # text with a NUL further in is damaged, and the NUL would be stored as text
        raise IngestError(
            "the file holds a NUL byte (damaged or partly binary)",
            path,
            data.count(b"\n", 0, nul) + 1,
            hint="remove the NUL bytes, or export the file again",
        )
    warnings: list[str] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            line = data[: e.start].count(b"\n") + 1
            raise IngestError(
                f"text is in no known encoding (not UTF-8, not cp1252; byte 0x{data[e.start]:02x})",
                path,
                line,
                hint="save the file as UTF-8",
            ) from None
        warnings.append(f"{path}: not UTF-8; read as Windows-1252 (cp1252) — check accented letters")
    return text.replace("\r\n", "\n").replace("\r", "\n"), warnings
