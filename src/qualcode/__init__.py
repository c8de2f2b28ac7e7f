"""qualcode: a qualitative-research coding workbench for team coding of interviews and field notes."""

from .codebook import load_codebook, sync_codebook, validate_codebook
from .db import open_project
from .errors import QualcodeError
from .ingest import IngestOptions, TableMapping, ingest_paths

__all__ = [
    "IngestOptions",
    "QualcodeError",
    "TableMapping",
    "ingest_paths",
    "load_codebook",
    "open_project",
    "sync_codebook",
    "validate_codebook",
]
