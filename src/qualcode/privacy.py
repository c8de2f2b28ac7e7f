"""Keeping participants' names out of every file we hand out.

`publish`, `export --pseudonymise` and `clone` share three things, so that a
leak cannot come from one of them forgetting something the others do:

* :data:`FIELDS`, the one list of every text-bearing column of the schema and
  how publishing makes it safe. A test enumerates the TEXT columns of a freshly
  migrated project and fails when a migration adds one this list does not cover.
* :class:`Pseudonymiser`, one pseudonym per person (speakers, coders, listed
  names), matched as whole names and as their parts, case- and accent-insensitively.
* :func:`verify_database` / :func:`verify_file`, a final scan of the finished
  file (every table and column, the full-text index, the raw bytes) that refuses
  to hand it out while any listed name or name part survives; and
  :func:`staged_output`, which builds the file next to its destination and moves
  it there only once it is complete and verified.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import unicodedata
import zipfile
from collections import defaultdict
from dataclasses import dataclass, fields as dataclass_fields, is_dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from .errors import QualcodeError


class LeakError(QualcodeError):
    """A listed name survives in a file that was about to be handed out."""


# --- the schema's text-bearing columns ----------------------------------------------------------

TEXT = "text"          # free text: every listed name and name part replaced
IDENTIFIER = "identifier"  # an id or a path: as text, and bare name parts in any case ('interview-ruiz')
JSON = "json"          # JSON: every string in it, keys and values at any depth, replaced
DOCUMENT = "document"  # documents.text: replaced, with segment and span offsets re-derived
SEGMENT = "segment"    # segments.text: re-cut from the pseudonymised document text
REBUILT = "rebuilt"    # recomputed from walked columns once the walk is done
SAFE = "safe"          # not rewritten, for the reason given (the final scan still reads it)


@dataclass(frozen=True)
class Field:
    kind: str
    reason: str = ""


_TIME = Field(SAFE, "a timestamp written by qualcode")
_CHECKED = Field(SAFE, "one of a fixed set of values enforced by a CHECK constraint")

#: Every TEXT (or untyped) column of every table, and how publish treats it.
#: Identifier columns are walked like text, and so are all the columns that refer
#: to them, so a document id made from a file name is replaced consistently
#: everywhere (foreign keys are checked when the transaction commits).
FIELDS: dict[tuple[str, str], Field] = {
    ("documents", "id"): Field(IDENTIFIER), ("documents", "title"): Field(TEXT),
    ("documents", "kind"): Field(SAFE, "one of the document kinds checked at ingest"),
    ("documents", "site"): Field(TEXT), ("documents", "district"): Field(TEXT), ("documents", "role"): Field(TEXT),
    ("documents", "date"): Field(SAFE, "a YYYY-MM-DD date checked at ingest"),
    ("documents", "format"): Field(SAFE, "the name of the reader that parsed the file (txt, md, vtt...)"),
    ("documents", "source_path"): Field(IDENTIFIER),
    ("documents", "sha256"): Field(SAFE, "a hex digest of the file's bytes"),
    ("documents", "text"): Field(DOCUMENT), ("documents", "attributes"): Field(JSON),
    ("documents", "ingested_at"): _TIME,
    ("segments", "document_id"): Field(IDENTIFIER), ("segments", "speaker"): Field(TEXT), ("segments", "text"): Field(SEGMENT),
    ("codebooks", "id"): Field(IDENTIFIER), ("codebooks", "name"): Field(TEXT), ("codebooks", "version"): Field(TEXT),
    ("codebooks", "description"): Field(TEXT), ("codebooks", "source_path"): Field(IDENTIFIER),
    ("codebooks", "loaded_at"): _TIME,
    ("codes", "id"): Field(IDENTIFIER), ("codes", "codebook_id"): Field(IDENTIFIER), ("codes", "parent_id"): Field(IDENTIFIER),
    ("codes", "lesson_id"): Field(IDENTIFIER), ("codes", "name"): Field(TEXT), ("codes", "definition"): Field(TEXT),
    ("codes", "include"): Field(TEXT), ("codes", "exclude"): Field(TEXT), ("codes", "examples"): Field(JSON),
    ("codes", "terms"): Field(JSON), ("codes", "color"): Field(SAFE, "a #rrggbb colour checked by the codebook loader"),
    ("codes", "updated_at"): _TIME,
    ("coders", "name"): Field(TEXT), ("coders", "created_at"): _TIME,
    ("codings", "code_id"): Field(IDENTIFIER), ("codings", "origin"): _CHECKED, ("codings", "memo"): Field(TEXT),
    ("codings", "created_at"): _TIME,
    ("memos", "document_id"): Field(IDENTIFIER), ("memos", "code_id"): Field(IDENTIFIER), ("memos", "text"): Field(TEXT),
    ("memos", "created_at"): _TIME,
    ("model_runs", "created_at"): _TIME, ("model_runs", "method"): Field(TEXT),
    ("model_runs", "parameters"): Field(JSON), ("model_runs", "metrics"): Field(JSON),
    ("suggestions", "code_id"): Field(IDENTIFIER), ("suggestions", "method"): Field(TEXT),
    ("suggestions", "evidence"): Field(JSON), ("suggestions", "status"): _CHECKED,
    ("suggestions", "decided_at"): _TIME, ("suggestions", "created_at"): _TIME,
    ("assignments", "document_id"): Field(IDENTIFIER), ("assignments", "assigned_at"): _TIME,
    ("consensus_decisions", "code_id"): Field(IDENTIFIER), ("consensus_decisions", "decision"): _CHECKED,
    ("consensus_decisions", "between_coders"): Field(TEXT), ("consensus_decisions", "memo"): Field(TEXT),
    ("consensus_decisions", "decided_at"): _TIME,
    ("about", "title"): Field(TEXT), ("about", "description"): Field(TEXT), ("about", "license"): Field(TEXT),
    ("about", "license_url"): Field(TEXT), ("about", "source"): Field(TEXT), ("about", "source_url"): Field(TEXT),
    ("segments", "speaker_role"): Field(SAFE, "a role name (lowercase words) checked by qualcode.roles, not a name"),
    ("segments", "speaker_role_source"): _CHECKED,
    ("codes", "roles"): Field(SAFE, "a JSON list of role names checked by the codebook loader, not names"),
    ("speaker_roles", "document_id"): Field(IDENTIFIER), ("speaker_roles", "speaker"): Field(TEXT),
    ("speaker_roles", "role"): Field(SAFE, "a role name (lowercase words) checked by qualcode.roles, not a name"),
    ("coding_removals", "id"): Field(SAFE, "a random hex id made by SQLite"),
    ("coding_removals", "code_id"): Field(IDENTIFIER), ("coding_removals", "removed_at"): _TIME,
    ("documents", "guid"): Field(SAFE, "a random UUID (REFI-QDA exchange), made by SQLite or read from a .qdpx"),
    ("codes", "guid"): Field(SAFE, "a random UUID (REFI-QDA exchange), made by SQLite or read from a .qdpx"),
    ("coders", "guid"): Field(SAFE, "a random UUID (REFI-QDA exchange), made by SQLite or read from a .qdpx"),
    ("memos", "guid"): Field(SAFE, "a random UUID (REFI-QDA exchange), made by SQLite or read from a .qdpx"),
    ("_sqlite_migrations", "migration_set"): Field(SAFE, "qualcode's own migration names"),
    ("_sqlite_migrations", "name"): Field(SAFE, "qualcode's own migration names"),
    ("_sqlite_migrations", "applied_at"): _TIME,
}

#: Tables recomputed from the walked ones after the walk: every column of them is rebuilt.
REBUILT_TABLES: dict[str, str] = {
    "excerpts": "refilled from the excerpt_source view over the walked tables",
    "segments_fts": "the full-text index, rebuilt from segments",
    "segments_fts_data": "the full-text index, rebuilt from segments",
    "segments_fts_idx": "the full-text index, rebuilt from segments",
    "segments_fts_docsize": "the full-text index, rebuilt from segments",
    "segments_fts_config": "the full-text index's settings",
}

#: Views store nothing: they are computed, when read, from the walked tables.
VIEWS = {name: "a view, computed when read from the walked tables" for name in (
    "excerpt_source", "coded_segments", "code_by_site", "code_by_role", "cooccurrence", "codebook_tree",
    "suggestions_to_review", "agreement")}


def field_for(table: str, column: str) -> Field | None:
    """How publish treats a column, or None when nobody has decided (a test fails on that)."""
    if table in REBUILT_TABLES:
        return Field(REBUILT, REBUILT_TABLES[table])
    if table in VIEWS:
        return Field(REBUILT, VIEWS[table])
    return FIELDS.get((table, column))


def walked_fields() -> list[tuple[str, str, str]]:
    """(table, column, kind) for the plain text and JSON columns publish rewrites row by row."""
    return [(t, c, f.kind) for (t, c), f in FIELDS.items() if f.kind in (TEXT, IDENTIFIER, JSON)]


# --- matching names -----------------------------------------------------------------------------

#: Speaker labels and coder names that name a role, not a person; they are kept as they are.
GENERIC_SPEAKER = re.compile(
    r"^(?:I|R|Q|A|P\d+|Interviewer|Facilitator|Moderator|Respondent|Interviewee|Participant(?: \d+)?"
    r"|(?:Teacher|Student|Parent|Speaker|Voice|Unknown|Audience|Coder)(?: ?[A-Z\d]+)?|Consensus)$", re.I)

#: Words of a listed name that are not a name by themselves: honorifics, particles, and the
#: generic words of place names ("Seacliff Middle School" makes "Seacliff" a name, not "School").
NOT_A_NAME = frozenset("""
    mr mrs ms miss mx dr prof sir madam sr jr ii iii iv de da del della der den di dos das du la le les van von y
    e al el bin ibn st the and of for at on in school schools middle elementary primary secondary high junior
    senior academy district unified county city town village college university centre center institute
    street road avenue lane park north south east west office team group network association k
