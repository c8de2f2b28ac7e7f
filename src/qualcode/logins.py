"""Coders' logins for the browser workspace: one password each, kept beside the project, never in it.

The hashes live in ``PROJECT.db.logins`` (readable by its owner only), so a project file that is
published, cloned or mailed carries none of them. A login is a coder of the project: whoever signs
in writes codings as that coder and nobody else.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from datasette_auth_passwords.utils import hash_password, verify_password

from .errors import QualcodeError

MIN_PASSWORD = 8


def logins_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.logins")


def read_logins(db_path: str | Path) -> dict[str, str]:
    """Coder name → password hash; an empty mapping when nobody has a login yet."""
    path = logins_path(db_path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise QualcodeError(f"the logins file cannot be read ({e.__class__.__name__})", path,
                            hint="remove it and add the logins again with `qualcode login add`") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise QualcodeError("the logins file is not a mapping of coder names to hashes", path,
                            hint="remove it and add the logins again with `qualcode login add`")
    return data


def _write(db_path: str | Path, logins: dict[str, str]) -> None:
    path = logins_path(db_path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(logins, f, indent=1, sort_keys=True, ensure_ascii=False)
    os.replace(tmp, path)


def set_login(db_path: str | Path, coder: str, password: str) -> bool:
    """Give a coder a password (or a new one); True when the login is new. The coder must exist."""
    from .coding import find_coder
    from .db import open_project

    if len(password) < MIN_PASSWORD:
        raise QualcodeError(f"a password needs at least {MIN_PASSWORD} characters")
    db = open_project(db_path, create=False)
    try:
        name = db.execute("SELECT name FROM coders WHERE id = ?", [find_coder(db, coder)]).fetchone()[0]
    finally:
        db.close()
    logins = read_logins(db_path)
    new = name not in logins
    logins[name] = hash_password(password)
    _write(db_path, logins)
    return new


def remove_login(db_path: str | Path, coder: str) -> None:
    logins = read_logins(db_path)
    if coder not in logins:
        raise QualcodeError(f"'{coder}' has no login", logins_path(db_path),
                            hint=f"logins: {', '.join(sorted(logins)) or 'none yet'}")
    del logins[coder]
    _write(db_path, logins)


def check_login(db_path: str | Path, coder: str, password: str) -> str | None:
    """The coder's name when the password is theirs; None otherwise (also for unknown coders)."""
    logins = read_logins(db_path)
    match = next((name for name in logins if name.casefold() == coder.strip().casefold()), None)
    if match is None:
        verify_password(password, hash_password("timing", "x" * 32))  # same work either way
        return None
    return match if verify_password(password, logins[match]) else None
