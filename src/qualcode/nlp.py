"""The spaCy pipeline qualcode builds for itself, once per process.

No pretrained model is downloaded: a blank English pipeline with the
sentencizer and the lookup lemmatizer from spacy-lookups-data is enough for
sentence splitting and for matching codebook terms on lemmas.
"""

from __future__ import annotations

import functools

import spacy
from spacy.language import Language


@functools.lru_cache(maxsize=1)
def get_nlp() -> Language:
    """A blank English pipeline with a sentencizer and lookup lemmatizer."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp
