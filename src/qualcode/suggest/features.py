"""Turning segments into sparse feature vectors, fast, and explaining them in words.

scikit-learn's TfidfVectorizer re-tokenises every word of every segment in
Python and builds character n-grams afresh each time; here each distinct word
is analysed once and cached (word unigram plus its character n-grams), so the
per-token cost is one dict lookup. That is what lets scoring run at tens of
thousands of segments a second.

A coder reads more than words, so the features do too: question marks and
sentence-final punctuation, negation, quoted speech and numbers are tokens of
their own, and a turn is read in its conversation — who speaks (the speaker's
role), whether the speaker changed, whether the turn answers a question, and
how much of the previous speaker's turn it repeats (exactly, in part, or with
words added). A linear model over the words of two turns cannot see "this
repeats what was just said"; an overlap feature can.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|[?!]")
QUOTED = re.compile(r"[\"“][^\"“”]{3,}[\"”]|(?:^|\s)'[^']{3,}'(?=[\s,.?!]|$)")
DIGIT = re.compile(r"\d")
NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred "
    "thousand half third quarter percent".split())
NEGATIONS = frozenset("not no never nobody nothing none neither nor cannot without".split())
STOP = frozenset(
    "a an the and or but so of to in on at for with by from as is are was were be been it its this that these "
    "those i you he she we they me him her us them my your our their what which who do does did have has had "
    "just like really very um uh yeah yes ok okay well there here about into than then".split())

# Block weights, chosen by grouped 5-fold cross-validation. On the lessons corpus the
# codebook similarity block helps most at weight 3 and the previous turn costs precision
# above 0.2. The conversation block at 0.3 is the best of 0, 0.3 and 1 over both corpora
# (macro-F1 lessons 0.423 / 0.419 / 0.410, facilitation 0.925 / 0.926 / 0.923).
PREVIOUS_WEIGHT = 0.2
ROLE_WEIGHT = 0.3
CONTEXT_WEIGHT = 0.3
PROTOTYPE_WEIGHT = 3.0
#: Above this many training segments, words and bigrams carry the signal and character
#: n-grams only cost: they are 80% of the matrix (time and memory) and add nothing measurable.
CHAR_NGRAM_ROWS = 50_000

#: The conversation features, in column order, and how evidence names them.
CONTEXT = {
    "first turn": "the first turn of the document",
    "speaker changed": "a new speaker",
    "same speaker": "the same speaker goes on",
    "answers a question": "follows a question",
    "names the previous speaker": "names the previous speaker",
    "repeats exactly": "repeats the previous speaker's turn",
    "repeats in part": "repeats a phrase of the previous speaker's turn",
    "repeats words, adds more": "repeats the previous speaker's words and adds more",
    "shares some words": "shares words with the previous speaker's turn",
    "shares no words": "shares no words with the previous speaker's turn",
    "repeated share": "words of the previous speaker's turn repeated",
    "short turn": "a short turn",
}


@dataclass
class Item:
    """What the model sees of a segment."""

    text: str
    document: str = ""
    seq: int = 0
    role: str = ""  # the document's participant role
    speaker: str = ""
    speaker_role: str = ""


def tokens(text: str) -> list[str]:
    return WORD.findall(text.lower())


def signals(text: str, words: list[str]) -> list[str]:
    """What a coder reads besides the words: how the turn ends, negation, quotes, numbers, its opening."""
    out = []
    end = text.rstrip()[-1:]
    out.append({"?": "s:ends with ?", "!": "s:ends with !", ".": "s:ends with ."}.get(end, "s:no final stop"))
    unique = set(words)
    if "?" in unique:
        out.append("s:asks")
    if not NEGATIONS.isdisjoint(unique) or "n't" in text or "n’t" in text:
        out.append("s:negation")
    if ('"' in text or "“" in text or " '" in text or text.startswith("'")) and QUOTED.search(text):
        out.append("s:quotes")
    if not NUMBER_WORDS.isdisjoint(unique) or DIGIT.search(text):
        out.append("s:number")
    content = [w for w in words if w != "?" and w != "!"]
    if content:
        out.append("s:opens " + content[0])
        if len(content) > 1:
            out.append(f"s:opens {content[0]} {content[1]}")
    n = len(content)
    out.append("s:length " + ("1-3" if n <= 3 else "4-8" if n <= 8 else "9-20" if n <= 20 else "21-50" if n <= 50 else "51+"))
    return out


def content_words(words: list[str]) -> list[str]:
    return [w for w in words if w not in STOP and len(w) > 2]


def relation(words: list[str], text: str, previous: list[str] | None, previous_text: str,
             same_speaker: bool | None, previous_speaker: str, mine: list[str] | None = None,
             theirs: list[str] | None = None) -> dict[str, float]:
    """How a turn relates to the previous other speaker's turn (the conversation block).

    ``mine`` and ``theirs`` are the two turns' content words, when the caller has them."""
    out: dict[str, float] = {}
    if previous is None:
        out["first turn"] = 1.0
        return out
    out["same speaker" if same_speaker else "speaker changed"] = 1.0
    if "?" in previous or previous_text.rstrip().endswith("?"):
        out["answers a question"] = 1.0
    if previous_speaker:
        first = previous_speaker.split()[0].lower()
        if len(first) > 1 and first in words:
            out["names the previous speaker"] = 1.0
    mine = content_words(words) if mine is None else mine
    theirs_set = set(content_words(previous) if theirs is None else theirs)
    if len(words) - words.count("?") - words.count("!") <= 3:
        out["short turn"] = 1.0
    if not mine or not theirs_set:
        return out
    shared = sum(1 for w in mine if w in theirs_set) / len(mine)
    if shared == 0:
        out["shares no words"] = 1.0
        out["repeated share"] = 0.0
        return out
    covered = len(theirs_set.intersection(mine)) / len(theirs_set)
    if shared >= 0.8 and covered >= 0.5:
        out["repeats exactly"] = 1.0
    elif _shares_phrase(words, previous):
        out["repeats in part"] = 1.0
    elif shared >= 0.3:
        out["repeats words, adds more"] = 1.0
    else:
        out["shares some words"] = 1.0
    out["repeated share"] = covered
    return out


