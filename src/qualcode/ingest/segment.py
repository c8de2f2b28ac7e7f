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
# A name: capitalised words; after the first, a number ("Speaker 2", as Otter and Zoom write
# speakers they could not name) or a particle ("Ana de la Cruz").
_NAME = rf"{_WORD}(?:[ \t]+(?:{_WORD}|[0-9]{{1,3}}|(?:de|da|del|der|di|du|la|le|van|von|bin|al)(?=[ \t]))){{0,3}}"
# A time as transcripts print it: m:ss, h:mm:ss (Otter, Teams, Zoom), a fraction, or a clock
# time with AM/PM (Teams). Every part has a bounded length, so no line is rescanned.
CLOCK = r"(?:[0-9]{1,2}:)?[0-9]{1,2}:[0-5][0-9](?:[.,][0-9]{1,3})?(?:[ \t]?[AaPp]\.?[Mm]\.?(?![\w]))?"
# A speaker label at the start of a line: "[Name]", "Name:", "NAME:", "Dr. Ana Ruiz:",
# "I:", "P1:", optionally with a parenthesis ("Amy (3rd grade):", Rev's "Ana Ruiz (00:05):"),
# after a time ("00:00:05 Ana Ruiz:", as Zoom writes one-line turns) and, for "[Name]", before
# one ("[Ana Ruiz] 10:04:12", Zoom's transcript files). A bracket holding only a time is a time.
LABEL = re.compile(
    rf"""^[ \t]*(?:[\[(]?(?P<lead>{CLOCK})[\])]?[ \t]+)?(?:
        \[(?!{CLOCK}\])(?P<bracket>[^\]\n]{{1,60}})\][ \t]*:?(?:[ \t]*(?P<after>{CLOCK}))?
      | (?P<name>{_NAME})(?:[ \t]*\((?P<paren>[^)\n]{{1,40}})\))?[ \t]*:
    )(?=[ \t]|\n|$)[ \t]*""",
    re.M | re.X,
)
# A speaker and a time alone on a line, the turn's text on the lines below: Otter's
# "Ana Ruiz  0:05", Teams' "Ana Ruiz   0:00:05", "Ana Ruiz 4:05 PM" and "0:00:05 Ana Ruiz".
TIMED_LABEL = re.compile(
    rf"""^[ \t]*(?:
        (?P<name>{_NAME})(?:[ \t]*\([^)\n]{{1,40}}\))?[ \t]+\(?(?P<after>{CLOCK})\)?
      | \(?(?P<lead>{CLOCK})\)?[ \t]+(?P<first>{_NAME})
    )[ \t]*$""",
    re.M | re.X,
)
_CLOCK_PARTS = re.compile(r"([0-9:]+)(?:[.,]([0-9]+))?(?:\s?([AaPp]))?")


def clock_seconds(value: str) -> float:
    """Seconds from a transcript time: ``0:05`` is 5, ``1:02:03`` is 3723, and a clock time
    (``4:05 PM``) is the time of day it shows (57,900), since no recording start is known."""
    digits, fraction, half = _CLOCK_PARTS.match(value.strip()).groups()
    parts = [int(p) for p in digits.split(":")]
    if half:  # h:mm[:ss] on a 12-hour clock
        hours, minutes, seconds = (parts + [0])[:3]
        hours = hours % 12 + (12 if half in "Pp" else 0)
    else:
        hours, minutes, seconds = ([0] + parts)[-3:]
    return float(hours * 3600 + minutes * 60 + seconds) + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


@dataclass
class Label:
    start: int
    end: int
    speaker: str
    start_time: float | None


def _label(m: re.Match) -> Label:
    groups = m.groupdict()
    speaker = next(groups[k] for k in ("bracket", "name", "first") if groups.get(k))
    paren = groups.get("paren")
    when = groups.get("lead") or groups.get("after") or (paren if paren and re.fullmatch(CLOCK, paren.strip()) else None)
    return Label(m.start(), m.end(), speaker.strip(), clock_seconds(when) if when else None)


def label_at(text: str) -> Label | None:
    """The speaker label that starts ``text``, if any (subtitle cues name speakers this way)."""
    m = LABEL.match(text)
    return _label(m) if m else None


def find_labels(text: str) -> list[Label]:
    """Every speaker label, inline ("Name: text") or timed on its own line ("Name  0:05"), in order."""
    found = sorted((_label(m) for pattern in (LABEL, TIMED_LABEL) for m in pattern.finditer(text)),
                   key=lambda label: (label.start, -label.end))
    out: list[Label] = []
    for label in found:
        if not out or label.start >= out[-1].end:
            out.append(label)
    return out


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
    role: str | None = None  # a speaker role given row by row (a spreadsheet's speaker_role column)


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


def speaker_turns(text: str, markdown: bool = False) -> list[Segment]:
    """One segment per speaker turn, with the label's time if it has one; unlabelled paragraphs
    continue the turn.

    Text before the first label (a header, a note) is split into paragraphs
    with no speaker; a text whose labels have nothing after them is paragraphs.
    """
    labels = find_labels(text)
    if not labels:
        return paragraphs(text, markdown=markdown)
    out = paragraphs(text, 0, labels[0].start, markdown)
    turns = 0
    for i, label in enumerate(labels):
        stop = labels[i + 1].start if i + 1 < len(labels) else len(text)
        s, e = _trimmed(text, label.end, stop)
        if s == e:
            continue  # a label with nothing said
        out.append(Segment(s, e, label.speaker, label.start_time))
        turns += 1
    return out if turns else paragraphs(text, markdown=markdown)


def looks_like_transcript(text: str) -> bool:
    """Whether a document of unknown kind reads as speaker turns.

    Someone must speak twice: a schedule in field notes ("9:00 Arrival", "9:30 Walkthrough")
    has labels too, each a different one.
    """
    labels = find_labels(text)
    return (len(labels) >= 3 and len(labels) * 2 >= len(paragraphs(text))
            and len({label.speaker for label in labels}) < len(labels))


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
                out.append(Segment(s, e, seg.speaker, seg.start_time, seg.end_time, seg.role))
    return out
