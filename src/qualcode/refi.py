"""REFI-QDA exchange: codebooks (``.qdc``) and projects (``.qdpx``), in and out.

REFI-QDA is the standard NVivo, ATLAS.ti, MAXQDA, QualCoder and others exchange projects in: a
``.qdc`` is one XML codebook; a ``.qdpx`` is a zip holding ``project.qde`` (the XML) and a
``sources/`` folder with each source's text. The schemas (``tests/refi-qda/*.xsd``) are the
contract: a test validates everything written here against them.

How our model maps onto theirs:

* documents -> ``TextSource`` with its plain text in ``sources/GUID.txt`` exactly as stored, so
  ``startPosition``/``endPosition`` (Unicode code points, end exclusive, as QualCoder and
  MAXQDA write them) are our character offsets;
* codes -> the ``CodeBook`` tree, the definition as ``Description``; coders -> ``Users``;
* a coding -> a ``PlainTextSelection`` over its span (or its segment) with a ``Coding`` per coder
  and code; a selection that crosses segments comes in as one coding per segment, cut to it;
* memos -> ``Notes`` referenced from the code, the source, the selection or the coding;
* document attributes -> ``Variables`` with a ``VariableValue`` on each source; ``Cases`` read in
  become attributes of the sources they hold (their variables, and ``case``).

What REFI-QDA has no place for (segment boundaries and speakers, code ids, include/exclude,
terms) rides along in ``qualcode.json`` beside ``project.qde``: other tools ignore it, and a
project that goes out and comes back keeps its segments. GUIDs are stored (migration
``0009_refi_guids``), so exporting twice gives the same GUIDs and the other tool matches them.

Reading is defensive: ``defusedxml`` refuses entity declarations (billion laughs) and external
entities; zips are checked for members outside the archive and for bombs before anything is
unpacked (:func:`qualcode.ingest.limits.check_zip`); an import is one transaction.
"""

from __future__ import annotations

import bisect
import codecs
import hashlib
import io
import json
import math
import re
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

import sqlite_utils
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from .codebook import ID_RE, Code, Codebook, SyncResult, sync_codebook
from .db import bulk_codings, now
from .errors import QualcodeError

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
#: What REFI-QDA has no element for, kept beside project.qde (other tools ignore it).
SIDECAR = "qualcode.json"
SIDECAR_FORMAT = 1
#: Largest .qdc read (the XML alone; a .qdpx is bounded by the zip limits).
MAX_QDC_BYTES = 64 * 1024 * 1024
#: Deepest code tree read: real codebooks are a few levels deep; thousands would exhaust the stack.
MAX_CODE_DEPTH = 100
#: Namespace of the GUIDs we derive (selections, codings, variables) so a re-export repeats them.
_GUID_NS = uuid.UUID("5b0c8a52-3f0e-4f9b-9a57-1c0d2e9f6a31")
_GUID_RE = re.compile(r"^(\{)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?(1)\})$")
_DATETIME_RE = re.compile(r"^-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")
_DATE_RE = re.compile(r"^\d{4}-\d\d-\d\d$")
_RGB_RE = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DOCUMENT_COLUMNS = ("kind", "site", "district", "role", "date")
_OTHER_SOURCES = {"PictureSource": "picture", "PDFSource": "PDF", "AudioSource": "audio", "VideoSource": "video"}


class RefiError(QualcodeError):
    """A REFI-QDA file that cannot be read, or a project that cannot take it."""


# --- results -------------------------------------------------------------------------------------


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (plural or word + 's')}"


@dataclass
class _Counts:
    path: str
    documents: int = 0
    codes: int = 0
    coders: int = 0
    codings: int = 0
    memos: int = 0

    def _parts(self) -> str:
        return ", ".join([_n(self.documents, "document"), _n(self.codes, "code"), _n(self.coders, "coder"),
                          _n(self.codings, "coding"), _n(self.memos, "memo")])


@dataclass
class ImportResult(_Counts):
    warnings: list[str] = field(default_factory=list)
    #: What came in the file that a qualcode project cannot hold, by kind ("audio source": 2).
    not_imported: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """``Imported x.qdpx: 12 documents, 40 codes, 3 coders, 1,204 codings, 9 memos; not imported: ...``"""
        line = f"Imported {Path(self.path).name}: {self._parts()}"
        if self.not_imported:
            line += "; not imported: " + ", ".join(_n(n, kind) for kind, n in sorted(self.not_imported.items()))
        return line


@dataclass
class ExportResult(_Counts):
    def summary(self) -> str:
        return f"Wrote {self.path}: {self._parts()}"


@dataclass
class CodebookImport:
    codebook: Codebook
    guids: dict[str, str]  # code id -> GUID
    warnings: list[str]
    sync: SyncResult | None = None


# --- reading safely ------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def parse_xml(data: bytes, path: str | Path, part: str, expected: str, warnings: list[str]) -> ET.Element:
    """Parse REFI-QDA XML with entities refused; tags come back without their namespace.

    ``part`` names what is parsed inside ``path`` (``project.qde``) in every message.
    """
    where = f"{part}: " if part else ""
    try:
        root = SafeET.fromstring(data)
    except DefusedXmlException as e:
        kind = "an external entity" if "External" in type(e).__name__ else "an entity declaration"
        raise RefiError(f"{where}refused: the XML holds {kind} ({type(e).__name__}); qualcode expands no entities "
                        "and fetches nothing", path, hint="export the file again from the tool it came from") from None
    except ET.ParseError as e:
        raise RefiError(f"{where}not well-formed XML ({e})", path) from None
    ns = _namespace(root.tag)
    if ns != expected:
        if ns.replace(":1:0", ":1.0") == expected:
            warnings.append(f"{path}: {where}namespace written '{ns}'; read as '{expected}'")
        elif not ns:
            warnings.append(f"{path}: {where}<{_local(root.tag)}> has no namespace; read as '{expected}'")
        elif ns not in (PROJECT_NS, CODEBOOK_NS):
            raise RefiError(f"{where}<{_local(root.tag)}> is in namespace '{ns[:80]}', not REFI-QDA's '{expected}'", path)
    for el in root.iter():
        el.tag = _local(el.tag) if isinstance(el.tag, str) else el.tag
    return root


