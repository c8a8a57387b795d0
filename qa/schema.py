"""The records passed between stages: a loaded :class:`Document` and its :class:`Chunk` s.

They live below every stage (ingest makes them, the index stores them), so no stage imports
another's module just for a type.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Document:
    id: str
    title: str
    source: str
    text: str  # cleaned: body, then captions
    body_end: int  # text[:body_end] is the article body
    sha256: str
    author: str | None = None
    date: str | None = None  # publication date, YYYY-MM-DD or YYYY-MM; None when the article does not say
    language: str | None = None  # "vi" | "en", detected from the text at load time
    outlet: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def body(self) -> str:
        return self.text[: self.body_end]

    @property
    def captions(self) -> list[str]:
        return [c for c in self.text[self.body_end :].split("\n\n") if c.strip()]


@dataclass
class Chunk:
    id: str
    doc_id: str
    title: str
    position: int  # 0-based order within the document
    start: int  # character offsets into Document.text
    end: int
    text: str
    kind: str  # "body" | "caption"
    n_tokens: int
    language: str | None = None  # "vi" | "en" (the chunk's own; short ones take the article's)

    def metadata(self, doc: Document) -> dict:
        meta = {
            "doc_id": self.doc_id,
            "title": self.title,
            "source": doc.source,
            "position": self.position,
            "start": self.start,
            "end": self.end,
            "kind": self.kind,
            "doc_sha256": doc.sha256,
            "n_tokens": self.n_tokens,
        }
        if doc.author:
            meta["author"] = doc.author
        if doc.date:
            meta["date"] = doc.date
        if doc.outlet:
            meta["outlet"] = doc.outlet
        from qa.constraints import encode, stated

        meta["facts"] = encode(stated(self.text, self.title if self.kind == "body" else ""))
        language = self.language or doc.language
        if language:
            meta["language"] = language
        from qa.filters import filter_fields

        meta.update(filter_fields(doc.date, doc.outlet, doc.language or language))
        group = doc.meta.get("group")
        if group:
            meta["group"] = group
        return meta
