"""Retrieval behind a LangChain ``BaseRetriever``: dense search in Chroma.

The retriever returns :class:`Passage` objects (and LangChain ``Document`` objects through
the standard interface). Each passage carries a trace of how it was ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from .embeddings import Embedder
from .store import Hit, Store


@dataclass
class Passage:
    chunk_id: str
    doc_id: str
    title: str
    source: str
    text: str
    score: float  # relevance used for refusal decisions (cosine similarity of the dense model)
    meta: dict = field(default_factory=dict)
    trace: dict = field(default_factory=dict)

    @classmethod
    def from_hit(cls, hit: Hit) -> "Passage":
        m = hit.meta
        return cls(hit.chunk_id, m.get("doc_id", ""), m.get("title", ""), m.get("source", ""), hit.text, hit.score, dict(m))

    def to_lc(self) -> LCDocument:
        return LCDocument(page_content=self.text, metadata={**self.meta, "chunk_id": self.chunk_id, "score": self.score, "trace": self.trace})


class NewsRetriever(BaseRetriever):
    """Hybrid retrieval: dense (Chroma) + keyword (FTS5 BM25), fused by query language.

    Vietnamese questions: weighted reciprocal-rank fusion of both lists. English questions
    over Vietnamese articles: the keyword side only sees the question's names, numbers
    and codes (the only words that match across languages), so it cannot drown the
    dense ranking but still pulls up exact matches of "Le Cong Thanh" or "52-NQ/TW".
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any
    embedder: Any
    k: int = 6
    fetch_k: int = 24
    max_per_doc: int = 6
    mode: str = "hybrid"  # hybrid | dense | keyword
    rrf_k: int = 60
    kw_weight_vi: float = 1.0
    kw_weight_en: float = 0.5

    def search(self, query: str, k: int | None = None, language: str | None = None) -> list[Passage]:
        from .keyword import query_terms
        from .language import detect_language

        k = k or self.k
        store: Store = self.store
        embedder: Embedder = self.embedder
        lang = language or detect_language(query)
        fetch = max(self.fetch_k, k)
        qv = embedder.embed_query_vec(query) if self.mode != "keyword" else None
        dense = store.query(qv, fetch) if qv is not None else []
        kw: list[Hit] = []
        weight = 0.0
        if self.mode != "dense":
            strong = lang == "en"
            terms = query_terms(query, strong_only=strong)
            if self.mode == "keyword" and strong and not terms:
                terms = query_terms(query)
            kw = store.keyword_search(terms, fetch)
            weight = self.kw_weight_en if strong else self.kw_weight_vi
            if self.mode == "keyword":
                weight = 1.0

        cands: dict[str, Passage] = {}
        for rank, h in enumerate(dense, 1):
            p = cands.setdefault(h.chunk_id, Passage.from_hit(h))
            p.trace.update(dense_score=round(h.score, 4), dense_rank=rank)
        for rank, h in enumerate(kw, 1):
            p = cands.setdefault(h.chunk_id, Passage.from_hit(h))
            p.trace.update(keyword_score=round(h.score, 4), keyword_rank=rank)
        if qv is not None:
            missing = [cid for cid, p in cands.items() if "dense_score" not in p.trace]
            if missing:
                got = store.chunks.get(ids=missing, include=["embeddings"])
                for cid, vec in zip(got["ids"], got["embeddings"]):
                    cands[cid].trace["dense_score"] = round(float(np.dot(np.asarray(vec, dtype=np.float32), qv)), 4)
        for p in cands.values():
            fused = 0.0
            if "dense_rank" in p.trace and self.mode != "keyword":
                fused += 1.0 / (self.rrf_k + p.trace["dense_rank"])
            if "keyword_rank" in p.trace:
                fused += weight / (self.rrf_k + p.trace["keyword_rank"])
            p.trace["fused"] = round(fused, 6)
            p.score = float(p.trace.get("dense_score", 0.0))
        ordered = sorted(cands.values(), key=lambda p: -p.trace["fused"])
        out: list[Passage] = []
        per_doc: dict[str, int] = {}
        for fused_rank, p in enumerate(ordered, 1):
            p.trace["fused_rank"] = fused_rank
            if per_doc.get(p.doc_id, 0) >= self.max_per_doc:
                continue
            per_doc[p.doc_id] = per_doc.get(p.doc_id, 0) + 1
            out.append(p)
            if len(out) >= k:
                break
        for final, p in enumerate(out, 1):
            p.trace["final_rank"] = final
            p.trace["language"] = lang
        return out

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        return [p.to_lc() for p in self.search(query)]