class Archive:
    """A .qdpx opened for reading: checked for bombs and for paths leaving the archive first."""

    def __init__(self, path: str | Path) -> None:
        from .ingest.limits import check_zip

        self.path = Path(path)
        if not self.path.is_file():
            raise RefiError("no such file", self.path)
        if not zipfile.is_zipfile(self.path):
            raise RefiError("not a REFI-QDA project: the file is not a zip archive", self.path,
                            hint="a .qdpx is a zip of project.qde and sources/ (a .qdc codebook goes to "
                                 "`qualcode codebook import`)")
        check_zip(self.path, "qdpx")
        try:
            self.zip = zipfile.ZipFile(self.path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise RefiError(f"damaged zip ({e})", self.path) from None
        self.names: list[str] = []
        self._sources: dict[str, str] | None = None  # file name in sources/ -> member
        self._told_folder = False
        for info in infos:
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
                raise RefiError(f"refused: member '{name[:100]}' has a path outside the archive", self.path)
            if not info.is_dir():
                self.names.append(name)

    def read(self, name: str) -> bytes:
        try:
            return self.zip.read(name)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:  # a CRC error, a truncated member
            raise RefiError(f"member '{name[:100]}' cannot be read ({e})", self.path) from None
        except (RuntimeError, NotImplementedError) as e:  # encrypted, or packed in a way zipfile cannot unpack
            raise RefiError(f"member '{name[:100]}' cannot be read ({e})", self.path,
                            hint="export the project again without a password") from None

    def project_file(self, warnings: list[str]) -> str:
        """``project.qde``, or the one ``.qde`` at the top (some tools name it after the project)."""
        top = [n for n in self.names if "/" not in n.replace("\\", "/") and n.lower().endswith(".qde")]
        exact = [n for n in top if n.lower() == "project.qde"]
        if exact:
            return exact[0]
        if len(top) == 1:
            warnings.append(f"{self.path}: the project XML is named '{top[0]}', not 'project.qde'; read anyway")
            return top[0]
        if not top:
            raise RefiError("no project.qde in the archive", self.path,
                            hint="is it a REFI-QDA project export (.qdpx)? A codebook (.qdc) goes to `qualcode codebook import`")
        raise RefiError(f"the archive holds {len(top)} .qde files and none is named project.qde: "
                        f"{', '.join(top[:5])}", self.path)

    def source(self, url: str, warnings: list[str], element: str) -> bytes | None:
        """The bytes of an ``internal://NAME`` source, from ``sources/`` whatever its case, with or
        without its extension; None for an external (relative://, absolute://) or missing one."""
        if not url.lower().startswith("internal://"):
            return None
        wanted = url[len("internal://"):].strip().replace("\\", "/")
        if self._sources is None:
            self._sources = {}
            for name in self.names:
                folder, _, file = name.replace("\\", "/").rpartition("/")
                if folder.lower() == "sources":
                    self._sources.setdefault(file, name)
        folders = self._sources
        if wanted in folders:
            name = folders[wanted]
        else:
            stem = PurePosixPath(wanted).stem
            matches = [n for f, n in folders.items() if f == stem or PurePosixPath(f).stem == stem]
            if not matches:
                return None
            name = matches[0]
            warnings.append(f"{self.path}: {element}: '{wanted}' found as '{name}'")
        folder = name.replace("\\", "/").rpartition("/")[0]
        if folder != "sources" and not self._told_folder:
            self._told_folder = True
            warnings.append(f"{self.path}: sources folder named '{folder}/', not 'sources/'; read anyway")
        return self.read(name)


def _decode(data: bytes, path: Path, element: str, warnings: list[str]) -> str:
    """UTF-8 (a BOM is not text), else Windows-1252 with a warning. Line ends are kept as they
    are: the selections' offsets count them."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        warnings.append(f"{path}: {element}: not UTF-8; read as Windows-1252 (cp1252) — check accented letters")
        return data.decode("cp1252", errors="replace")


# --- codes in and out ----------------------------------------------------------------------------


@dataclass
class _RefiCode:
    guid: str
    name: str
    description: str
    color: str | None
    children: list["_RefiCode"]
    notes: list[str] = field(default_factory=list)
    codable: bool = True


def _colour(value: str | None, path: Path, element: str, warnings: list[str]) -> str | None:
    if value is None or not value.strip():
        return None
    v = value.strip()
    if re.fullmatch(r"#[0-9a-fA-F]{6}", v):
        return v
    if re.fullmatch(r"#[0-9a-fA-F]{8}", v):
        warnings.append(f"{path}: {element}: colour '{v}' has an alpha channel; read as '{v[:7]}'")
        return v[:7]
    if re.fullmatch(r"#[0-9a-fA-F]{3}", v):
        full = "#" + "".join(c * 2 for c in v[1:])
        warnings.append(f"{path}: {element}: colour '{v}' written as #RGB; read as '{full}'")
        return full
    warnings.append(f"{path}: {element}: colour '{v[:20]}' is not #RRGGBB; left out")
    return None


class _Guids:
    """GUIDs seen in one file: a duplicate is reported, and the second thing gets a new one."""

    def __init__(self, path: Path, warnings: list[str]) -> None:
        self.path, self.warnings = path, warnings
        self.seen: dict[str, str] = {}

    def take(self, guid: str | None, element: str, fallback: tuple) -> str:
        if not guid or not guid.strip():
            made = _derived(*fallback)
            self.warnings.append(f"{self.path}: {element} has no guid; given {made}")
            return made
        guid = guid.strip()
        if guid.lower() in self.seen:
            made = str(uuid.uuid4())
            self.warnings.append(f"{self.path}: {element}: duplicate GUID {guid} (first used by {self.seen[guid.lower()]}); "
                                 f"references to it go to the first, this one is given {made}")
            return made
        self.seen[guid.lower()] = element
        return guid


def _derived(*parts: object) -> str:
    return str(uuid.uuid5(_GUID_NS, "\x1f".join(str(p) for p in parts)))


def _read_codes(codes_el: ET.Element | None, path: Path, guids: _Guids, warnings: list[str]) -> list[_RefiCode]:
    if codes_el is None:
        return []
    if not len(codes_el):
        warnings.append(f"{path}: empty <Codes/>: the file has no codes")

    def read(el: ET.Element, trail: tuple) -> _RefiCode:
        name = (el.get("name") or "").strip()
        label = f"<Code name='{name[:40]}'>"
        if len(trail) >= MAX_CODE_DEPTH:
            raise RefiError(f"{label}: codes nested more than {MAX_CODE_DEPTH} deep; refused", path)
        if not name:
            name = f"Code {len(guids.seen) + 1}"
            warnings.append(f"{path}: <Code guid='{el.get('guid')}'> has no name; called '{name}'")
        guid = guids.take(el.get("guid"), label, ("code", *trail, name))
        description = "".join((el.findtext("Description") or "").strip())
        children = [read(c, (*trail, name)) for c in el.findall("Code")]
        notes = [r.get("targetGUID", "") for r in el.findall("NoteRef")]
        return _RefiCode(guid, name, description, _colour(el.get("color"), path, label, warnings), children, notes,
                         (el.get("isCodable") or "true").strip().lower() not in ("false", "0"))

    return [read(c, ()) for c in codes_el.findall("Code")]


def _leaf(name: str) -> str:
    """An id part from a code's name: its first words, whole, up to about 24 characters."""
    words, leaf = re.findall(r"[a-z0-9]+", name.lower()), ""
    for word in words:
        if leaf and len(leaf) + 1 + len(word) > 24:
            break
        leaf = f"{leaf}-{word}" if leaf else word[:40]
    return leaf if leaf and leaf[0].isalpha() else f"c-{leaf}" if leaf else "code"


def _build_codebook(codes: list[_RefiCode], book_id: str, name: str, source: str, taken: set[str],
                    known: dict[str, str], extra: dict[str, dict] | None = None) -> tuple[Codebook, dict[str, str]]:
    """Our codebook from REFI codes. A GUID the project already knows keeps that code's id (so a
    code renamed in the other tool is renamed here); an id ``extra`` (the sidecar) gives is used
    when it fits the tree; otherwise the id is made from the name, unique among its siblings."""
    extra = {k.lower(): v for k, v in (extra or {}).items()}
    guid_of: dict[str, str] = {}
    used = set(taken)

    def make(rc: _RefiCode, parent: str | None) -> Code:
        info = extra.get(rc.guid.lower(), {})
        prefix = f"{parent}." if parent else ""

        def fits(cid: object) -> bool:
            return (isinstance(cid, str) and bool(ID_RE.match(cid)) and cid.startswith(prefix)
                    and "." not in cid[len(prefix):] and cid not in used)

        if fits(known.get(rc.guid.lower())):
            cid = known[rc.guid.lower()]
        elif fits(info.get("id")):
            cid = info["id"]
        else:
            base = prefix + _leaf(rc.name)
            cid, n = base, 2
            while cid in used:
                cid, n = f"{base}-{n}", n + 1
        used.add(cid)
        guid_of[cid] = rc.guid
        roles = _valid_roles(info.get("roles"))
        code = Code(id=cid, name=rc.name, definition=rc.description,
                    include=str(info.get("include") or ""), exclude=str(info.get("exclude") or ""),
                    examples=[str(x) for x in info.get("examples") or []], terms=[str(x) for x in info.get("terms") or []],
                    color=rc.color, roles=roles,
                    exclusive=bool(info.get("exclusive")) and bool(rc.children))
        code.children = [make(c, cid) for c in rc.children]
        return code

    top = [make(rc, None) for rc in codes]
    return Codebook(id=book_id, name=name, version="", description=f"Imported from {source}", codes=top,
                    path=source), guid_of


def _kept_fields(db: sqlite_utils.Database) -> dict[str, dict]:
    """What a .qdc has no place for (include, exclude, examples, terms, roles), by GUID, as the project
    has it: a codebook that went to another tool and came back keeps them."""
    return {r["guid"]: {"include": r["include"], "exclude": r["exclude"], "examples": json.loads(r["examples"] or "[]"),
                        "terms": json.loads(r["terms"] or "[]"), "roles": json.loads(r["roles"]) if r["roles"] else None,
                        "exclusive": bool(r["exclusive"])}
            for r in db.query("SELECT * FROM codes WHERE guid IS NOT NULL")}


def _valid_roles(value: object) -> list[str] | None:
    """Role names a sidecar gives, those qualcode accepts; None when it gives none."""
    from .roles import normalise_role

    if not isinstance(value, list):
        return None
    roles = []
    for item in value:
        try:
            roles.append(normalise_role(item))
        except QualcodeError:
            continue
    return roles


def _known_guids(db: sqlite_utils.Database) -> dict[str, str]:
    return {r["guid"].lower(): r["id"] for r in db.query("SELECT id, guid FROM codes WHERE guid IS NOT NULL")}


def _book_id(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "refi"


def read_codebook(path: str | Path, db: sqlite_utils.Database | None = None) -> CodebookImport:
    """A .qdc (or the codebook inside a .qdpx) as our :class:`Codebook`, with each code's GUID.

    With ``db``, codes whose GUID the project knows keep their ids and no new id clashes with
    another codebook's. Raises :class:`RefiError` for a file that cannot be read safely.
    """
    path = Path(path)
    warnings: list[str] = []
    if zipfile.is_zipfile(path) if path.is_file() else False:
        archive = Archive(path)
        part = archive.project_file(warnings)
        root = parse_xml(archive.read(part), path, part, PROJECT_NS, warnings)
        if root.tag != "Project":
            raise RefiError(f"{part}: the root element is <{root.tag}>, not <Project>", path)
        codes_el = root.find("CodeBook/Codes")
    else:
        if not path.is_file():
            raise RefiError("no such file", path)
        if path.stat().st_size > MAX_QDC_BYTES:
            raise RefiError(f"the file is larger than {MAX_QDC_BYTES // 2**20} MB, more than a codebook holds", path)
        root = parse_xml(path.read_bytes(), path, "", CODEBOOK_NS, warnings)
        if root.tag != "CodeBook":
            raise RefiError(f"the root element is <{root.tag}>, not <CodeBook>", path,
                            hint="a .qdc holds <CodeBook>; a project (.qdpx) goes to `qualcode import`")
        codes_el = root.find("Codes")
    if codes_el is None:
        warnings.append(f"{path}: no <Codes> element: the file has no codes")
    refi_codes = _read_codes(codes_el, path, _Guids(path, warnings), warnings)
    book_id = _book_id(path.stem)
    if db is not None:  # a codebook that went out of this project and comes back updates the one it was
        guids: list[str] = []

        def collect(items: list[_RefiCode]) -> None:
            for rc in items:
                guids.append(rc.guid.lower())
                collect(rc.children)

        collect(refi_codes)
        books = {r["codebook_id"] for r in db.query("SELECT codebook_id, guid FROM codes WHERE guid IS NOT NULL")
                 if r["guid"].lower() in set(guids)}
        if len(books) == 1:
            book_id = books.pop()
    taken = {r["id"] for r in db.query("SELECT id FROM codes WHERE codebook_id != ?", [book_id])} if db else set()
    book, guid_of = _build_codebook(refi_codes, book_id, path.stem, path.name, taken,
                                    _known_guids(db) if db else {}, _kept_fields(db) if db else {})
    book.path = str(path)
    if db is not None and (row := next(db.query("SELECT * FROM codebooks WHERE id = ?", [book_id]), None)):
        book.name, book.version, book.description = row["name"], row["version"] or "", row["description"] or ""
    return CodebookImport(book, guid_of, warnings)


def import_codebook(db: sqlite_utils.Database, path: str | Path, force: bool = False) -> CodebookImport:
    """Load a .qdc (or a .qdpx's codebook) into the project, syncing it as `codebook load` does,
    in one transaction; each code keeps the file's GUID."""
    result = read_codebook(path, db)
    if not result.codebook.codes:
        raise RefiError("the codebook has no codes; nothing to load", path)
    with db.atomic():
        result.sync = sync_codebook(db, result.codebook, force=force)
        _set_guids(db, "codes", "id", result.guids)
    return result


def _set_guids(db: sqlite_utils.Database, table: str, key: str, guids: dict) -> None:
    # Cleared first, so two codes swapping GUIDs never meet the unique index half way.
    db.conn.executemany(f"UPDATE {table} SET guid = NULL WHERE guid = ? AND {key} != ?",
                        [(g, k) for k, g in guids.items()])
    db.conn.executemany(f"UPDATE {table} SET guid = ? WHERE {key} = ?", [(g, k) for k, g in guids.items()])


def codebook_yaml(book: Codebook) -> str:
    """Our YAML codebook, as `codebook load` reads it, from a codebook read out of a .qdc."""
    import yaml

    def node(code: Code) -> dict:
        out: dict[str, Any] = {"id": code.id, "name": code.name,
                               "definition": code.definition or f"{code.name} (no description in the REFI-QDA codebook)"}
        for key in ("include", "exclude"):
            if getattr(code, key):
                out[key] = getattr(code, key)
        for key in ("examples", "terms"):
            if getattr(code, key):
                out[key] = getattr(code, key)
        if code.color:
            out["color"] = code.color
        if code.children:
            out["children"] = [node(c) for c in code.children]
        return out

    data = {"name": book.name, "version": book.version or "", "description": book.description or "",
            "codes": [node(c) for c in book.codes]}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


# --- writing -------------------------------------------------------------------------------------


def _clean(text: Any) -> str:
    """Text as XML 1.0 can carry it: control characters other than tab and line ends dropped."""
    return _NOT_XML.sub("", str(text))


def _el(parent: ET.Element | None, tag: str, attrs: dict[str, Any] | None = None, text: str | None = None) -> ET.Element:
    clean = {k: _clean(v) for k, v in (attrs or {}).items() if v is not None}
    el = ET.Element(tag, clean) if parent is None else ET.SubElement(parent, tag, clean)
    if text is not None:
        el.text = _clean(text)
    return el


def _when(value: str | None) -> str | None:
    return value if value and _DATETIME_RE.match(value) else None


def _code_rows(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT * FROM codes ORDER BY codebook_id, sort_order"))


def _code_tree(parent: ET.Element, rows: list[dict], text, notes_of: dict[str, list[str]] | None) -> None:
    """The code tree under ``parent`` (a <Codes>), children after their parent's Description and NoteRefs."""
    children: dict[str | None, list[dict]] = defaultdict(list)
    ids = {r["id"] for r in rows}
    for r in rows:
        children[r["parent_id"] if r["parent_id"] in ids else None].append(r)

    def add(under: ET.Element, r: dict) -> None:
        color = r["color"] if r["color"] and _RGB_RE.match(r["color"]) else None
        el = _el(under, "Code", {"guid": r["guid"], "name": text(r["name"]), "isCodable": "true", "color": color})
        if r["definition"]:
            _el(el, "Description", text=text(r["definition"]))
        for note in (notes_of or {}).get(r["id"], []):
            _el(el, "NoteRef", {"targetGUID": note})
        for child in children.get(r["id"], []):
            add(el, child)

    for r in children[None]:
        add(parent, r)


def _xml_bytes(root: ET.Element) -> bytes:
    buffer = io.BytesIO()
    ET.ElementTree(root).write(buffer, encoding="utf-8", xml_declaration=True)
    return buffer.getvalue()


def export_codebook(db: sqlite_utils.Database, out: str | Path) -> int:
    """Write the project's codes as a REFI-QDA codebook (.qdc); returns how many codes."""
    from .privacy import staged_output

    rows = _code_rows(db)
    if not rows:
        raise RefiError("the project has no codes to export", hint="load a codebook with `qualcode codebook load FILE`")
    root = _el(None, "CodeBook", {"xmlns": CODEBOOK_NS, "origin": "qualcode"})
    _code_tree(_el(root, "Codes"), rows, str, None)
    with staged_output(out) as staged:
        staged.write_bytes(_xml_bytes(root))
    return len(rows)


def _variable_type(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "Boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "Integer"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return "Float"
    if all(isinstance(v, str) and _DATE_RE.match(v) for v in values):
        from .ingest.attributes import _real_date

        if all(_real_date(v) for v in values):
            return "Date"
    return "Text"


def _variable_value(parent: ET.Element, guid: str, kind: str, value: Any, text) -> None:
    vv = _el(parent, "VariableValue")
    _el(vv, "VariableRef", {"targetGUID": guid})
    if kind == "Boolean":
        _el(vv, "BooleanValue", text="true" if value else "false")
    elif kind == "Integer":
        _el(vv, "IntegerValue", text=str(value))
    elif kind == "Float":
        _el(vv, "FloatValue", text=format(Decimal(repr(float(value))), "f"))
    elif kind == "Date":
        _el(vv, "DateValue", text=value)
    else:
        _el(vv, "TextValue", text=text(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)))


def export_project(db: sqlite_utils.Database, out: str | Path, where: dict[str, list[str]] | None = None,
                   pseudonymise: bool = False) -> ExportResult:
    """Write the project (or the documents ``where`` selects) as a REFI-QDA project (.qdpx).

    With ``pseudonymise`` every speaker, coder and document id is replaced as `publish` does
    (:class:`qualcode.privacy.Pseudonymiser`): document text with offsets re-derived, so every
    selection still covers the same words; the finished archive is scanned (every member) and
    only moved to ``out`` if no listed name survives. The file is built aside either way, so a
    failed export leaves no half-written archive.
    """
    from .privacy import OffsetMap, Pseudonymiser, staged_output, verify_file
    from .queries import where_sql

    alias = Pseudonymiser.for_project(db) if pseudonymise else None
    text = alias.text if alias else (lambda s: s)
    ident = alias.identifier if alias else (lambda s: s)
    clauses, params = where_sql(where)
    doc_filter = " AND ".join(clauses) or "1 = 1"
    docs = list(db.query(f"SELECT * FROM documents d WHERE {doc_filter} ORDER BY d.id", params))
    id_list = f"SELECT d.id FROM documents d WHERE {doc_filter}"
    segments: dict[str, list[dict]] = defaultdict(list)
    for s in db.query(f"SELECT id, document_id, seq, speaker, start_char, end_char, start_time, end_time FROM segments "
                      f"WHERE document_id IN ({id_list}) ORDER BY document_id, seq", params):
        segments[s["document_id"]].append(s)
    codings: dict[str, list[dict]] = defaultdict(list)
    for g in db.query(f"""SELECT g.id, g.code_id, g.coder_id, g.start_char, g.end_char, g.memo, g.created_at,
                                 s.document_id, s.start_char AS seg_start, s.end_char AS seg_end
                          FROM codings g JOIN segments s ON s.id = g.segment_id
                          WHERE s.document_id IN ({id_list}) ORDER BY g.id""", params):
        codings[g["document_id"]].append(g)
    coders = list(db.query("SELECT id, name, guid, consensus FROM coders ORDER BY id"))
    coder_guid = {c["id"]: c["guid"] for c in coders}
    code_rows = _code_rows(db)
    code_guid = {r["id"]: r["guid"] for r in code_rows}
    memos = list(db.query(
        f"""SELECT m.*, s.document_id AS seg_document, s.start_char AS seg_start, s.end_char AS seg_end
            FROM memos m LEFT JOIN segments s ON s.id = m.segment_id
            WHERE m.code_id IS NOT NULL OR m.document_id IN ({id_list}) OR s.document_id IN ({id_list})
            ORDER BY m.id""", params + params))
    about = next(db.query("SELECT title FROM about"), None) if db["about"].exists() else None
    name = (about or {}).get("title") or Path(db.conn.execute("PRAGMA database_list").fetchone()[2] or "qualcode").stem

    root = _el(None, "Project", {"xmlns": PROJECT_NS, "name": text(name), "origin": "qualcode",
                                 "creationDateTime": now()})
    if coders:
        users = _el(root, "Users")
        for c in coders:
            _el(users, "User", {"guid": c["guid"], "name": text(c["name"]), "id": str(c["id"])})
    notes: list[ET.Element] = []

    def note(guid: str, body: str, coder_id: int | None, created: str | None, title: str) -> str:
        el = ET.Element("Note", {k: _clean(v) for k, v in {"guid": guid, "name": text(title)[:60],
                                 "creatingUser": coder_guid.get(coder_id), "creationDateTime": _when(created)}.items()
                                 if v is not None})
        _el(el, "PlainTextContent", text=text(body))
        notes.append(el)
        return guid

    code_notes: dict[str, list[str]] = defaultdict(list)
    doc_notes: dict[str, list[str]] = defaultdict(list)
    segment_notes: dict[tuple[str, int, int], list[str]] = defaultdict(list)
    for m in memos:
        title = m["text"].strip().split("\n", 1)[0]
        guid = note(m["guid"], m["text"], m["coder_id"], m["created_at"], title)
        if m["code_id"]:
            code_notes[m["code_id"]].append(guid)
        elif m["document_id"]:
            doc_notes[m["document_id"]].append(guid)
        else:
            segment_notes[(m["seg_document"], m["seg_start"], m["seg_end"])].append(guid)
    if code_rows:
        _code_tree(_el(_el(root, "CodeBook"), "Codes"), code_rows, text, code_notes)

    # Variables: one per attribute any exported document has, typed by the values it takes.
    values: dict[str, dict[str, Any]] = {}
    for d in docs:
        own = {k: d[k] for k in _DOCUMENT_COLUMNS if d[k] is not None}
        own.update({k: v for k, v in json.loads(d["attributes"] or "{}").items() if v is not None})
        values[d["id"]] = own
    names = sorted({k for own in values.values() for k in own})
    variables = {}
    if names:
        var_el = _el(root, "Variables")
        for key in names:
            kind = _variable_type([own[key] for own in values.values() if key in own])
            label = text(key)
            variables[key] = (_derived("variable", label), kind)
            _el(var_el, "Variable", {"guid": variables[key][0], "name": label, "typeOfVariable": kind})

    sidecar: dict[str, Any] = {"format": SIDECAR_FORMAT, "documents": {}, "codes": {}, "codebooks": [],
                               "explicit_spans": []}
    files: dict[str, bytes] = {}
    result = ExportResult(str(out), documents=len(docs), codes=len(code_rows), coders=len(coders), memos=len(memos))
    sources_el = _el(root, "Sources") if docs else None
    for d in docs:
        doc_text = d["text"]
        moved = OffsetMap(doc_text, alias.spans(doc_text)) if alias else None
        if moved:
            doc_text = moved.text
        start_of = moved.start if moved else (lambda o: o)
        end_of = moved.end if moved else (lambda o: o)
        guid = d["guid"]
        source = _el(sources_el, "TextSource", {"guid": guid, "name": text(d["title"]),
                                                "plainTextPath": f"internal://{guid}.txt",
                                                "creationDateTime": _when(d["ingested_at"])})
        files[f"sources/{guid}.txt"] = doc_text.encode("utf-8")
        # Codings at the same place share a selection, as the other tools write them.
        by_place: dict[tuple[int, int], list[dict]] = defaultdict(list)
        for g in codings[d["id"]]:
            explicit = g["start_char"] is not None
            s, e = (g["start_char"], g["end_char"]) if explicit else (g["seg_start"], g["seg_end"])
            by_place[(start_of(s), end_of(e))].append(g)
            if explicit and (g["start_char"], g["end_char"]) == (g["seg_start"], g["seg_end"]):
                g["explicit"] = True
        notes_at: dict[tuple[int, int], list[str]] = defaultdict(list)
        for seg in segments[d["id"]]:
            refs = segment_notes.get((d["id"], seg["start_char"], seg["end_char"]))
            if refs:
                place = (start_of(seg["start_char"]), end_of(seg["end_char"]))
                by_place.setdefault(place, [])
                notes_at[place] += refs
        for (s, e), group in sorted(by_place.items()):
            sel_guid = _derived("selection", guid, s, e)
            sel = _el(source, "PlainTextSelection", {"guid": sel_guid, "startPosition": s, "endPosition": e,
                                                     "creatingUser": coder_guid.get(group[0]["coder_id"]) if group else None})
            for g in group:
                # A whole-segment coding and a span coding of the same place are two codings: two GUIDs.
                coding_guid = _derived("coding", sel_guid, code_guid[g["code_id"]], coder_guid[g["coder_id"]],
                                       "span" if g["start_char"] is not None else "segment")
                coding = _el(sel, "Coding", {"guid": coding_guid, "creatingUser": coder_guid[g["coder_id"]],
                                             "creationDateTime": _when(g["created_at"])})
                _el(coding, "CodeRef", {"targetGUID": code_guid[g["code_id"]]})
                if g["memo"]:
                    _el(coding, "NoteRef", {"targetGUID": note(_derived("coding memo", coding_guid), g["memo"],
                                                               g["coder_id"], g["created_at"], g["memo"])})
                if g.get("explicit"):
                    sidecar["explicit_spans"].append(coding_guid)
                result.codings += 1
            for ref in notes_at.get((s, e), []):
                _el(sel, "NoteRef", {"targetGUID": ref})
        for ref in doc_notes.get(d["id"], []):
            _el(source, "NoteRef", {"targetGUID": ref})
        for key, value in values[d["id"]].items():
            _variable_value(source, variables[key][0], variables[key][1], value, text)
        sidecar["documents"][guid] = {
            "id": ident(d["id"]), "format": d["format"], "published": d["published"],
            "sha256": hashlib.sha256(doc_text.encode("utf-8")).hexdigest(),
            "segments": [[start_of(s["start_char"]), end_of(s["end_char"]),
                          alias.speaker(s["speaker"]) if alias else s["speaker"], s["start_time"], s["end_time"]]
                         for s in segments[d["id"]]],
        }
    if notes:
        notes_el = _el(root, "Notes")
        notes_el.extend(notes)
    for r in code_rows:
        info = {"id": ident(r["id"]), "codebook_id": ident(r["codebook_id"]), "include": text(r["include"] or ""),
                "exclude": text(r["exclude"] or ""), "examples": [text(x) for x in json.loads(r["examples"] or "[]")],
                "terms": [text(x) for x in json.loads(r["terms"] or "[]")],
                "roles": json.loads(r["roles"]) if r.get("roles") else None, "exclusive": bool(r.get("exclusive")),
                "archived": bool(r["archived"])}
        sidecar["codes"][r["guid"]] = info
    sidecar["codebooks"] = [{"id": ident(b["id"]), "name": text(b["name"]), "version": text(b["version"] or ""),
                             "description": text(b["description"] or "")}
                            for b in db.query("SELECT * FROM codebooks ORDER BY id")]
    sidecar["coders"] = {c["guid"]: {"consensus": bool(c["consensus"])} for c in coders}

    qde = _xml_bytes(root)
    with staged_output(out) as staged:
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("project.qde", qde)
            for member, data in files.items():
                archive.writestr(member, data)
            archive.writestr(SIDECAR, json.dumps(sidecar, ensure_ascii=False))
        if alias:
            verify_file(staged, alias, out)
    return result


# --- importing a project -------------------------------------------------------------------------

_DOC_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_SIDECAR_SHAPE = {"documents": dict, "codes": dict, "codebooks": list, "explicit_spans": list, "coders": dict}


def _read_sidecar(archive: Archive, warnings: list[str]) -> dict[str, Any]:
    """Our own ``qualcode.json``, checked for shape: it is input like the rest, so one that is not
    what we write is set aside (segments are then made from the text) rather than trusted."""
    if SIDECAR not in archive.names:
        return {}
    try:
        sidecar = json.loads(archive.read(SIDECAR))
        if not isinstance(sidecar, dict) or sidecar.get("format") != SIDECAR_FORMAT:
            raise ValueError("not a format qualcode writes")
        for key, kind in _SIDECAR_SHAPE.items():
            if not isinstance(sidecar.get(key, kind()), kind):
                raise ValueError(f"'{key}' is not a {kind.__name__}")
    except ValueError as e:
        warnings.append(f"{archive.path}: {SIDECAR} set aside ({e}); segments are made from the text instead")
        return {}
    return sidecar


def _sidecar_segments(meta: dict, sha: str, length: int) -> list[tuple] | None:
    """The segments our sidecar gives for a source whose text is unchanged, if they are sound:
    in order, not overlapping, inside the text, speakers text and times numbers."""
    if meta.get("sha256") != sha or not isinstance(meta.get("segments"), list):
        return None
    segs, last = [], 0
    for item in meta["segments"]:
        if not (isinstance(item, list) and len(item) == 5):
            return None
        a, b, speaker, t0, t1 = item
        if not (isinstance(a, int) and isinstance(b, int) and last <= a < b <= length):
            return None
        if not (speaker is None or isinstance(speaker, str)):
            return None
        if not all(t is None or (isinstance(t, (int, float)) and not isinstance(t, bool)) for t in (t0, t1)):
            return None
        segs.append((a, b, speaker, t0, t1))
        last = b
    return segs



@dataclass
class _Selection:
    start: int
    end: int
    guid: str
    codings: list[tuple[str, str | None, str | None, list[str], str]]  # code guid, user guid, created, notes, coding guid
    notes: list[str]
    user: str | None


@dataclass
class _Source:
    guid: str
    name: str
    text: str
    user: str | None
    created: str | None
    selections: list[_Selection]
    notes: list[str]
    values: dict[str, Any]


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _typed(vv: ET.Element, variables: dict[str, tuple[str, str]]) -> tuple[str, Any] | None:
    ref = vv.find("VariableRef")
    var = variables.get((ref.get("targetGUID") or "").lower()) if ref is not None else None
    if var is None:
        return None
    for tag in ("TextValue", "BooleanValue", "IntegerValue", "FloatValue", "DateValue", "DateTimeValue"):
        el = vv.find(tag)
        if el is None:
            continue
        raw = (el.text or "").strip()
        if tag == "BooleanValue":
            return var[0], raw.lower() in ("true", "1")
        if tag == "IntegerValue" and _int(raw) is not None:
            return var[0], _int(raw)
        if tag == "FloatValue":
            try:
                number = float(raw)
            except ValueError:
                return var[0], raw
            return var[0], number if math.isfinite(number) else raw  # NaN is not JSON: SQLite would refuse it
        return var[0], el.text or ""
    return None


def _check_empty(db: sqlite_utils.Database, path: Path) -> None:
    n = db.execute("SELECT count(*) FROM documents").fetchone()[0]
    if n:
        raise RefiError(f"the project already has {_n(n, 'document')}; a REFI-QDA project is imported into a new "
                        "or empty one", path, hint="create one with `qualcode init --db NEW.db` and import there "
                                                   "(or bring in only the codebook with `qualcode codebook import`)")


@dataclass
class _Parsed:
    """Everything an import writes, read from the file before the transaction begins."""
    users: dict[str, str]  # GUID (lower case) -> name
    user_guid: dict[str, str]  # GUID (lower case) -> GUID as written
    codes: list[_RefiCode]
    code_guids: dict[str, str]  # GUID (lower case) -> GUID as written
    notes: dict[str, dict]
    sources: list[_Source]


def _parse_project(archive: Archive, root: ET.Element, path: Path, result: ImportResult) -> _Parsed:
    """Read users, codes, variables, cases, sets, notes and text sources; count what we cannot hold;
    make the codes that codings refer to but the codebook does not define."""
    warnings = result.warnings
    guids = _Guids(path, warnings)

    # Users.
    users: dict[str, str] = {}  # guid (lower) -> name
    user_guid: dict[str, str] = {}  # guid (lower) -> guid as written
    for u in root.findall("Users/User"):
        name = (u.get("name") or u.get("id") or "").strip()
        guid = guids.take(u.get("guid"), f"<User name='{name[:40]}'>", ("user", name))
        if guid.lower() in users:
            continue
        users[guid.lower()] = name or f"User {guid.strip('{}')[:8]}"
        user_guid[guid.lower()] = guid

    # Codes (read now; written once every reference is known).
    codes_parent = root.find("CodeBook")
    codes_el = codes_parent.find("Codes") if codes_parent is not None else None
    refi_codes = _read_codes(codes_el, path, guids, warnings)
    code_guids: dict[str, str] = {}

    def walk(items: list[_RefiCode]) -> None:
        for rc in items:
            code_guids.setdefault(rc.guid.lower(), rc.guid)
            walk(rc.children)

    walk(refi_codes)

    variables: dict[str, tuple[str, str]] = {}
    for v in root.findall("Variables/Variable"):
        if v.get("guid") and v.get("name"):
            variables[v.get("guid").strip().lower()] = (v.get("name").strip(), v.get("typeOfVariable") or "Text")
    case_values: dict[str, dict[str, Any]] = defaultdict(dict)
    case_names: dict[str, list[str]] = defaultdict(list)
    for case in root.findall("Cases/Case"):
        name = (case.get("name") or "").strip()
        own = dict(filter(None, (_typed(vv, variables) for vv in case.findall("VariableValue"))))
        for ref in case.findall("SourceRef"):
            target = (ref.get("targetGUID") or "").lower()
            for key, value in own.items():
                case_values[target].setdefault(key, value)
            if name:
                case_names[target].append(name)
        if case.findall("SelectionRef") or case.findall("CodeRef"):
            result.not_imported["case link to a selection or code"] += len(case.findall("SelectionRef")) + len(case.findall("CodeRef"))

    # Sets of sources (ATLAS.ti's document groups, NVivo's sets) become the attribute 'sets';
    # a set of codes or notes has no equivalent here.
    set_names: dict[str, list[str]] = defaultdict(list)
    for st in root.findall("Sets/Set"):
        members = [(m.get("targetGUID") or "").strip().lower() for m in st.findall("MemberSource")]
        for member in members:
            set_names[member].append((st.get("name") or "").strip() or "unnamed set")
        if not members:
            result.not_imported["set of codes or notes"] += 1
    notes: dict[str, dict] = {}
    for n in root.findall("Notes/Note"):
        guid = (n.get("guid") or "").strip()
        body = n.findtext("PlainTextContent")
        if body is None and n.get("plainTextPath"):
            data = archive.source(n.get("plainTextPath"), warnings, f"<Note name='{(n.get('name') or '')[:40]}'>")
            body = _decode(data, path, "<Note>", warnings) if data is not None else None
        if not guid or body is None or not body.strip():
            continue
        notes[guid.lower()] = {"text": body, "user": n.get("creatingUser"), "created": n.get("creationDateTime"),
                               "guid": guid}

    # Sources.
    sources: list[_Source] = []
    sources_el = root.find("Sources")
    for el in list(sources_el) if sources_el is not None else []:
        if el.tag in _OTHER_SOURCES:
            result.not_imported[f"{_OTHER_SOURCES[el.tag]} source"] += 1
            continue
        if el.tag != "TextSource":
            continue
        name = (el.get("name") or "").strip() or f"source {len(sources) + 1}"
        label = f"<TextSource name='{name[:60]}'>"
        content = el.find("PlainTextContent")
        if content is not None and content.text:
            text = content.text
        elif el.get("plainTextPath"):
            data = archive.source(el.get("plainTextPath"), warnings, label)
            if data is None:
                warnings.append(f"{path}: {label}: its text '{el.get('plainTextPath')[:80]}' is not in the archive; "
                                "source not imported")
                result.not_imported["text source without its text"] += 1
                continue
            text = _decode(data, path, label, warnings)
        else:
            warnings.append(f"{path}: {label} has no plain text (only '{(el.get('richTextPath') or '')[:80]}'); "
                            "not imported")
            result.not_imported["text source without plain text"] += 1
            continue
        guid = guids.take(el.get("guid"), label, ("source", name))
        values = dict(filter(None, (_typed(vv, variables) for vv in el.findall("VariableValue"))))
        for key, value in case_values.get(guid.lower(), {}).items():
            values.setdefault(key, value)
        if case_names.get(guid.lower()):
            values.setdefault("case", "; ".join(case_names[guid.lower()]))
        if set_names.get(guid.lower()):
            values.setdefault("sets", "; ".join(set_names[guid.lower()]))
        selections: list[_Selection] = []
        for sel in el.findall("PlainTextSelection"):
            sel_label = f"{label} <PlainTextSelection guid='{sel.get('guid')}'>"
            start, end = _int(sel.get("startPosition")), _int(sel.get("endPosition"))
            if start is None or end is None:
                warnings.append(f"{path}: {sel_label}: startPosition/endPosition are not numbers; skipped")
                continue
            if start > end:
                start, end = end, start
            if start < 0 or end > len(text):
                clipped = (max(0, start), min(len(text), end))
                warnings.append(f"{path}: {sel_label}: offsets {start}-{end} run past the source's "
                                f"{len(text):,} characters; clipped to {clipped[0]}-{clipped[1]}")
                start, end = clipped
            if start >= end:
                warnings.append(f"{path}: {sel_label}: selects no text; skipped")
                continue
            codings = []
            for c in sel.findall("Coding"):
                ref = c.find("CodeRef")
                target = (ref.get("targetGUID") or "").strip() if ref is not None else ""
                if not target:
                    warnings.append(f"{path}: {sel_label}: a <Coding> without a <CodeRef>; skipped")
                    continue
                codings.append((target, c.get("creatingUser") or sel.get("creatingUser") or el.get("creatingUser"),
                                c.get("creationDateTime"), [r.get("targetGUID", "") for r in c.findall("NoteRef")],
                                (c.get("guid") or "").strip()))
            selections.append(_Selection(start, end, (sel.get("guid") or "").strip(), codings,
                                         [r.get("targetGUID", "") for r in sel.findall("NoteRef")], sel.get("creatingUser")))
        whole = el.findall("Coding")  # a coding of the whole source
        if whole:
            selections.append(_Selection(0, len(text), guid, [
                ((c.find("CodeRef").get("targetGUID") or "").strip() if c.find("CodeRef") is not None else "",
                 c.get("creatingUser") or el.get("creatingUser"), c.get("creationDateTime"),
                 [r.get("targetGUID", "") for r in c.findall("NoteRef")], (c.get("guid") or "").strip())
                for c in whole], [], el.get("creatingUser")))
        sources.append(_Source(guid, name, text, el.get("creatingUser"), el.get("creationDateTime"), selections,
                               [r.get("targetGUID", "") for r in el.findall("NoteRef")], values))
    for tag, kind in (("Graphs/Graph", "graph"), ("Links/Link", "link"), ("NoteRef", "project note")):
        if root.findall(tag):
            result.not_imported[kind] += len(root.findall(tag))

    # Codes referenced but not defined: made, so no coder's work is dropped.
    undefined: list[_RefiCode] = []
    for src in sources:
        for sel in src.selections:
            for target, *_ in sel.codings:
                if target and target.lower() not in code_guids:
                    rc = _RefiCode(target, f"Undefined code {target.strip('{}')[:8]}",
                                   f"Referenced by codings in {path.name} but not defined in its codebook.", None, [])
                    code_guids[target.lower()] = target
                    undefined.append(rc)
                    warnings.append(f"{path}: <CodeRef targetGUID='{target}'> names a code the codebook does not define; "
                                    f"created it as '{rc.name}'")
    refi_codes += undefined
    return _Parsed(users, user_guid, refi_codes, code_guids, notes, sources)


def import_project(db: sqlite_utils.Database, path: str | Path) -> ImportResult:
    """Import a REFI-QDA project (.qdpx) into a new or empty project, in one transaction.

    Text sources come in with their text exactly, codes with descriptions and colours, users as
    coders, every coded selection as codings by its coder with its exact span (cut to the
    segments it falls in), notes as memos and variables (of sources and of their cases) as
    document attributes. What a qualcode project cannot hold (picture, PDF, audio and video
    sources, graphs, links, sets) is counted in ``not_imported``. A file that cannot be read
    safely raises :class:`RefiError` and leaves the project as it was.
    """
    from .ingest.attributes import KINDS, _DATE, normalise_kind
    from .ingest.segment import looks_like_transcript, paragraphs, speaker_turns
    from .roles import apply_roles

    path = Path(path)
    _check_empty(db, path)
    result = ImportResult(str(path))
    warnings = result.warnings
    archive = Archive(path)
    part = archive.project_file(warnings)
    root = parse_xml(archive.read(part), path, part, PROJECT_NS, warnings)
    if root.tag != "Project":
        raise RefiError(f"{part}: the root element is <{root.tag}>, not <Project>", path)
    sidecar = _read_sidecar(archive, warnings)
    parsed = _parse_project(archive, root, path, result)
    users, user_guid, refi_codes, code_guids = parsed.users, parsed.user_guid, parsed.codes, parsed.code_guids
    notes, sources = parsed.notes, parsed.sources

    # --- writing: one transaction --------------------------------------------------------------
    stamp = now()
    with db.atomic():
        _check_empty(db, path)  # again, now that we hold the write lock
        # Coders.
        coder_of: dict[str, int] = {}
        existing = {r["name"]: r for r in db.query("SELECT id, name, guid FROM coders")}
        by_guid = {r["guid"].lower(): r["id"] for r in existing.values() if r["guid"]}
        names_taken = set(existing)
        for key, name in users.items():
            if key in by_guid:
                coder_of[key] = by_guid[key]
                continue
            if name in existing and not db.execute("SELECT 1 FROM coders WHERE guid = ?", [user_guid[key]]).fetchone():
                coder_of[key] = existing[name]["id"]
                continue
            unique, n = name, 2
            while unique in names_taken:
                unique, n = f"{name} ({n})", n + 1
            if unique != name:
                warnings.append(f"{path}: two users are named '{name}'; the second is coder '{unique}'")
            names_taken.add(unique)
            coder_of[key] = db.execute("INSERT INTO coders (name, created_at, guid) VALUES (?, ?, ?)",
                                       [unique, stamp, user_guid[key]]).lastrowid
            result.coders += 1
        fallback: list[int] = []

        def coder(guid: str | None) -> int:
            key = (guid or "").strip().lower()
            if key and key in coder_of:
                return coder_of[key]
            if key:  # a user referred to but not listed
                name = f"User {key.strip('{}')[:8]}"
                warnings.append(f"{path}: user {guid} is not in <Users>; their work is coder '{name}'")
                row = db.execute("SELECT id FROM coders WHERE name = ?", [name]).fetchone()
                coder_of[key] = row[0] if row else db.execute(
                    "INSERT INTO coders (name, created_at) VALUES (?, ?)", [name, stamp]).lastrowid
                result.coders += 0 if row else 1
                return coder_of[key]
            if not fallback:
                name = "REFI-QDA import"
                warnings.append(f"{path}: some codings name no user; they are coder '{name}'")
                row = db.execute("SELECT id FROM coders WHERE name = ?", [name]).fetchone()
                fallback.append(row[0] if row else db.execute(
                    "INSERT INTO coders (name, created_at) VALUES (?, ?)", [name, stamp]).lastrowid)
                result.coders += 0 if row else 1
            return fallback[0]

        # Codes, a codebook per one the sidecar names (our own export), else one for the file.
        code_id: dict[str, str] = {}
        extra = {k.lower(): v for k, v in (sidecar.get("codes") or {}).items() if isinstance(v, dict)}
        extra_by_guid = {rc_guid: extra.get(rc_guid.lower(), {}) for rc_guid in code_guids.values()}
        books = {b["id"]: b for b in sidecar.get("codebooks") or []
                 if isinstance(b, dict) and isinstance(b.get("id"), str) and re.fullmatch(r"[a-z0-9][a-z0-9_-]*", b["id"])}
        groups: dict[str, list[_RefiCode]] = defaultdict(list)
        default_book = _book_id(root.get("name") or path.stem)
        for rc in refi_codes:
            book = extra_by_guid.get(rc.guid, {}).get("codebook_id")
            groups[book if isinstance(book, str) and book in books else default_book].append(rc)
        for book_id, items in groups.items():
            meta = books.get(book_id, {"name": root.get("name") or path.stem, "version": "",
                                       "description": f"Imported from {path.name}"})
            taken = {r["id"] for r in db.query("SELECT id FROM codes WHERE codebook_id != ?", [book_id])}
            book, guid_of = _build_codebook(items, book_id, str(meta.get("name") or book_id), str(path), taken,
                                            _known_guids(db), extra_by_guid)
            book.version, book.description = str(meta.get("version") or ""), str(meta.get("description") or "")
            sync_codebook(db, book)
            _set_guids(db, "codes", "id", guid_of)
            for cid, g in guid_of.items():
                code_id[g.lower()] = cid
                if extra_by_guid.get(g, {}).get("archived"):
                    db.execute("UPDATE codes SET archived = 1 WHERE id = ?", [cid])
            result.codes += len(guid_of)

        def memo(note_guid: str, document: str | None = None, segment: int | None = None,
                 code: str | None = None) -> None:
            n = notes.get(note_guid.strip().lower())
            if n is None:
                warnings.append(f"{path}: <NoteRef targetGUID='{note_guid}'> names no note; skipped")
                return
            used_notes.add(note_guid.strip().lower())
            taken = db.execute("SELECT 1 FROM memos WHERE guid = ?", [n["guid"]]).fetchone()
            db.execute("INSERT INTO memos (coder_id, document_id, segment_id, code_id, text, created_at, guid) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [coder(n["user"]) if n["user"] else None, document, segment, code, n["text"].strip(),
                        _when(n["created"]) or stamp, None if taken else n["guid"]])
            result.memos += 1

        used_notes: set[str] = set()

        def code_memos(items: list[_RefiCode]) -> None:
            for rc in items:
                for ref in rc.notes:
                    memo(ref, code=code_id[rc.guid.lower()])
                code_memos(rc.children)

        code_memos(refi_codes)

        # Documents and their segments.
        docs_meta = {k.lower(): v for k, v in (sidecar.get("documents") or {}).items() if isinstance(v, dict)}
        explicit = {g.lower() for g in sidecar.get("explicit_spans") or [] if isinstance(g, str)}
        ids_taken = {r[0] for r in db.execute("SELECT id FROM documents")}
        split = 0
        rows: list[tuple] = []
        imported_ids: list[str] = []
        for src in sources:
            meta = docs_meta.get(src.guid.lower(), {})
            sha = hashlib.sha256(src.text.encode("utf-8")).hexdigest()
            wanted = meta.get("id") if isinstance(meta.get("id"), str) and _DOC_ID_RE.match(meta["id"]) else None
            base = wanted or re.sub(r"[^a-z0-9]+", "-", Path(src.name).stem.lower()).strip("-") or "document"
            doc_id, n = base, 2
            while doc_id in ids_taken:
                doc_id, n = f"{base}-{n}", n + 1
            ids_taken.add(doc_id)
            columns: dict[str, Any] = {}
            attributes: dict[str, Any] = {}
            for key, value in src.values.items():
                if key == "kind":
                    kind = normalise_kind(str(value))
                    if kind in KINDS:
                        columns["kind"] = kind
                    else:
                        warnings.append(f"{path}: <TextSource name='{src.name[:60]}'>: kind '{str(value)[:40]}' is not "
                                        f"one of {', '.join(KINDS)}; kept as attribute 'source_kind'")
                        attributes["source_kind"] = value
                elif key == "date":
                    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
                        columns["date"] = value.strip()
                    else:
                        attributes["date_text"] = value
                elif key in ("site", "district", "role"):
                    columns[key] = str(value)
                else:
                    attributes[key] = value
            segs = _sidecar_segments(meta, sha, len(src.text))
            if segs is None:
                made = speaker_turns(src.text) if looks_like_transcript(src.text) else paragraphs(src.text)
                segs = [(s.start, s.end, s.speaker, s.start_time, s.end_time) for s in made]
            if not segs:
                warnings.append(f"{path}: <TextSource name='{src.name[:60]}'> has no text to code")
            taken_guid = db.execute("SELECT 1 FROM documents WHERE guid = ?", [src.guid]).fetchone()
            db.execute(
                """INSERT INTO documents (id, title, kind, site, district, role, date, format, source_path, sha256, text,
                                          word_count, attributes, published, ingested_at, guid)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [doc_id, src.name, columns.get("kind", "document"), columns.get("site"), columns.get("district"),
                 columns.get("role"), columns.get("date"), str(meta.get("format") or "qdpx")[:20],
                 f"{path.name}#{src.name}", sha, src.text, len(src.text.split()),
                 json.dumps(attributes, ensure_ascii=False, default=str), 0 if meta.get("published") in (0, False) else 1,
                 stamp, None if taken_guid else src.guid])
            db.conn.executemany(
                "INSERT INTO segments (document_id, seq, speaker, start_char, end_char, text, start_time, end_time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(doc_id, seq, sp, a, b, src.text[a:b], t0, t1) for seq, (a, b, sp, t0, t1) in enumerate(segs, 1)])
            imported_ids.append(doc_id)
            result.documents += 1
            for ref in src.notes:
                memo(ref, document=doc_id)
            seg_rows = [tuple(r) for r in db.execute(
                "SELECT id, start_char, end_char FROM segments WHERE document_id = ? ORDER BY start_char", [doc_id])]
            ends = [r[2] for r in seg_rows]
            for sel in src.selections:
                first = bisect.bisect_right(ends, sel.start)
                pieces = []
                for seg_id, a, b in seg_rows[first:]:
                    if a >= sel.end:
                        break
                    lo, hi = max(a, sel.start), min(b, sel.end)
                    if lo < hi:
                        pieces.append((seg_id, lo, hi, (lo, hi) == (a, b)))
                if not pieces:
                    warnings.append(f"{path}: <PlainTextSelection guid='{sel.guid}'> in '{src.name[:60]}' covers only "
                                    "space between segments; skipped")
                    continue
                if len(pieces) > 1 and sel.codings and sel.guid != src.guid:  # not a coding of the whole source
                    split += 1
                for target, user, created, refs, coding_guid in sel.codings:
                    cid = code_id.get(target.lower())
                    if cid is None:
                        continue
                    who = coder(user)
                    memo_text = "\n\n".join(notes[r.lower()]["text"].strip() for r in refs if r.lower() in notes) or None
                    used_notes.update(r.lower() for r in refs if r.lower() in notes)
                    for seg_id, lo, hi, whole_segment in pieces:
                        span = (None, None) if whole_segment and coding_guid.lower() not in explicit else (lo, hi)
                        rows.append((seg_id, cid, who, span[0], span[1], "import", memo_text, _when(created) or stamp))
                for ref in sel.notes:
                    memo(ref, segment=pieces[0][0])
        apply_roles(db, imported_ids)  # before the codings, so no excerpt is rewritten for a segment's role
        before = db.execute("SELECT count(*) FROM codings").fetchone()[0]
        with bulk_codings(db):
            db.conn.executemany(
                "INSERT OR IGNORE INTO codings (segment_id, code_id, coder_id, start_char, end_char, origin, memo, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        result.codings = db.execute("SELECT count(*) FROM codings").fetchone()[0] - before
        if len(rows) > result.codings:
            warnings.append(f"{path}: {_n(len(rows) - result.codings, 'coding')} repeated another at the same place "
                            "by the same coder and code; kept once")
        if split:
            warnings.append(f"{path}: {_n(split, 'selection')} crossed segment boundaries; each became one coding per "
                            "segment it covers")
        consensus = [g for g, c in (sidecar.get("coders") or {}).items() if isinstance(c, dict) and c.get("consensus")]
        db.conn.executemany("UPDATE coders SET consensus = 1 WHERE guid = ?", [(g,) for g in consensus])
        unused = set(notes) - used_notes
        if unused:
            result.not_imported["note attached to nothing we import"] += len(unused)
    return result
