"""The codebook: reading and validating the YAML file, and syncing it into a project.

Validation walks PyYAML's node tree rather than the parsed data so that every
problem can be reported as ``FILE:LINE: message``, the way a compiler would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import sqlite_utils
import yaml

from . import safeyaml
from .db import now
from .errors import CodebookError, QualcodeError

CODE_FIELDS = {"id", "name", "definition", "include", "exclude", "examples", "terms", "color", "children",
               "roles", "exclusive"}
TOP_FIELDS = {"name", "version", "description", "codes"}
ID_PART = r"[a-z][a-z0-9_-]*"
ID_RE = re.compile(rf"^{ID_PART}(\.{ID_PART})*$")
MAX_CODEBOOK_BYTES = 2 * 1024 * 1024  # PyYAML reads ~10,000 lines/s; the sample codebook is 30 KB
COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


@dataclass
class Code:
    id: str
    name: str
    definition: str
    include: str = ""
    exclude: str = ""
    examples: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    color: str | None = None
    children: list["Code"] = field(default_factory=list)
    line: int = 0
    #: The speaker roles the code applies to; None: not set here (a sub-code takes its parent's),
    #: [] set empty (no scope, whatever the parent's).
    roles: list[str] | None = None
    exclusive: bool = False  # on a parent: at most one of its sub-codes applies to a segment


@dataclass
class Codebook:
    id: str
    name: str
    version: str
    description: str
    codes: list[Code]
    path: str | None = None

    def walk(self) -> Iterator[tuple[Code, Code | None, int]]:
        """Every code, parents before children, with its parent and depth."""

        def visit(code: Code, parent: Code | None, depth: int) -> Iterator[tuple[Code, Code | None, int]]:
            yield code, parent, depth
            for child in code.children:
                yield from visit(child, code, depth + 1)

        for code in self.codes:
            yield from visit(code, None, 0)


@dataclass
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class SyncResult:
    codebook_id: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)


class _Parser:
    """Turns a YAML node tree into a Codebook, collecting every problem on the way."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.seen: dict[str, int] = {}

    def problem(self, node: yaml.Node, message: str) -> None:
        # One line whatever the YAML held: a quoted value may contain newlines.
        self.problems.append(Problem(self.path, node.start_mark.line + 1, " ".join(message.split())))

    def plain_key(self, key: yaml.Node) -> bool:
        """A field name is one word; YAML also allows a list or mapping as a key."""
        if isinstance(key, yaml.ScalarNode):
            return True
        self.problem(key, f"a field name must be plain text, not a {_kind(key)}")
        return False

    def text(self, node: yaml.Node, name: str) -> str:
        if isinstance(node, yaml.ScalarNode):
            return str(node.value).strip()
        self.problem(node, f"'{name}' must be text, not a {_kind(node)}")
        return ""

    def texts(self, node: yaml.Node, name: str) -> list[str]:
        if isinstance(node, yaml.ScalarNode):
            return [node.value.strip()] if node.value.strip() else []
        if isinstance(node, yaml.SequenceNode):
            items = []
            for item in node.value:
                value = self.text(item, name)
                if value:
                    items.append(value)
            return items
        self.problem(node, f"'{name}' must be a list of text, not a {_kind(node)}")
        return []

    def codebook(self, root: yaml.Node | None, stem: str) -> Codebook | None:
        if root is None:
            self.problems.append(Problem(self.path, 1, "the codebook is empty"))
            return None
        if not isinstance(root, yaml.MappingNode):
            self.problem(root, f"the codebook must be a mapping with 'name' and 'codes', not a {_kind(root)}")
            return None
        values: dict[str, yaml.Node] = {}
        for key, value in root.value:
            if not self.plain_key(key):
                continue
            name = key.value
            if name not in TOP_FIELDS:
                self.problem(key, f"unknown field '{_short(name)}' (allowed: {', '.join(sorted(TOP_FIELDS))})")
            elif name in values:
                self.problem(key, f"field '{_short(name)}' is given twice")
            else:
                values[name] = value
        if "name" not in values:
            self.problem(root, "the codebook has no 'name'")
        if "codes" not in values:
            self.problem(root, "the codebook has no 'codes' list")
        codes = self.codes(values["codes"], None) if "codes" in values else []
        return Codebook(
            id=_slug(stem),
            name=self.text(values["name"], "name") if "name" in values else stem,
            version=self.text(values["version"], "version") if "version" in values else "",
            description=self.text(values["description"], "description") if "description" in values else "",
            codes=codes,
            path=self.path,
        )

    def codes(self, node: yaml.Node, parent: str | None) -> list[Code]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"'codes' and 'children' must be a list of codes, not a {_kind(node)}")
            return []
        return [c for c in (self.code(item, parent) for item in node.value) if c is not None]

    def code(self, node: yaml.Node, parent: str | None) -> Code | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"a code must be a mapping with id, name and definition, not a {_kind(node)}")
            return None
        values: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if not self.plain_key(key):
                continue
            if key.value not in CODE_FIELDS:
                self.problem(key, f"unknown field '{_short(key.value)}' (allowed: {', '.join(sorted(CODE_FIELDS))})")
            elif key.value in values:
                self.problem(key, f"field '{_short(key.value)}' is given twice")
            else:
                values[key.value] = value
        code_id = self.text(values["id"], "id") if "id" in values else ""
        line = node.start_mark.line + 1
        label = f"code '{code_id}'" if code_id else "a code"
        if not code_id:
            self.problem(node, "a code has no 'id'")
        elif not ID_RE.match(code_id):
            self.problem(values["id"], f"id '{_short(code_id)}' is not a dotted slug (lower-case letters, digits, - and _, parts joined by '.')")
        elif parent is None and "." in code_id:
            self.problem(values["id"], f"top-level id '{_short(code_id)}' must not contain '.'")
        elif parent is not None and (not code_id.startswith(parent + ".") or "." in code_id[len(parent) + 1:]):
            self.problem(values["id"], f"id '{_short(code_id)}' must be '{_short(parent)}.<name>' because it is a child of '{_short(parent)}'")
        if code_id and code_id in self.seen:
            self.problem(values["id"], f"duplicate id '{_short(code_id)}' (first defined on line {self.seen[code_id]})")
        elif code_id:
            self.seen[code_id] = line
        for required in ("name", "definition"):
            if required not in values or not self.text(values[required], required):
                where = values.get(required, node)
                self.problem(where, f"{label} has no {required}")
        color = self.text(values["color"], "color") if "color" in values else None
        if color and not COLOR_RE.match(color):
            self.problem(values["color"], f"{label} has a bad colour '{_short(color)}' (use #rrggbb)")
        children = self.codes(values["children"], code_id or "?") if "children" in values else []
        roles = self.roles(values["roles"], label) if "roles" in values else None
        exclusive = self.flag(values["exclusive"], "exclusive", label) if "exclusive" in values else False
        if exclusive and not children:
            self.problem(values["exclusive"], f"{label} is exclusive but has no sub-codes "
                                              "(exclusive: true says at most one of its sub-codes applies)")
        return Code(
            id=code_id,
            name=self.text(values["name"], "name") if "name" in values else "",
            definition=self.text(values["definition"], "definition") if "definition" in values else "",
            include=self.text(values["include"], "include") if "include" in values else "",
            exclude=self.text(values["exclude"], "exclude") if "exclude" in values else "",
            examples=self.texts(values["examples"], "examples") if "examples" in values else [],
            terms=self.texts(values["terms"], "terms") if "terms" in values else [],
            color=color,
            children=children,
            line=line,
            roles=roles,
            exclusive=exclusive,
        )

    def roles(self, node: yaml.Node, label: str) -> list[str]:
        """``roles: [participant, teacher]`` (or one role alone): speaker role names."""
        from .roles import normalise_role

        if isinstance(node, yaml.ScalarNode):
            items = [node] if node.value.strip() else []
        elif isinstance(node, yaml.SequenceNode):
            items = node.value
        else:
            self.problem(node, f"'roles' of {label} must be a list of role names, not a {_kind(node)}")
            return []
        roles: list[str] = []
        for item in items:
            if not isinstance(item, yaml.ScalarNode):
                self.problem(item, f"'roles' of {label} must list role names, not a {_kind(item)}")
                continue
            try:
                role = normalise_role(item.value)
            except QualcodeError as e:
                self.problem(item, f"'roles' of {label}: {e.message}" + (f" — {e.hint}" if e.hint else ""))
                continue
            if role in roles:
                self.problem(item, f"'roles' of {label} names '{role}' twice")
            else:
                roles.append(role)
        return roles

    def flag(self, node: yaml.Node, name: str, label: str) -> bool:
        value = node.value.strip().lower() if isinstance(node, yaml.ScalarNode) else None
        if value in ("true", "yes", "on"):
            return True
        if value in ("false", "no", "off"):
            return False
        shown = f"'{_short(node.value)}'" if isinstance(node, yaml.ScalarNode) else f"a {_kind(node)}"
        self.problem(node, f"'{name}' of {label} must be true or false, not {shown}")
        return False


