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

from qa.index.embeddings import Embedder
from qa.index.store import Hit, Store


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

    Candidates are the union of the dense and keyword top ``fetch_k``; every candidate
    gets both scores (cosine from its stored vector, BM25 from the keyword index). The
    default fusion standardises each score over the candidates (z-score) and adds the
    keyword side with a per-language weight, so the keyword side counts in proportion to
    how much it actually separates the candidates: a query whose terms match nothing or
    match everything equally adds nothing. English questions over Vietnamese articles
    only send their names, numbers and codes to the keyword side (the words that can
    match across languages), so exact matches of "Le Cong Thanh" or "52-NQ/TW" stay
    strong while ordinary English words cannot drown the dense ranking.
    ``fusion="rrf"`` gives weighted reciprocal-rank fusion instead.

    With sentence vectors computed at ingest (the default), a third signal joins the fusion:
    each candidate's best cosine between the question and one of its sentences (from the
    cache, no encoder work), weighted by ``sentence_weight`` (XQuAD: en R@1 0.850 → 0.861,
    vi 0.964 → 0.965).

    Then an optional reranker reorders the top candidates, a per-document cap keeps the
    list diverse, and each final passage gets its neighbouring chunks as context.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any
    embedder: Any
    k: int = 6
    fetch_k: int = 24
    max_per_doc: int = 6
    mode: str = "hybrid"  # hybrid | dense | keyword
    fusion: str = "zscore"  # zscore | rrf
    rrf_k: int = 60
    kw_weight_vi: float = 0.3
    kw_weight_en: float = 0.3
    kw_weight_vi_plain: float = 1.5
    reranker: Any = None
    rerank_top: int = 20
    neighbours: int = 1
    sentence_weight: float = 0.0
    sentvec: Any = None  # the sentence-vector cache (qa.index.sentvec), for the sentence signal

    @classmethod
    def from_settings(cls, settings, store, embedder) -> "NewsRetriever":
        from qa.answer.rerank import make_reranker

        return cls(
            store=store,
            embedder=embedder,
            k=settings.top_k,
            fetch_k=settings.fetch_k,
            max_per_doc=settings.max_per_doc,
            fusion=settings.fusion,
            kw_weight_vi=settings.keyword_weight_vi,
            kw_weight_en=settings.keyword_weight_en,
            kw_weight_vi_plain=settings.keyword_weight_vi_plain,
            reranker=make_reranker(settings, embedder),
            rerank_top=settings.rerank_top,
            neighbours=settings.neighbours,
            sentence_weight=settings.sentence_weight,
            # only with vectors for every sentence: a partly filled (lazy) cache would favour
            # the passages that happen to have been answered from before
            sentvec=_sentvec(settings, embedder) if settings.sentence_weight > 0 and settings.sentence_vectors == "ingest" else None,
        )

    def _weight(self, lang: str, query: str) -> float:
        if lang == "en":
            return self.kw_weight_en
        # Vietnamese typed without diacritics: the dense model barely understands it
        # (XQuAD vi questions folded: dense R@1 0.33 vs keyword 0.93), the folded keyword side does
        from qa.text import has_diacritics

        return self.kw_weight_vi if has_diacritics(query) else self.kw_weight_vi_plain

    def search(self, query: str, k: int | None = None, language: str | None = None) -> list[Passage]:
        from qa.index.keyword import query_terms
        from qa.language import detect_language

        k = k or self.k
        store: Store = self.store
        embedder: Embedder = self.embedder
        lang = language or detect_language(query)
        fetch = max(self.fetch_k, k)
        qv = embedder.embed_query_vec(query) if self.mode != "keyword" else None
        dense = store.query(qv, fetch) if qv is not None else []
        kw: list[Hit] = []
        terms: list[str] = []
        if self.mode != "dense":
            strong = lang == "en" and self.mode != "keyword"
            terms = query_terms(query, strong_only=strong)
            if self.mode == "keyword" and not terms:
                terms = query_terms(query)
            kw = store.keyword_search(terms, fetch)

        cands: dict[str, Passage] = {}
        for rank, h in enumerate(dense, 1):
            p = cands.setdefault(h.chunk_id, Passage.from_hit(h))
            p.trace.update(dense_score=round(h.score, 4), dense_rank=rank)
        for rank, h in enumerate(kw, 1):
            p = cands.setdefault(h.chunk_id, Passage.from_hit(h))
            p.trace.update(keyword_score=round(h.score, 4), keyword_rank=rank)
        if not cands:
            return []
        # every candidate gets both scores
        if qv is not None:
            missing = [cid for cid, p in cands.items() if "dense_score" not in p.trace]
            if missing:
                got = store.chunks.get(ids=missing, include=["embeddings"])
                for cid, vec in zip(got["ids"], got["embeddings"]):
                    cands[cid].trace["dense_score"] = round(float(np.dot(np.asarray(vec, dtype=np.float32), qv)), 4)
        if terms and self.mode == "hybrid":
            missing = [cid for cid, p in cands.items() if "keyword_score" not in p.trace]
            for cid, sc in store.keyword_scores(terms, missing).items():
                cands[cid].trace["keyword_score"] = round(sc, 4)

        ps = list(cands.values())
        if self.sentence_weight > 0 and qv is not None and self.mode == "hybrid" and self.sentvec is not None:
            self._sentence_scores(ps, qv)
        fused = self._fuse(ps, self._weight(lang, query))
        for p, f in zip(ps, fused):
            p.trace["fused"] = round(float(f), 6)
            p.score = float(p.trace.get("dense_score", 0.0))
        ordered = sorted(ps, key=lambda p: -p.trace["fused"])
        for fused_rank, p in enumerate(ordered, 1):
            p.trace["fused_rank"] = fused_rank
        if self.reranker is not None and self.mode == "hybrid":
            ordered = self._rerank(query, ordered)
        out: list[Passage] = []
        per_doc: dict[str, int] = {}
        for p in ordered:
            if per_doc.get(p.doc_id, 0) >= self.max_per_doc:
                continue
            per_doc[p.doc_id] = per_doc.get(p.doc_id, 0) + 1
            out.append(p)
            if len(out) >= k:
                break
        for final, p in enumerate(out, 1):
            p.trace["final_rank"] = final
            p.trace["language"] = lang
        if self.neighbours > 0:
            self._expand(out)
        return out

    def _fuse(self, ps: list[Passage], w: float) -> np.ndarray:
        d = np.array([p.trace.get("dense_score", 0.0) for p in ps], dtype=np.float64)
        kw = np.array([p.trace.get("keyword_score", 0.0) for p in ps], dtype=np.float64)
        if self.mode == "dense":
            return d
        if self.mode == "keyword":
            return kw
        if self.fusion == "rrf":
            out = np.zeros(len(ps))
            for i, p in enumerate(ps):
                if "dense_rank" in p.trace:
                    out[i] += 1.0 / (self.rrf_k + p.trace["dense_rank"])
                if "keyword_rank" in p.trace:
                    out[i] += w / (self.rrf_k + p.trace["keyword_rank"])
            return out
        out = _standardise(d) + w * _standardise(kw)
        if any("sentence_score" in p.trace for p in ps):
            ss = np.array([p.trace.get("sentence_score", p.trace.get("dense_score", 0.0)) for p in ps], dtype=np.float64)
            out = out + self.sentence_weight * _standardise(ss)
        return out

    def _sentence_scores(self, ps: list[Passage], qv: np.ndarray) -> None:
        """Best cosine between the question and one sentence of each candidate, from the cache only."""
        from qa.index.sentvec import answer_units

        units = {p.chunk_id: answer_units(p.text) for p in ps}
        vecs = self.sentvec.lookup([u for us in units.values() for u in us])
        for p in ps:
            got = [vecs[u] for u in units[p.chunk_id] if u in vecs]
            if got:
                p.trace["sentence_score"] = round(float(np.max(np.stack(got) @ qv)), 4)

    def _rerank(self, query: str, ordered: list[Passage]) -> list[Passage]:
        head, tail = ordered[: self.rerank_top], ordered[self.rerank_top :]
        scores = self.reranker.score(query, head)
        for p, s in zip(head, scores):
            p.trace["rerank_score"] = round(float(s), 4)
        head = sorted(head, key=lambda p: -p.trace["rerank_score"])
        return head + tail

    def _expand(self, passages: list[Passage]) -> None:
        """Attach the neighbouring chunks (same document version) as context."""
        want: dict[str, list[tuple[Passage, str]]] = {}
        for p in passages:
            pos, sha = p.meta.get("position"), p.meta.get("doc_sha256", "")
            if pos is None or not sha or p.meta.get("kind", "body") != "body":
                continue  # captions stand alone
            for off in range(1, self.neighbours + 1):
                for side, q in (("before", int(pos) - off), ("after", int(pos) + off)):
                    if q >= 0:
                        want.setdefault(f"{p.doc_id}:{sha[:12]}:{q}", []).append((p, side))
        for h in self.store.get_chunks(list(want)):
            for p, side in want[h.chunk_id]:
                if h.meta.get("kind", "body") != p.meta.get("kind", "body"):
                    continue
                key = "context_before" if side == "before" else "context_after"
                p.meta.setdefault(key, []).append((int(h.meta.get("position", 0)), h.text))
        for p in passages:
            for key in ("context_before", "context_after"):
                if key in p.meta:
                    p.meta[key] = "\n\n".join(t for _, t in sorted(p.meta[key]))

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, language: str | None = None
    ) -> list[LCDocument]:
        """LangChain's entry point: ``retriever.invoke(query, k=3, language="en")``; both optional."""
        return [p.to_lc() for p in self.search(query, k=k, language=language)]


def _sentvec(settings, embedder):
    from qa.index.sentvec import sentence_vectors

    return sentence_vectors(settings, embedder)


def _standardise(x: np.ndarray) -> np.ndarray:
    """z-scores over the candidates; all-equal scores carry no information and give zeros."""
    sd = float(x.std())
    if sd < 1e-9:
        return np.zeros_like(x)
    return (x - float(x.mean())) / sd
