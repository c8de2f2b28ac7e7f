"""The one family of errors qualcode raises for user mistakes.

The CLI turns any :class:`QualcodeError` into a single line; anything else
escaping the library is a bug in qualcode.
"""

from __future__ import annotations

from pathlib import Path


class QualcodeError(Exception):
    """A user-facing problem, located in a file (and line) where we know one."""

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
        or_option: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.hint = hint
        #: A way out that only some commands offer, as (option, how to say it): the CLI adds it to
        #: the hint only when the command that failed has that option.
        self.or_option = or_option

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line else "") + ": "
        text = where + self.message
        if self.hint:
            text += " — " + self.hint
        # One line, always: messages quote values from users' files, which may hold line breaks.
        return " ".join(text.splitlines())


class NotAProject(QualcodeError):
    """The file exists but is not a qualcode project database."""


class CodebookError(QualcodeError):
    """A codebook file is invalid, or syncing it would lose coders' work."""


class IngestError(QualcodeError):
    """A source file cannot be read, parsed or segmented."""
