"""Who may do what in the served project: anonymous readers, signed-in coders, blind coders.

The rules live here, in one place, and every page, JSON answer and write asks them:
- writing needs a signed-in coder, who writes as themselves and changes only their own work;
- a blind coder sees no other coder's codings, anywhere: not in the workspace, not in Datasette's
  tables, views, canned queries or arbitrary SQL;
- while anyone codes blind, nobody who is not signed in sees codings either (else a blind coder
  could sign out and look); and ``--read coders`` closes the project to anonymous visitors.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ..logins import read_logins

#: Tables, views and queries from which one could read who coded what.
REVEALING = {
    "codings", "excerpts", "excerpt_source", "coded_segments", "code_by_site", "code_by_role", "cooccurrence",
    "agreement", "consensus_decisions", "memos", "suggestions", "suggestions_to_review", "model_runs",
    "codebook_tree", "coding_removals", "code_by_site_matrix", "excerpts_for_code_at_site",
    "cooccurrence_for_code", "search_lesson_excerpts", "transcript",
}


class Access:
    """The served project's rules, read from its file and its logins (cached for a moment)."""

    def __init__(self, db_path: str, read: str = "anyone") -> None:
        self.db_path = db_path
        self.read = read
        self._lock = threading.Lock()
        self._cached_at = 0.0
        self._blind: set[str] = set()
        self._logins: set[str] = set()

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._cached_at < 1.0:
                return
            conn = sqlite3.connect(f"file:{Path(self.db_path).resolve()}?mode=ro", uri=True)
            try:
                self._blind = {r[0] for r in conn.execute(
                    "SELECT DISTINCT c.name FROM assignments a JOIN coders c ON c.id = a.coder_id WHERE a.blind")}
            except sqlite3.DatabaseError:
                self._blind = set()
            finally:
                conn.close()
            self._logins = set(read_logins(self.db_path))
            self._cached_at = time.monotonic()

    def coder(self, actor: dict | None) -> str | None:
        """The coder signed in as ``actor``, if their login still exists."""
        name = (actor or {}).get("qualcode_coder")
        if not name:
            return None
        self._refresh()
        return name if name in self._logins else None

    def is_blind(self, coder: str | None) -> bool:
        self._refresh()
        return coder in self._blind

    def anyone_blind(self) -> bool:
        self._refresh()
        return bool(self._blind)

    def may_read(self, actor: dict | None) -> bool:
        return self.read == "anyone" or self.coder(actor) is not None

    def sees_others(self, actor: dict | None) -> bool:
        """Whether this visitor may see codings of coders other than themselves."""
        coder = self.coder(actor)
        if coder is not None:
            return not self.is_blind(coder)
        return self.may_read(actor) and not self.anyone_blind()

    def visible_coders(self, actor: dict | None) -> list[str] | None:
        """None for every coder, else the only coders whose codings this visitor may see."""
        if self.sees_others(actor):
            return None
        coder = self.coder(actor)
        return [coder] if coder else []