""".split())

_MARKS = "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]*"
_NOT_DECOMPOSED = {"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H", "ı": "i"}
_SEPARATOR = r"[\s._\-]+"
_BEFORE, _AFTER = r"(?<![^\W_])", r"(?![^\W_])"  # letters and digits join words; spaces, '-', '_', '.' do not


def _base(char: str) -> str:
    """A character without its accents: 'Ñ' -> 'N'."""
    decomposed = unicodedata.normalize("NFKD", _NOT_DECOMPOSED.get(char, char))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_UNDECOMPOSED = str.maketrans(_NOT_DECOMPOSED)
_MARKS_RE = re.compile(_MARKS[:-1] + "+")


def fold(text: str) -> str:
    """Lower case without accents, for comparing names: 'José Núñez' -> 'jose nunez'."""
    return _MARKS_RE.sub("", unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))).casefold()


def _accented() -> dict[str, set[str]]:
    variants: dict[str, set[str]] = defaultdict(set)
    for start, end in ((0x00C0, 0x0250), (0x1E00, 0x1F00)):
        for cp in range(start, end):
            char = chr(cp)
            base = _base(char)
            if len(base) == 1 and base.isalpha() and base != char:
                variants[base.lower()].add(char)
    return variants


_VARIANTS = _accented()


def _char(char: str, any_case: bool) -> str:
    """A regex for one letter of a name that matches its accented and (when asked) other-case forms."""
    if char in "'’":
        return "['’]"
    base = _base(char)
    if len(base) != 1 or not base.isalpha():
        return re.escape(char)
    lower = base.lower()
    chars = {lower, lower.upper(), char, char.lower(), char.upper()} | _VARIANTS.get(lower, set())
    if not any_case:
        chars = {c for c in chars if c.isupper() == char.isupper()}
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]" + _MARKS


def name_words(name: str) -> list[str]:
    return [w for w in re.split(_SEPARATOR, name.strip()) if w]


def _letters(word: str) -> int:
    return sum(c.isalpha() for c in word)


def name_pattern(name: str, any_case: bool = True) -> str:
    """Whole words, any separator between them (so 'ana-ruiz' and 'Ana  Ruiz' match 'Ana Ruiz'), accents
    ignored. With ``any_case`` false, and always for names of three letters or fewer ('Li', 'Amy'),
    only as written, in Title Case or in CAPITALS: so 'li' and 'an' in ordinary text, and the school
    bell when a Ms. Bell is listed, are left alone."""
    words = name_words(name)
    if any_case and sum(_letters(w) for w in words) > 3:
        forms = ["".join(_char(c, True) for c in w) for w in words]
        body = _SEPARATOR.join(forms)
    else:
        variants = dict.fromkeys([" ".join(words), " ".join(w[:1].upper() + w[1:].lower() for w in words),
                                  " ".join(words).upper()])
        body = "|".join(_SEPARATOR.join("".join(_char(c, False) for c in w) for w in v.split(" ")) for v in variants)
    return f"(?:{body}){_AFTER}"  # the word start is tested once for all names, by NameMatcher


@dataclass(frozen=True)
class Entry:
    label: str        # what the error message calls it: the listed name or name part
    pattern: str
    replacement: str


class NameMatcher:
    """All listed names in one regex, longest first, so 'Priya Natarajan' wins over 'Priya'.

    Alternatives are grouped by their first letter behind one word-start test, so
    the regex tries a couple of dozen letters per word rather than every name at
    every character (a profiled pseudonymised publish of the sample corpus: 33 s before, 5 s after).
    """

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        groups: dict[str, list[str]] = {}
        for i, e in enumerate(entries):
            first = fold(e.label)[:1]
            groups.setdefault(first, []).append(f"(?P<n{i}>{e.pattern})")
        alternatives = [f"(?={_char(first, True)})(?:{'|'.join(g)})" if first.isalpha() else "|".join(g)
                        for first, g in groups.items()]
        self.regex = re.compile(f"{_BEFORE}(?:{'|'.join(alternatives)})") if entries else None

    def spans(self, text: str) -> list[tuple[int, int, Entry]]:
        if not self.regex or not text:
            return []
        return [(m.start(), m.end(), self.entries[int(m.lastgroup[1:])]) for m in self.regex.finditer(text)]

    def sub(self, text: str) -> str:
        if not self.regex or not text:
            return text
        return self.regex.sub(lambda m: self.entries[int(m.lastgroup[1:])].replacement, text)


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """English nouns, verbs, adjectives and adverbs (spaCy's lemma index, a dependency already),
    to tell a surname like 'Bell' from the word; empty, so every part matches in any case, without it."""
    try:
        import gzip
        from importlib.resources import files

        with gzip.open(files("spacy_lookups_data") / "data" / "en_lemma_index.json.gz") as f:
            return frozenset(w for words in json.load(f).values() for w in words)
    except (ImportError, OSError, ValueError):
        return frozenset()


def stable_id(sha256: str | None, doc_id: str) -> str:
    """A document id that carries no name and stays the same while the document does: from the hash
    of its content (already published in documents.sha256), not of its old id, which could be guessed."""
    return "doc-" + (sha256 or hashlib.sha256(doc_id.encode()).hexdigest())[:10]


def _is_identifier_key(key) -> bool:
    return isinstance(key, str) and (key == "id" or key.endswith(("_id", "source_path")) or key in ("target", "segment"))


class Pseudonymiser:
    """One pseudonym per person, everywhere in one export or published copy.

    Speakers become ``Participant N`` (in order of first appearance), coders who
    are not speakers ``Coder N``, and ``extra`` names (people, schools) their given
    replacement, which wins over the automatic ones. Every listed name is matched
    whole and by each of its parts ('Ms. Li' -> 'Li', 'Priya Natarajan' ->
    'Natarajan'), whatever the case and accents ('Jose Nunez' for 'José Núñez');
    a part shared by two people becomes '[name]'. Document ids that contain a
    name get a :func:`stable_id`.
    """

    def __init__(self, speakers: list[str | None], extra: dict[str, str] | None = None,
                 coders: list[str] | None = None, documents: list[tuple[str, str | None]] | None = None) -> None:
        self.names: dict[str, str] = {}
        by_key: dict[str, str] = {}

        def add(name: str | None, make: Callable[[], str]) -> None:
            if not name or not name.strip() or GENERIC_SPEAKER.match(name.strip()):
                return
            key = " ".join(name_words(fold(name)))
            if key not in by_key:
                by_key[key] = make()
            self.names.setdefault(name, by_key[key])

        counts = {"Participant": 0, "Coder": 0}

        def numbered(kind: str) -> Callable[[], str]:
            def make() -> str:
                counts[kind] += 1
                return f"{kind} {counts[kind]}"
            return make

        for name, alias in (extra or {}).items():
            add(name, lambda alias=alias: alias)
        for speaker in speakers:
            add(speaker, numbered("Participant"))
        for coder in coders or []:
            add(coder, numbered("Coder"))

        parts: dict[str, set[str]] = defaultdict(set)
        part_form: dict[str, str] = {}
        for name, alias in self.names.items():
            words = name_words(name)
            if len(words) < 2:
                continue
            for word in words:
                key = fold(word)
                if _letters(word) >= 2 and key not in NOT_A_NAME and key not in by_key:
                    parts[key].add(alias)
                    part_form.setdefault(key, word)
        words = english_words()

        def entries(parts_any_case: bool) -> list[Entry]:
            made = [Entry(name, name_pattern(name), alias) for name, alias in self.names.items()]
            made += [Entry(part_form[key], name_pattern(part_form[key], parts_any_case or key not in words),
                           next(iter(aliases)) if len(aliases) == 1 else "[name]") for key, aliases in parts.items()]
            return sorted(made, key=lambda e: -len(e.label))

        # A bare first name or surname that is also an English word ('Bell', 'Rose') counts in running
        # text only when capitalised, so the school bell stays a bell; any other in any case ('nunez'),
        # and in identifiers and paths (slugs such as 'interview-bell') always in any case.
        in_text, in_ids = entries(False), entries(True)
        id_matcher = NameMatcher(in_ids)
        #: Old document id -> the id it is published under, for ids that carry a name.
        self.document_ids = {doc_id: stable_id(sha, doc_id) for doc_id, sha in documents or []
                             if id_matcher.spans(doc_id)}
        ids = [Entry(doc_id, rf"(?<![\w-]){re.escape(doc_id)}(?![\w-])", new)
               for doc_id, new in sorted(self.document_ids.items(), key=lambda i: -len(i[0]))]
        self.matcher = NameMatcher(ids + in_text)
        self.id_matcher = NameMatcher(ids + in_ids)
        #: What the final scan looks for: every name and name part (replacements are not names).
        self.scan, self.id_scan = self.matcher, self.id_matcher

    @classmethod
    def for_project(cls, db, extra: dict[str, str] | None = None) -> "Pseudonymiser":
        """Every speaker and coder of the project, and its document ids.

        Built from the whole project rather than the rows exported, so an
        interviewer named inside a field note is caught even when none of
        their own turns is exported. Consensus coders are a team, not a person.
        """
        speakers = [r[0] for r in db.execute(
            "SELECT speaker, min(id) AS first FROM segments WHERE speaker IS NOT NULL GROUP BY speaker ORDER BY first")]
        # Speakers mapped to a role but in no segment (mapped ahead, or only in unpublished documents)
        # are people too; after those with turns, so the numbering of speakers is unchanged.
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'speaker_roles'").fetchone():
            speakers += [r[0] for r in db.execute("SELECT DISTINCT speaker FROM speaker_roles ORDER BY speaker")]
        coders = [r[0] for r in db.execute("SELECT name FROM coders WHERE NOT consensus ORDER BY id")]
        documents = [(r[0], r[1]) for r in db.execute("SELECT id, sha256 FROM documents ORDER BY id")]
        return cls(speakers, extra, coders, documents)

    @property
    def listed(self) -> list[str]:
        return [e.label for e in self.scan.entries]

    def speaker(self, name: str | None) -> str | None:
        return self.names.get(name) or self.text(name) if name else name

    def text(self, text: str) -> str:
        return self.matcher.sub(text)

    def identifier(self, text: str) -> str:
        """Ids and paths: bare name parts in any case too ('interview-ruiz')."""
        return self.id_matcher.sub(text)

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        return [(s, e, entry.replacement) for s, e, entry in self.matcher.spans(text)]

    def walk(self, value):
        """Every string inside a value (dict keys too, lists, tuples, dataclasses) with names replaced;
        values under keys that name an id or a path are treated as identifiers."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.walk(k): self.identifier(v) if isinstance(v, str) and _is_identifier_key(k) else self.walk(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.walk(v) for v in value)
        if is_dataclass(value) and not isinstance(value, type):
            return replace(value, **{f.name: self.walk(getattr(value, f.name)) for f in dataclass_fields(value)})
        return value

    def json(self, text: str) -> str:
        """A JSON column with every string in it pseudonymised; text that is not JSON is treated as text."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            return self.text(text)
        walked = self.walk(value)
        return text if walked == value else json.dumps(walked, ensure_ascii=False)


# --- re-deriving offsets ------------------------------------------------------------------------


class OffsetMap:
    """Where an offset of the original text lands in the pseudonymised one.

    An offset inside a replaced name moves to the start of its replacement when it
    starts a span and to the end when it ends one, so a coded span that began in
    the middle of a name covers the whole pseudonym instead of pointing at the
    wrong text.
    """

    def __init__(self, text: str, spans: list[tuple[int, int, str]]) -> None:
        pieces, cursor = [], 0
        self.spans = []  # (old start, old end, new start, new end)
        shift = 0
        for start, end, replacement in spans:
            pieces += [text[cursor:start], replacement]
            self.spans.append((start, end, start + shift, start + shift + len(replacement)))
            shift += len(replacement) - (end - start)
            cursor = end
        pieces.append(text[cursor:])
        self.text = "".join(pieces)
        self._starts = [s[0] for s in self.spans]

    def start(self, offset: int) -> int:
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0:
            return offset
        start, end, new_start, new_end = self.spans[i]
        return offset - end + new_end if offset >= end else new_start

    def end(self, offset: int) -> int:
        i = bisect.bisect_left(self._starts, offset) - 1  # an end at a name's start stays before it
        if i < 0:
            return offset
        start, end, new_start, new_end = self.spans[i]
        return offset - end + new_end if offset >= end else new_end


# --- the final scan -----------------------------------------------------------------------------


@dataclass
class Survivor:
    name: str
    where: str

    def __str__(self) -> str:
        return f"'{self.name}' in {self.where}"


def _strings(value) -> Iterator[str]:
    """The text a stored value carries: itself, and the strings inside it when it is JSON
    (json.dumps may have written 'José' as 'Jos\\u00e9', which a byte scan cannot see)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return
    yield value
    if value[:1] in "{[\"" and "\\u" in value:
        with contextlib.suppress(ValueError):
            stack = [json.loads(value)]
            while stack:
                item = stack.pop()
                if isinstance(item, str):
                    yield item
                elif isinstance(item, dict):
                    stack += [*item.keys(), *item.values()]
                elif isinstance(item, list):
                    stack += item


def scan_database(conn: sqlite3.Connection, path: str | Path, matcher: NameMatcher,
                  id_matcher: NameMatcher | None = None) -> list[Survivor]:
    """Every listed name still in the file: each column of each table (full-text shadow tables
    included), the full-text index's vocabulary, and the file's raw bytes read as UTF-8 (so free
    pages and anything no table shows are seen too; vacuum first)."""
    found: dict[tuple[str, str], Survivor] = {}

    def hit(name: str, where: str) -> None:
        found.setdefault((fold(name), where), Survivor(name, where))

    for sql in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"):
        for _, _, entry in matcher.spans(sql[0]):
            hit(entry.label, "the schema")
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'")]
    for table in tables:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info([{table}])")]
        for column in columns:
            for (value,) in conn.execute(f"SELECT [{column}] FROM [{table}] WHERE typeof([{column}]) IN ('text', 'blob')"):
                for text in _strings(value):
                    for _, _, entry in matcher.spans(text):
                        hit(entry.label, f"{table}.{column}")
                    if id_matcher and FIELDS.get((table, column), Field(TEXT)).kind == IDENTIFIER:
                        for _, _, entry in id_matcher.spans(text):
                            hit(entry.label, f"{table}.{column}")
    # The index's own pages hold terms prefix-compressed and stemmed, which no scan can read
    # reliably; instead prove it holds exactly what its (scanned) content table holds.
    for (fts,) in conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'"):
        try:
            conn.execute(f"INSERT INTO [{fts}]([{fts}], rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError:
            hit("an old entry", f"{fts} (the full-text index does not match its content: rebuild it)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = Path(path).read_bytes()
    owners: dict[int, str] = {}
    with contextlib.suppress(sqlite3.DatabaseError):
        owners = {p: n for n, p in conn.execute("SELECT name, pageno FROM dbstat")}
    for offset in range(0, len(data), page_size):
        page = data[offset:offset + page_size].decode("utf-8", "replace")
        for _, _, entry in matcher.spans(page):
            number = offset // page_size + 1
            owner = owners.get(number)
            if not any(fold(entry.label) in fold(s.name) for s in found.values()):  # seen in a column already
                hit(entry.label, f"page {number} of the file ({'table ' + owner if owner else 'free space'})")
    return list(found.values())


def scan_file(path: str | Path, matcher: NameMatcher) -> list[Survivor]:
    """Every listed name in a written export: its text as UTF-8, or each member of a .xlsx/.docx."""
    path = Path(path)
    found: list[Survivor] = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [(f"{path.name}/{n}", archive.read(n)) for n in archive.namelist()]
    else:
        members = [(path.name, path.read_bytes())]
    for where, data in members:
        text = data.decode("utf-8", "replace")
        seen = set()
        for part in _strings(text):
            for _, _, entry in matcher.spans(part):
                if entry.label not in seen:
                    seen.add(entry.label)
                    found.append(Survivor(entry.label, where))
    return found


def refuse(survivors: list[Survivor], out: str | Path) -> None:
    """Raise :class:`LeakError` naming where each surviving name is (table and column)."""
    if not survivors:
        return
    shown = "; ".join(str(s) for s in survivors[:8]) + (f"; and {len(survivors) - 8} more" if len(survivors) > 8 else "")
    raise LeakError(f"not written: {len(survivors)} listed name(s) would survive: {shown}", out,
                    hint="add the variant to --names, or rename what carries it (e.g. `qualcode codebook rename`)")


def verify_database(conn: sqlite3.Connection, path: str | Path, alias: Pseudonymiser, out: str | Path) -> None:
    refuse(scan_database(conn, path, alias.scan, alias.id_scan), out)


def verify_file(path: str | Path, alias: Pseudonymiser, out: str | Path) -> None:
    refuse(scan_file(path, alias.scan), out)


# --- writing the file ---------------------------------------------------------------------------


def check_target(source: str | Path | None, out: str | Path, force: bool, what: str = "copy") -> None:
    """Refuse before any work: the output must not be the project, nor an existing file without --force."""
    out = Path(out)
    if source is not None and out.resolve() == Path(source).resolve():
        raise QualcodeError(f"the {what} must be a different file from the project", out)
    if out.exists() and not force:
        raise QualcodeError("file exists", out, hint="choose another name or pass --force to replace it")


@contextlib.contextmanager
def staged_output(out: str | Path) -> Iterator[Path]:
    """A path to build the output at, in a private (0700) folder next to it; moved onto ``out`` in
    one rename when the block ends normally, removed with everything in it on any error.

    So an error, a refused verification or a killed process never leaves a half-made or
    un-pseudonymised file at ``out`` (an existing ``out`` stays as it was until the new
    file replaces it), and while the file is being built nobody else can read it.
    """
    out = Path(out).absolute()
    for stale in out.parent.glob(f".{out.name}.partial-*"):  # left by a process that was killed
        shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    staged = folder / out.name
    try:
        try:
            yield staged
        except QualcodeError as e:
            if e.path == str(staged):
                e.path = str(out)
            raise
        with open(staged, "rb") as f:
            os.fsync(f.fileno())
        os.replace(staged, out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_private(out: str | Path, write: Callable[[Path], None], alias: Pseudonymiser | None) -> None:
    """Write an export through ``write``; when pseudonymising, build it aside, scan it and move it into
    place only if no listed name survives."""
    if alias is None:
        write(Path(out))
        return
    with staged_output(out) as staged:
        write(staged)
        verify_file(staged, alias, out)
