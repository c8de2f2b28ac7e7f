"""Splitting a document's text into segments: speaker turns, paragraphs or sentences.

Plain regular expressions do the turn and paragraph work: they are exact about
offsets and an order of magnitude faster than running a tokenizer over every
word. spaCy's sentencizer is used only when sentences are asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Kinds of document whose natural unit is the speaker turn.
TURN_KINDS = {"interview", "focus_group"}

_WORD = r"[A-Z][\w'’.\-]*"
# A speaker label at the start of a line: "[Name]", "Name:", "NAME:", "Dr. Ana Ruiz:",
# "I:", "P1:", optionally with a parenthesis ("Amy (3rd grade):").
LABEL = re.compile(
    rf"""^[ \t]*(?:
        \[(?P<bracket>[^\]\n]{{1,60}})\][ \t]*:?
      | (?P<name>{_WORD}(?:[ \t]+{_WORD}){{0,3}})(?:[ \t]*\([^)\n]{{1,40}}\))?[ \t]*:
    )(?=[ \t]|\n|$)[ \t]*""",
    re.M | re.X,
)
# Paragraphs are found by jumping to the next non-space and then to the next
# blank line: each character is looked at a bounded number of times. (A single
# regex for "lines with a non-space" retried from every space of a long blank
# line: 40,000 spaces took 6.5 s, growing with the square of the length.)
_NON_SPACE = re.compile(r"\S")
_BLANK_LINE = re.compile(r"\n[^\S\n]*+(?=\n|\Z)")
_MD_SKIP = re.compile(r"^(?:#{1,6}\s.*|[-*_]{3,}\s*)$")


@dataclass
class Segment:
    start: int
    end: int
    speaker: str | None = None
    start_time: float | None = None
    end_time: float | None = None


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def paragraphs(text: str, start: int = 0, end: int | None = None, markdown: bool = False) -> list[Segment]:
    """Blocks of non-blank lines; Markdown headings and rules are not segments."""
    end = len(text) if end is None else end
    out = []
    pos = start
    while (first := _NON_SPACE.search(text, pos, end)) is not None:
        blank = _BLANK_LINE.search(text, first.start(), end)
        stop = blank.start() if blank else end
        s, e = _trimmed(text, first.start(), stop)
        if not (markdown and _MD_SKIP.match(text[s:e])):
            out.append(Segment(s, e))
        pos = blank.end() if blank else end
    return out


def count_labels(text: str) -> int:
    return sum(1 for _ in LABEL.finditer(text))


def speaker_turns(text: str, markdown: bool = False) -> list[Segment]:
    """One segment per speaker turn; unlabelled paragraphs continue the turn.

    Text before the first label (a header, a note) is split into paragraphs
    with no speaker.
    """
    labels = list(LABEL.finditer(text))
    if not labels:
        return paragraphs(text, markdown=markdown)
    out = paragraphs(text, 0, labels[0].start(), markdown)
    for i, m in enumerate(labels):
        stop = labels[i + 1].start() if i + 1 < len(labels) else len(text)
        s, e = _trimmed(text, m.end(), stop)
        if s == e:
            continue  # a label with nothing said
        speaker = (m.group("bracket") or m.group("name")).strip()
        out.append(Segment(s, e, speaker))
    return out


def looks_like_transcript(text: str) -> bool:
    """Whether a document of unknown kind reads as speaker turns."""
    labels = count_labels(text)
    return labels >= 3 and labels * 2 >= len(paragraphs(text))


def join_turns(turns: list[tuple[str | None, str, float | None, float | None]]) -> tuple[str, list[Segment]]:
    """Build a readable transcript from (speaker, text, start, end) turns.

    Each turn is written as ``Speaker: text`` with a blank line between turns;
    the segment points at the text after the label, so the invariant
    ``text[start:end] == segment text`` holds by construction.
    """
    parts, segments, offset = [], [], 0
    for speaker, body, start_time, end_time in turns:
        label = f"{speaker}: " if speaker else ""
        start = offset + len(label)
        segments.append(Segment(start, start + len(body), speaker, start_time, end_time))
        parts.append(label + body)
        offset += len(label) + len(body) + 2
    return "\n\n".join(parts), segments


def sentences(text: str, segments: list[Segment]) -> list[Segment]:
    """Split each segment into sentences with spaCy's sentencizer, keeping speakers and times."""
    from ..nlp import get_nlp

    nlp = get_nlp()
    longest = max((s.end - s.start for s in segments), default=0)
    if longest > nlp.max_length:
        from ..errors import IngestError

        raise IngestError(
            f"a passage of {longest:,} characters is too long to split into sentences (at most {nlp.max_length:,})",
            hint="break it into paragraphs with blank lines, or use --segment paragraph",
        )
    out = []
    docs = nlp.pipe((text[s.start : s.end] for s in segments), batch_size=256)
    for seg, doc in zip(segments, docs):
        for sent in doc.sents:
            s, e = _trimmed(text, seg.start + sent.start_char, seg.start + sent.end_char)
            if s < e:
                out.append(Segment(s, e, seg.speaker, seg.start_time, seg.end_time))
    return out