def _shares_phrase(words: list[str], previous: list[str]) -> bool:
    """Whether the two turns share three words in a row."""
    grams = {tuple(previous[i : i + 3]) for i in range(len(previous) - 2)}
    return any(tuple(words[i : i + 3]) in grams for i in range(len(words) - 2))


class Featurizer:
    def __init__(self, min_df: int = 2, char: tuple[int, int] | None = (3, 5), max_df: float = 0.5) -> None:
        self.min_df = min_df
        self.char = char
        self.max_df = max_df
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.idf: np.ndarray | None = None
        self._cache: dict[str, np.ndarray] = {}
        self.roles: dict[str, int] = {}
        self.speaker_roles: dict[str, int] = {}
        self.prototypes: list[str] = []
        self.prototype_matrix: sp.csr_matrix | None = None

    def _word_features(self, word: str) -> list[str]:
        grams = [f"w:{word}"]
        if self.char is None or word in "?!":
            return grams
        padded = f"<{word}>"
        lo, hi = self.char
        for n in range(lo, hi + 1):
            grams.extend("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
        return grams

    def _row_terms(self, text: str, words: list[str]) -> list[str]:
        """The features of a segment other than its words' own: bigrams and signals."""
        return [f"b:{a} {b}" for a, b in zip(words, words[1:])] + signals(text, words)

    def fit(self, items: list[Item], prototypes: dict[str, str] | None = None) -> "Featurizer":
        """Learn the vocabulary and IDF weights.

        Document frequencies are counted for words, bigrams and signals; a
        character n-gram's is the sum over the words that contain it (capped at
        the number of segments), which costs one pass over the distinct words
        instead of one per segment and ranks n-grams the same way.
        """
        word_df: dict[str, int] = {}
        term_df: dict[str, int] = {}
        for item in items:
            words = tokens(item.text)
            for word in set(words):
                word_df[word] = word_df.get(word, 0) + 1
            for term in set(self._row_terms(item.text, words)):
                term_df[term] = term_df.get(term, 0) + 1
        n = len(items)
        df: dict[str, int] = dict(term_df)
        for word, count in word_df.items():
            grams = self._word_features(word)
            df[grams[0]] = count
            for gram in set(grams[1:]):
                df[gram] = min(n, df.get(gram, 0) + count)
        # Signals are kept however common they are: "ends with ?" is in half the turns and still decisive.
        kept = sorted(name for name, count in df.items()
                      if count >= self.min_df and (count <= self.max_df * n or name.startswith("s:")))
        self.names = kept
        self.index = {name: i for i, name in enumerate(kept)}
        self.idf = np.log((1 + n) / (1 + np.array([df[name] for name in kept], dtype=float))) + 1.0
        self._cache = {}
        self.roles = {role: i for i, role in enumerate(sorted({it.role for it in items if it.role}))}
        self.speaker_roles = {r: i for i, r in enumerate(sorted({it.speaker_role for it in items if it.speaker_role}))}
        # Each code's definition, rules, examples and terms as one text: a segment's
        # similarity to it carries the codebook's knowledge into the model, which
        # matters most for codes with few coded examples.
        self.prototypes = list(prototypes or {})
        self.prototype_matrix = self._text_matrix(list((prototypes or {}).values())) if prototypes else None
        return self

    def _ids(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            ids = [self.index[g] for g in self._word_features(word) if g in self.index]
            if len(self._cache) < 500_000:
                self._cache[word] = ids
        return ids

    def _text_matrix(self, texts: list[str], split: list[list[str]] | None = None) -> sp.csr_matrix:
        flat = array("i")  # compact: a Python list of ints costs 36 bytes an entry
        indptr = [0]
        get = self.index.get
        ids = self._ids
        for i, text in enumerate(texts):
            words = split[i] if split is not None else tokens(text)
            for w in words:
                flat.extend(ids(w))
            for t in self._row_terms(text, words):
                j = get(t)
                if j is not None:
                    flat.append(j)
            indptr.append(len(flat))
        cols = np.frombuffer(flat, dtype=np.int32) if len(flat) else np.empty(0, dtype=np.int32)
        matrix = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), cols, np.array(indptr)),
                               shape=(len(texts), len(self.names)))
        matrix.sum_duplicates()
        np.log1p(matrix.data, out=matrix.data)  # sublinear term frequency
        matrix = matrix @ sp.diags(self.idf.astype(np.float32))
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ matrix)

    @staticmethod
    def previous_rows(items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
        """For each item, the row of the segment just before it (-1 if none) and of the last
        turn by another speaker within three segments (-1 if none). Items come in document order."""
        n = len(items)
        before = np.full(n, -1)
        other = np.full(n, -1)
        if n < 2:
            return before, other
        documents = np.array([it.document for it in items], dtype=object)
        seqs = np.array([it.seq for it in items])
        codes = {}
        speakers = np.array([codes.setdefault(it.speaker, len(codes)) if it.speaker else -1 for it in items])
        follows = np.zeros(n, dtype=bool)
        follows[1:] = (documents[1:] == documents[:-1]) & (seqs[1:] == seqs[:-1] + 1)
        before[follows] = np.flatnonzero(follows) - 1
        # Walk back up to three rows while still in the same run of consecutive segments.
        run = np.cumsum(~follows)
        pending = follows.copy()
        for back in range(1, 4):
            k = np.arange(n) - back
            valid = pending & (k >= 0)
            valid[valid] &= run[k[valid]] == run[valid]
            hit = valid & ((speakers[np.maximum(k, 0)] != speakers) | (speakers == -1))
            other[hit] = k[hit]
            pending &= ~hit
        return before, other

    def context(self, items: list[Item], split: list[list[str]],
                rows: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict[str, float]]:
        before, other = rows if rows is not None else self.previous_rows(items)
        content = [content_words(words) for words in split]
        out = []
        for i, item in enumerate(items):
            k = other[i] if other[i] >= 0 else before[i]
            if k < 0:
                out.append(relation(split[i], item.text, None, "", None, ""))
                continue
            same = bool(item.speaker) and items[before[i]].speaker == item.speaker
            out.append(relation(split[i], item.text, split[k], items[k].text, same, items[k].speaker,
                                content[i], content[k]))
        return out

    def transform(self, items: list[Item], neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> sp.csr_matrix:
        """[text | previous segment | document role | speaker role | previous speaker role |
        conversation | codebook similarity]. ``neighbours``: :meth:`previous_rows` of ``items``,
        when the caller has them already."""
        split = [tokens(item.text) for item in items]
        own = self._text_matrix([item.text for item in items], split)
        # The previous segment is the row above: reuse its vector instead of tokenising it again.
        neighbours = self.previous_rows(items) if neighbours is None else neighbours
        before = neighbours[0]
        rows = np.flatnonzero(before >= 0)
        shift = sp.csr_matrix((np.full(len(rows), PREVIOUS_WEIGHT, dtype=np.float32), (rows, before[rows])),
                              shape=(len(items), len(items)))
        previous = shift @ own
        role = self._one_hot([it.role for it in items], self.roles, ROLE_WEIGHT)
        speaker_role = self._one_hot([it.speaker_role for it in items], self.speaker_roles, ROLE_WEIGHT)
        previous_role = self._one_hot([items[k].speaker_role if k >= 0 else "" for k in before],
                                      self.speaker_roles, ROLE_WEIGHT)
        columns = {name: j for j, name in enumerate(CONTEXT)}
        data, cols, indptr = [], [], [0]
        for found in self.context(items, split, neighbours):
            for name, value in found.items():
                cols.append(columns[name])
                data.append(value * CONTEXT_WEIGHT)
            indptr.append(len(cols))
        context = sp.csr_matrix((np.array(data, dtype=np.float32), np.array(cols, dtype=np.int32), np.array(indptr)),
                                shape=(len(items), len(CONTEXT)))
        blocks = [own, previous, role, speaker_role, previous_role, context]
        if self.prototype_matrix is not None:
            blocks.append(sp.csr_matrix(own @ self.prototype_matrix.T) * PROTOTYPE_WEIGHT)
        return sp.hstack(blocks, format="csr")

    @staticmethod
    def _one_hot(values: list[str], index: dict[str, int], weight: float) -> sp.csr_matrix:
        hits = [index[v] for v in values if v in index]
        indptr = np.concatenate([[0], np.cumsum([1 if v in index else 0 for v in values])])
        return sp.csr_matrix((np.full(len(hits), weight, dtype=np.float32), hits, indptr),
                             shape=(len(values), max(len(index), 1)))

    def feature_names(self) -> list[str]:
        def names(prefix: str, index: dict[str, int]) -> list[str]:
            return [f"{prefix}{r}" for r in sorted(index, key=index.get)] or [prefix]

        return (self.names + [f"previous:{n}" for n in self.names] + names("role:", self.roles)
                + names("speaker role:", self.speaker_roles) + names("previous role:", self.speaker_roles)
                + [f"x:{name}" for name in CONTEXT] + [f"codebook:{c}" for c in self.prototypes])

    def explain(self, item: Item, previous: Item | None, row: sp.csr_matrix, weights: np.ndarray,
                code: str, top: int = 6) -> list[str]:
        """The words, phrases and signals that pushed one segment's score for one code up most.

        Character n-grams are credited to the words of the segment that contain them, so a
        coder sees "coaching", never "…oach…"."""
        names = self.feature_names()
        row = row.tocsr()
        contribution = dict(zip(row.indices.tolist(), (row.data * weights[row.indices]).tolist()))
        n = len(self.names)
        scored: dict[str, float] = {}

        def credit(words: list[str], offset: int, prefix: str) -> None:
            for word in dict.fromkeys(words):
                if word in "?!":
                    continue
                total = sum(contribution.get(int(i) + offset, 0.0) for i in self._ids(word))
                if total:
                    scored[prefix + word] = scored.get(prefix + word, 0.0) + total

        credit(tokens(item.text), 0, "")
        if previous is not None:
            credit(tokens(previous.text), n, "previous turn: ")
        for i, value in contribution.items():
            name = names[i]
            if i < 2 * n:
                base = name[len("previous:"):] if i >= n else name
                kind, _, text = base.partition(":")
                if kind in ("b", "s"):
                    label = text if kind == "b" else text.replace("ends with ?", "a question (?)")
                    scored[("previous turn: " if i >= n else "") + label] = value
            elif name.startswith("x:"):
                label = CONTEXT[name[2:]]
                scored[label] = value
            elif name == f"codebook:{code}":
                scored[f"close to the codebook's {code}"] = value
            elif name.startswith(("speaker role:", "previous role:")):
                kind, _, value_name = name.partition(":")
                scored[f"{'spoken by' if kind == 'speaker role' else 'after'} a {value_name}"] = value
        ranked = sorted((v, k) for k, v in scored.items() if v > 0)
        return [k for v, k in reversed(ranked)][:top]
