"""A turn's text cut into pieces at every coded-span and evidence boundary.

Each piece knows its offset into the document (in code points, as everything in qualcode is), the
codings that cover it and the suggestions whose evidence it is. The page marks pieces up as they
are, and the browser turns a selection back into document offsets from the pieces' offsets alone,
so what a coder selects is exactly what gets stored, whatever the text holds (accents, emoji).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field


_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}")
DEFAULT_COLOUR = "#7a7a7a"


def colour(value: str | None) -> str:
    """A code's colour fit for a style attribute: a hex colour, or our grey."""
    return value if value and _COLOUR.fullmatch(value) else DEFAULT_COLOUR


@dataclass
class Piece:
    start: int  # document offset of the first character
    text: str
    codings: list[int] = field(default_factory=list)
    evidence: list[int] = field(default_factory=list)
    color: str | None = None  # of the first coding that covers it


def evidence_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where the evidence words occur in a turn: whole words starting with each term, any case."""
    spans = []
    for term in terms:
        term = term.strip()
        if not term or len(term) > 200:
            continue
        pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in term.split()) + r"\w*"
        spans += [(m.start(), m.end()) for m in re.finditer(pattern, text, re.IGNORECASE)]
    return spans


def pieces(turn_start: int, text: str, codings: list[dict], suggestions: list[dict]) -> list[Piece]:
    """Cut ``text`` (which starts at ``turn_start`` in the document) at every span edge."""
    end = turn_start + len(text)
    spans: list[tuple[int, int, str, int]] = []
    colours = {c["id"]: colour(c.get("color")) for c in codings}
    for c in codings:
        if c["start_char"] is not None:
            spans.append((max(c["start_char"], turn_start), min(c["end_char"], end), "c", c["id"]))
    for s in suggestions:
        for a, b in evidence_spans(text, s.get("terms") or []):
            spans.append((turn_start + a, turn_start + b, "e", s["id"]))
    cuts = sorted({turn_start, end, *(p for a, b, _, _ in spans for p in (a, b) if turn_start <= p <= end)})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        if a == b:
            continue
        piece = Piece(a, text[a - turn_start:b - turn_start])
        for s, e, kind, ident in spans:
            if s <= a and b <= e:
                (piece.codings if kind == "c" else piece.evidence).append(ident)
        piece.color = colours[piece.codings[0]] if piece.codings else None
        out.append(piece)
    return out or [Piece(turn_start, text)]


def crlf_positions(text: str, turn_start: int) -> str:
    """Offsets of carriage returns that a browser drops from ``\\r\\n`` (so the page can count them back)."""
    return ",".join(str(turn_start + m.start()) for m in re.finditer("\r\n", text))


def suggestion_view(row: dict) -> dict:
    """A suggestion as the page shows it: score, method, the words and reasons that drove it."""
    evidence = json.loads(row.get("evidence") or "{}")
    if not isinstance(evidence, dict):
        evidence = {}
    features = [f for f in evidence.get("features", []) if isinstance(f, str) and "…" not in f]
    return {**row, "terms": [t for t in evidence.get("terms", []) if isinstance(t, str)], "reasons": features}