def _short(value: object, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(node: yaml.Node) -> str:
    return {yaml.ScalarNode: "single value", yaml.SequenceNode: "list", yaml.MappingNode: "mapping"}[type(node)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "codebook"


def parse_codebook(path: str | Path) -> tuple[Codebook | None, list[Problem]]:
    """Read a codebook file and return it with every problem found in it."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_CODEBOOK_BYTES:
            return None, [Problem(str(path), 0, f"the file is larger than {MAX_CODEBOOK_BYTES // 2**20} MB; "
                                                "a codebook is a few hundred KB at most")]
        data = path.read_bytes()
        source = data.decode("utf-8-sig")
    except FileNotFoundError:
        return None, [Problem(str(path), 0, "no such file")]
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        return None, [Problem(str(path), line, f"cannot be read as UTF-8 text (byte 0x{data[e.start]:02x})")]
    except OSError as e:
        return None, [Problem(str(path), 0, f"cannot be read ({e.__class__.__name__})")]
    parser = _Parser(str(path))
    try:
        root = safeyaml.compose(source)
    except safeyaml.YamlLimit as e:
        return None, [Problem(str(path), e.line, e.message)]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(e, "problem", None) or str(e)
        return None, [Problem(str(path), line, f"YAML syntax error: {reason}")]
    codebook = parser.codebook(root, path.stem)
    return codebook, parser.problems


def validate_codebook(path: str | Path) -> list[Problem]:
    """Every problem in a codebook file; an empty list means it is valid."""
    return parse_codebook(path)[1]


def load_codebook(path: str | Path) -> Codebook:
    """Read a valid codebook, or raise :class:`CodebookError` naming the first problem."""
    codebook, problems = parse_codebook(path)
    if problems or codebook is None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CodebookError(
            first.message + more,
            first.path,
            first.line or None,
            hint="run `qualcode codebook validate` to see every problem",
        )
    return codebook


def _row(code: Code, codebook: Codebook, parent: Code | None, lesson: str, depth: int, order: int,
         roles: list[str] | None = None) -> dict:
    return {
        "id": code.id,
        "codebook_id": codebook.id,
        "parent_id": parent.id if parent else None,
        "lesson_id": lesson,
        "depth": depth,
        "name": code.name,
        "definition": code.definition,
        "include": code.include,
        "exclude": code.exclude,
        "examples": json.dumps(code.examples, ensure_ascii=False),
        "terms": json.dumps(code.terms, ensure_ascii=False),
        "color": code.color,
        "sort_order": order,
        "archived": 0,
        "roles": json.dumps(roles, ensure_ascii=False) if roles else None,
        "exclusive": int(code.exclusive),
    }


COMPARED = ("codebook_id", "parent_id", "lesson_id", "depth", "name", "definition", "include",
            "exclude", "examples", "terms", "color", "sort_order", "archived", "roles", "exclusive")


def sync_codebook(db: sqlite_utils.Database, codebook: Codebook, force: bool = False) -> SyncResult:
    """Make the project's codes match the codebook, in one transaction.

    Codes are updated in place so codings keep pointing at them. A code that
    left the file is deleted only when nobody has used it; otherwise the sync is
    refused (coders' work would be orphaned) unless ``force``, which archives it.
    """
    result = SyncResult(codebook.id)
    rows, lesson_of, roles_of = [], {}, {}
    for order, (code, parent, depth) in enumerate(codebook.walk()):
        lesson_of[code.id] = lesson_of[parent.id] if parent else code.id
        # A sub-code's scope is its parent's unless it names its own: stored as it applies.
        roles_of[code.id] = code.roles if code.roles is not None else (roles_of[parent.id] if parent else None)
        rows.append(_row(code, codebook, parent, lesson_of[code.id], depth, order, roles_of[code.id]))
    wanted = {r["id"] for r in rows}
    existing = {r["id"]: r for r in db.query("SELECT * FROM codes")}
    foreign = [r["id"] for r in rows if r["id"] in existing and existing[r["id"]]["codebook_id"] != codebook.id]
    if foreign:
        raise CodebookError(
            f"code '{foreign[0]}' already belongs to codebook '{existing[foreign[0]]['codebook_id']}'",
            codebook.path,
            hint="give the code another id, or load the codebook under the same file name",
        )
    gone = [cid for cid, r in existing.items() if r["codebook_id"] == codebook.id and cid not in wanted]
    used = {}
    for cid in gone:
        n = db.execute("SELECT count(*) FROM codings WHERE code_id = ?", [cid]).fetchone()[0]
        n_memos = db.execute("SELECT count(*) FROM memos WHERE code_id = ?", [cid]).fetchone()[0]
        if n or n_memos:
            used[cid] = (n, n_memos)
    if used and not force:
        total = sum(n for n, _ in used.values())
        names = ", ".join(f"{cid} ({n} codings)" for cid, (n, _) in sorted(used.items()))
        raise CodebookError(
            f"removing {len(used)} code(s) would orphan {total} codings: {names}",
            codebook.path,
            hint="put the code(s) back, merge them into another code, or use --force to archive them",
        )
    stamp = now()
    with db.atomic():
        db.execute(
            """INSERT INTO codebooks (id, name, version, description, source_path, loaded_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET name = excluded.name, version = excluded.version,
                 description = excluded.description, source_path = excluded.source_path,
                 loaded_at = excluded.loaded_at""",
            [codebook.id, codebook.name, codebook.version, codebook.description, codebook.path, stamp],
        )
        for row in rows:
            old = existing.get(row["id"])
            if old is None:
                db.execute(
                    f"INSERT INTO codes ({', '.join(row)}, updated_at) VALUES ({', '.join('?' * len(row))}, ?)",
                    [*row.values(), stamp],
                )
                result.added.append(row["id"])
                continue
            if all(old[k] == row[k] for k in COMPARED):
                result.unchanged.append(row["id"])
                continue
            assignments = ", ".join(f"{k} = ?" for k in row if k != "id")
            db.execute(
                f"UPDATE codes SET {assignments}, updated_at = ? WHERE id = ?",
                [*(v for k, v in row.items() if k != "id"), stamp, row["id"]],
            )
            (result.restored if old["archived"] else result.updated).append(row["id"])
        # Children before parents, so no parent is deleted while a child points at it.
        for cid in sorted(gone, key=lambda c: -existing[c]["depth"]):
            if cid in used:
                if not existing[cid]["archived"]:
                    db.execute("UPDATE codes SET archived = 1, updated_at = ? WHERE id = ?", [stamp, cid])
                    result.archived.append(cid)
            else:
                db.execute("DELETE FROM suggestions WHERE code_id = ?", [cid])
                db.execute("UPDATE codes SET parent_id = NULL WHERE parent_id = ?", [cid])
                db.execute("DELETE FROM codes WHERE id = ?", [cid])
                result.deleted.append(cid)
    return result


def project_codes(db: sqlite_utils.Database, include_archived: bool = False) -> list[dict]:
    """The project's codes in codebook order, with how often each has been applied."""
    where = "" if include_archived else "WHERE c.archived = 0"
    return list(
        db.query(
            f"""SELECT c.*, (SELECT count(*) FROM codings g WHERE g.code_id = c.id) AS n_codings
                FROM codes c {where} ORDER BY c.codebook_id, c.sort_order"""
        )
    )


# --- code maintenance: rename, move, merge ------------------------------------------------------


@dataclass
class MaintenanceResult:
    renamed: dict[str, str] = field(default_factory=dict)  # old id -> new id
    codings_moved: int = 0
    codings_collapsed: int = 0
    suggestions_moved: int = 0
    memos_moved: int = 0


def _code(db: sqlite_utils.Database, code_id: str) -> dict:
    row = next(db.query("SELECT * FROM codes WHERE id = ?", [code_id]), None)
    if row is None:
        raise CodebookError(f"unknown code '{code_id}'", hint="see `qualcode codebook show` for the codes")
    return row


def _descendants(db: sqlite_utils.Database, code_id: str) -> list[dict]:
    """The code and everything under it, parents first."""
    return list(db.query(
        """WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL SELECT c.id FROM codes c JOIN tree t ON c.parent_id = t.id)
           SELECT codes.* FROM codes JOIN tree USING (id) ORDER BY depth""", [code_id]))


def _rehome(db: sqlite_utils.Database, code_id: str, new_id: str, new_parent: str | None) -> MaintenanceResult:
    """Give a code (and its sub-codes) a new id and parent, carrying every reference along."""
    if not ID_RE.match(new_id):
        raise CodebookError(f"'{new_id}' is not a dotted slug", hint="use lower-case letters, digits, - and _, parts joined by '.'")
    expected_prefix = f"{new_parent}." if new_parent else ""
    if new_parent and not (new_id.startswith(expected_prefix) and "." not in new_id[len(expected_prefix):]):
        raise CodebookError(f"'{new_id}' must be '{new_parent}.<name>' under '{new_parent}'")
    if not new_parent and "." in new_id:
        raise CodebookError(f"top-level id '{new_id}' must not contain '.'")
    tree = _descendants(db, code_id)
    if new_parent and new_parent in {c["id"] for c in tree}:
        raise CodebookError(f"cannot move '{code_id}' under its own sub-code '{new_parent}'")
    mapping = {c["id"]: new_id + c["id"][len(code_id):] for c in tree}
    clash = [n for o, n in mapping.items() if n != o and next(db.query("SELECT 1 FROM codes WHERE id = ?", [n]), None)]
    if clash:
        raise CodebookError(f"code '{clash[0]}' already exists", hint="choose another id, or merge the two codes")
    parent_depth = _code(db, new_parent)["depth"] if new_parent else -1
    base_depth = tree[0]["depth"]
    lesson = (_code(db, new_parent)["lesson_id"] if new_parent else new_id)
    result = MaintenanceResult(renamed={o: n for o, n in mapping.items() if o != n})
    stamp = now()
    with db.atomic():
        for c in tree:  # parents first, so each new parent exists before its children
            row = dict(c)
            row["id"] = mapping[c["id"]]
            row["parent_id"] = new_parent if c["id"] == code_id else mapping[c["parent_id"]]
            row["depth"] = parent_depth + 1 + (c["depth"] - base_depth)
            row["lesson_id"] = lesson
            row["updated_at"] = stamp
            if "guid" in row:  # the GUID moves with the code (REFI-QDA exchange): the old row gives it up first
                db.execute("UPDATE codes SET guid = NULL WHERE id = ?", [c["id"]])
            db.execute(f"INSERT INTO codes ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        for old, new in mapping.items():
            for table in ("codings", "suggestions", "memos"):
                db.execute(f"UPDATE {table} SET code_id = ? WHERE code_id = ?", [new, old])
        for c in reversed(tree):
            db.execute("DELETE FROM codes WHERE id = ?", [c["id"]])
        _renumber(db, tree[0]["codebook_id"], last=new_id if new_parent != tree[0]["parent_id"] else None)
    return result


def _renumber(db: sqlite_utils.Database, codebook_id: str, last: str | None = None) -> None:
    """Number a codebook's codes in tree order (parents before children, siblings in their order).

    ``sort_order`` is one sequence for the whole tree, so a code moved to a new parent must be
    numbered again inside that parent, or every reader of the order (`show`, `dump`, exports) would
    still place it under its old one. A moved code (``last``) goes after its new siblings.
    """
    rows = list(db.query("SELECT id, parent_id, sort_order FROM codes WHERE codebook_id = ?", [codebook_id]))
    children: dict[str | None, list[dict]] = {}
    for row in rows:
        children.setdefault(row["parent_id"], []).append(row)
    order: list[str] = []

    def walk(parent: str | None) -> None:
        for row in sorted(children.get(parent, []), key=lambda r: (r["id"] == last, r["sort_order"])):
            order.append(row["id"])
            walk(row["id"])

    walk(None)
    db.conn.executemany("UPDATE codes SET sort_order = ? WHERE id = ?", list(enumerate(order)))


def rename_code(db: sqlite_utils.Database, code_id: str, new_id: str | None = None, name: str | None = None) -> MaintenanceResult:
    """Rename a code's id (its sub-codes follow) and/or its display name."""
    code = _code(db, code_id)
    result = MaintenanceResult()
    if new_id and new_id != code_id:
        result = _rehome(db, code_id, new_id, code["parent_id"])
    if name:
        with db.atomic():
            db.execute("UPDATE codes SET name = ?, updated_at = ? WHERE id = ?", [name, now(), new_id or code_id])
    return result


def move_code(db: sqlite_utils.Database, code_id: str, parent: str | None) -> MaintenanceResult:
    """Move a code under another parent (or to the top level); its id follows the new parent."""
    _code(db, code_id)  # refuse an unknown code before touching anything
    if parent:
        _code(db, parent)
    leaf = code_id.rsplit(".", 1)[-1]
    if _code(db, code_id)["parent_id"] == parent:
        return MaintenanceResult()  # already there
    return _rehome(db, code_id, f"{parent}.{leaf}" if parent else leaf, parent)


def merge_codes(db: sqlite_utils.Database, source: str, target: str) -> MaintenanceResult:
    """Merge ``source`` into ``target``: codings, suggestions and memos move; duplicates collapse."""
    src, dst = _code(db, source), _code(db, target)
    if source == target:
        raise CodebookError("a code cannot be merged into itself")
    if next(db.query("SELECT 1 FROM codes WHERE parent_id = ?", [source]), None):
        raise CodebookError(f"'{source}' has sub-codes", hint="move or merge its sub-codes first")
    result = MaintenanceResult()
    with db.atomic():
        total = db.execute("SELECT count(*) FROM codings WHERE code_id = ?", [source]).fetchone()[0]
        result.codings_moved = db.execute(
            "UPDATE OR IGNORE codings SET code_id = ? WHERE code_id = ?", [dst["id"], source]).rowcount
        result.codings_collapsed = total - result.codings_moved
        db.execute("DELETE FROM codings WHERE code_id = ?", [source])  # the duplicates left behind
        result.suggestions_moved = db.execute(
            "UPDATE suggestions SET code_id = ? WHERE code_id = ?", [dst["id"], source]).rowcount
        result.memos_moved = db.execute("UPDATE memos SET code_id = ? WHERE code_id = ?", [dst["id"], source]).rowcount
        db.execute("DELETE FROM codes WHERE id = ?", [src["id"]])
    return result


def dump_codebook(db: sqlite_utils.Database, codebook_id: str | None = None) -> str:
    """The project's codebook as YAML, so edits made in the project can go back into the file."""
    books = list(db.query("SELECT * FROM codebooks" + (" WHERE id = ?" if codebook_id else "") + " ORDER BY id",
                          [codebook_id] if codebook_id else []))
    if not books:
        raise CodebookError("the project has no codebook" if not codebook_id else f"no codebook '{codebook_id}'")
    book = books[0]
    rows = list(db.query("SELECT * FROM codes WHERE codebook_id = ? AND archived = 0 ORDER BY sort_order", [book["id"]]))
    nodes: dict[str, dict] = {}
    roles_of: dict[str, list[str]] = {}
    top: list[dict] = []
    known = {r["id"] for r in rows}
    rows.sort(key=lambda r: (r["depth"], r["sort_order"]))  # every parent's node exists before its children
    for r in rows:
        node = {"id": r["id"], "name": r["name"], "definition": r["definition"]}
        for key in ("include", "exclude"):
            if r[key]:
                node[key] = r[key]
        for key in ("examples", "terms"):
            values = json.loads(r[key])
            if values:
                node[key] = values
        if r["color"]:
            node["color"] = r["color"]
        roles = json.loads(r["roles"]) if r.get("roles") else []
        parent_roles = roles_of.get(r["parent_id"], [])
        if roles != parent_roles:  # inherited scopes are written once, on the code that sets them
            node["roles"] = roles
        roles_of[r["id"]] = roles
        if r.get("exclusive"):
            node["exclusive"] = True
        nodes[r["id"]] = node
        if r["parent_id"] in known:
            nodes[r["parent_id"]].setdefault("children", []).append(node)
        else:
            top.append(node)
    data = {"name": book["name"], "version": book["version"] or "", "description": book["description"] or "", "codes": top}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


#: Codebooks shipped with qualcode, loadable by name from any folder.
PACKAGED = Path(__file__).with_name("codebooks")


def packaged_codebooks() -> list[str]:
    return sorted(p.stem for p in PACKAGED.glob("*.yml"))


def resolve_codebook(ref: str | Path) -> Path:
    """A codebook file from a path, or from the name of one that qualcode ships (``lessons``).

    A path that exists wins; otherwise a bare name is looked up among the packaged codebooks.
    """
    path = Path(ref)
    if path.exists():
        return path
    packaged = PACKAGED / f"{path.stem if path.suffix in ('.yml', '.yaml') else path.name}.yml"
    if path.parent == Path(".") and packaged.is_file():
        return packaged
    raise CodebookError(
        f"no such codebook: looked for the file {path.resolve()} and for a packaged codebook named '{path.stem}'",
        path, hint=f"give the path of a YAML codebook, or one of the packaged names: {', '.join(packaged_codebooks())}",
    )
