"""Suggestions from the codebook alone: its terms and examples matched on lemmas.

This works from the first minute, before anyone has coded anything. Terms are
matched as phrases with spaCy's PhraseMatcher on lemmas ("co-planned" finds
"co-plan", "meetings" finds "meeting"); examples contribute the pairs of
content words they contain, at half weight, so an example such as "she sat
with me and planned the lesson" teaches "plan lesson" without requiring the
whole sentence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from spacy.matcher import PhraseMatcher

from ..nlp import get_nlp

TERM_WEIGHT = 1.0
EXAMPLE_WEIGHT = 0.5


@dataclass
class LexiconHit:
    score: float
    evidence: list[str]  # the matched words, as written in the segment


class Lexicon:
    def __init__(self, codes: list[dict]) -> None:
        """``codes``: dicts with ``id``, ``terms`` and ``examples`` (lists of text)."""
        self.nlp = get_nlp()
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        self.weight: dict[str, float] = {}
        self.codes = [c["id"] for c in codes]
        for code in codes:
            terms = [t.lower() for t in code.get("terms") or [] if t.strip()]
            if terms:
                key = f"{code['id']}|term"
                self.weight[key] = TERM_WEIGHT
                self.matcher.add(key, list(self.nlp.pipe(terms)))
            pairs = set()
            for doc in self.nlp.pipe(e.lower() for e in code.get("examples") or []):
                words = [t for t in doc if t.is_alpha and not t.is_stop and len(t) > 2]
                pairs.update(f"{a.text} {b.text}" for a, b in zip(words, words[1:]))
            if pairs:
                key = f"{code['id']}|example"
                self.weight[key] = EXAMPLE_WEIGHT
                self.matcher.add(key, list(self.nlp.pipe(sorted(pairs))))

    @property
    def empty(self) -> bool:
        return not self.weight

    def score(self, texts: list[str]) -> list[dict[str, LexiconHit]]:
        """For each text, the codes it matches with a score in (0, 1) and the matched words."""
        out = []
        lowered = (t.lower() if len(t.lower()) == len(t) else t for t in texts)
        for text, doc in zip(texts, self.nlp.pipe(lowered, batch_size=512)):
            found: dict[str, dict[str, float]] = defaultdict(dict)
            for match_id, start, end in self.matcher(doc):
                key = self.nlp.vocab.strings[match_id]
                code, _, _ = key.partition("|")
                span = doc[start:end]
                words = text[span.start_char : span.end_char]
                found[code][words.lower()] = max(found[code].get(words.lower(), 0.0), self.weight[key])
            out.append({
                code: LexiconHit(1 - 0.5 ** sum(words.values()), sorted(words, key=lambda w: (-words[w], w)))
                for code, words in found.items()
            })
        return out
