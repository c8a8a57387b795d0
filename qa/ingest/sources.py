"""What the pipeline ingests: a :class:`Source` is a file or a fetched page (:mod:`qa.ingest.web`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from qa.ingest.documents import load_document, read_text
from qa.schema import Document


class Unchanged(Exception):
    """Raised by :meth:`Source.sha256` when the source knows it has not changed (an HTTP 304)."""


class Source:
    """One article to ingest: a file, or a page fetched from a URL (:mod:`qa.ingest.web`).

    ``key`` is what reports name (a path or a URL), ``location`` what the index stores as
    the document's source. :meth:`sha256` and :meth:`load` raise ``DocumentError`` with a
    reason; :meth:`sha256` may raise :class:`Unchanged` instead.
    """

    key: str
    doc_id: str
    location: str

    def sha256(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def load(self) -> Document:  # pragma: no cover - interface
        raise NotImplementedError


class FileSource(Source):
    def __init__(self, path: Path, doc_id: str) -> None:
        self.path, self.doc_id = path, doc_id
        self.key = str(path)

    @property
    def location(self) -> str:
        return str(self.path.resolve())

    def sha256(self) -> str:
        _, data = read_text(self.path)
        return hashlib.sha256(data).hexdigest()

    def load(self) -> Document:
        return load_document(self.path, self.doc_id)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))
