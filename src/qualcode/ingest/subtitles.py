"""WebVTT and SRT transcripts, merged from cues into timed speaker turns.

We parse these ourselves: webvtt-py, the best-known parser, silently drops a
cue whose timing line is malformed and rounds times to whole seconds, and a
research tool must neither lose talk nor hide a broken file.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from ..errors import IngestError
from .segment import Segment, join_turns, label_at

_TIME = r"(?:(\d+):)?([0-5]\d):([0-5]\d)[.,](\d{3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")
# Tag bodies stop at the next '<' as well as '>': with "[^>]*" a cue of many
# unclosed '<' was rescanned from each one to the end, in quadratic time.
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^<>]+)>")
_TAG = re.compile(r"</?[^<>]*>")
# A line that starts like a cue timing, even if its arrow or numbers are wrong.
_LOOKS_TIMED = re.compile(r"^\s*(?:\d+:)?\d{1,2}:\d{2}[.,]\d")


@dataclass
class Cue:
    line: int
    start: float
    end: float
    speaker: str | None
    text: str


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks, each with the 1-based line it starts on."""
    blocks, current, start = [], [], 0
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            if not current:
                start = number
            current.append(line)
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def _cue(path: str, line: int, timing: str, payload: list[str], fmt: str) -> Cue | None:
    m = _TIMING.match(timing)
    example = "00:00:01.000 --> 00:00:04.000" if fmt == "vtt" else "00:00:01,000 --> 00:00:04,000"
    if not m:
        raise IngestError(
            f"malformed cue timing '{timing.strip()[:60]}'",
            path,
            line,
            hint=f"write it as {example}",
        )
    start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
    if end < start:
        raise IngestError("cue ends before it starts", path, line, hint="swap or correct its times")
    raw = " ".join(p.strip() for p in payload)
    speaker = None
    voice = _VOICE.search(raw)
    if voice:
        speaker = voice.group(1).strip()
    body = html.unescape(_TAG.sub("", raw)).strip()
    if speaker is None:
        label = label_at(body)
        if label:
            speaker = label.speaker
            body = body[label.end:].strip()
    if not body:
        return None
    return Cue(line, start, end, speaker, re.sub(r"\s+", " ", body))


def parse_cues(text: str, path: str, fmt: str) -> list[Cue]:
    """All cues of a .vtt (``fmt='vtt'``) or .srt (``fmt='srt'``) file, in order."""
    blocks = _blocks(text)
    if fmt == "vtt":
        if not blocks or not blocks[0][1][0].startswith("WEBVTT"):
            raise IngestError("a WebVTT file must start with 'WEBVTT'", path, 1, hint="add the header line")
        blocks = blocks[1:]
    cues = []
    for line, lines in blocks:
        head = lines[0].strip()
        if fmt == "vtt" and head.split(" ")[0] in ("NOTE", "STYLE", "REGION"):
            continue
        timing_at = next((i for i, text in enumerate(lines[:2]) if "-->" in text or _LOOKS_TIMED.match(text)), None)
        if timing_at is None:
            raise IngestError(
                f"malformed cue: '{head[:60]}' has no timing line",
                path,
                line,
                hint="each cue needs a line like 00:00:01.000 --> 00:00:04.000",
            )
        cue = _cue(path, line + timing_at, lines[timing_at], lines[timing_at + 1 :], fmt)
        if cue is not None:
            cues.append(cue)
    if not cues:
        raise IngestError("the transcript has no cues", path, hint="check that it is a WebVTT or SRT file")
    return cues


def cues_to_turns(cues: list[Cue]) -> tuple[str, list[Segment]]:
    """Merge consecutive cues of one speaker into a turn and build the document text.

    A cue without a speaker continues the previous speaker's turn, as in
    transcripts that name the speaker only when it changes.
    """
    turns: list[tuple[str | None, list[Cue]]] = []
    for cue in cues:
        speaker = cue.speaker if cue.speaker is not None else (turns[-1][0] if turns else None)
        if turns and turns[-1][0] == speaker:
            turns[-1][1].append(cue)
        else:
            turns.append((speaker, [cue]))
    return join_turns(
        [(speaker, " ".join(c.text for c in group), group[0].start, group[-1].end) for speaker, group in turns]
    )
