"""What is in a project: the figures `qualcode status` shows."""

from __future__ import annotations

import sqlite_utils

from .db import schema_version


def project_status(db: sqlite_utils.Database) -> dict:
    """Counts a team lead checks before a coding meeting: documents, coverage, coders."""

    def one(sql: str) -> int:
        return db.execute(sql).fetchone()[0] or 0

    def by(column: str) -> list[tuple[str, int, int]]:
        return [
            (r[0] or "(none)", r[1], r[2])
            for r in db.execute(
                f"""SELECT {column}, count(*), sum(word_count) FROM documents
                    GROUP BY {column} ORDER BY count(*) DESC, {column}"""
            ).fetchall()
        ]

    segments = one("SELECT count(*) FROM segments")
    coded = one("SELECT count(DISTINCT segment_id) FROM codings")
    return {
        "schema": schema_version(db),
        "codebooks": [dict(r) for r in db.query(
            """SELECT b.id, b.name, b.version,
                      (SELECT count(*) FROM codes c WHERE c.codebook_id = b.id AND c.archived = 0) AS codes,
                      (SELECT count(*) FROM codes c WHERE c.codebook_id = b.id AND c.archived = 0 AND c.depth = 0) AS top_level
               FROM codebooks b ORDER BY b.id""")],
        "documents": one("SELECT count(*) FROM documents"),
        "words": one("SELECT sum(word_count) FROM documents"),
        "segments": segments,
        "by_kind": by("kind"),
        "by_district": by("district"),
        "by_site": by("site"),
        "coders": one("SELECT count(*) FROM coders"),
        "codings": one("SELECT count(*) FROM codings"),
        "coded_segments": coded,
        "share_coded": coded / segments if segments else 0.0,
        "pending_suggestions": one("SELECT count(*) FROM suggestions WHERE status = 'pending'"),
        "team": [dict(r) for r in db.query(
            """SELECT c.name, c.consensus,
                      (SELECT count(*) FROM codings g WHERE g.coder_id = c.id) AS codings,
                      (SELECT count(DISTINCT s.document_id) FROM codings g JOIN segments s ON s.id = g.segment_id
                       WHERE g.coder_id = c.id) AS documents,
                      (SELECT count(*) FROM assignments a WHERE a.coder_id = c.id) AS assigned,
                      (SELECT count(*) FROM assignments a WHERE a.coder_id = c.id AND EXISTS (
                          SELECT 1 FROM codings g JOIN segments s ON s.id = g.segment_id
                          WHERE g.coder_id = c.id AND s.document_id = a.document_id)) AS assigned_started
               FROM coders c ORDER BY c.consensus, c.name""")],
        "consensus_decisions": one("SELECT count(*) FROM consensus_decisions"),
    }
