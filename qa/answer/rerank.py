"""Rerankers: reorder the fused top candidates with a slower, sharper relevance model.

Off by default (offline there is no multilingual cross-encoder). Chosen by ``QA_RERANKER``:

- ``cross-encoder:<name or folder>`` — a sentence-transformers ``CrossEncoder`` (e.g.
  ``BAAI/bge-reranker-v2-m3``, ``cross-encoder/mmarco-mMiniLMv2-L12-H384-v1``) scores
  (question, passage) pairs;
- ``sentences`` — offline: the best cosine between the question and any single sentence
  of the passage (the project's embedder), blended with the passage's own score. A
  question usually matches one sentence, which a whole-passage vector dilutes.

A reranker has ``name`` and ``score(query, passages) -> list[float]`` (higher is better).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from qa.text import sentence_spans


class Reranker(Protocol):
    name: str

    def score(self, query: str, passages: list) -> list[float]: ...


class CrossEncoderReranker:
    def __init__(self, model: str, batch_size: int = 16) -> None:
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ValueError("the cross-encoder reranker needs sentence-transformers: pip install '.[st]'") from exc
        try:
            self.model = CrossEncoder(model)
        except Exception as exc:
            raise ValueError(f"cannot load the cross-encoder '{model}': {exc}") from exc
        self.name = f"cross-encoder:{model}"
        self.batch_size = batch_size

    def score(self, query: str, passages: list) -> list[float]:
        if not passages:
            return []
        pairs = [(query, p.text) for p in passages]
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in np.asarray(scores).reshape(len(passages), -1)[:, -1]]


class SentenceReranker:
    """max cosine(question, sentence) + ``passage_weight`` × cosine(question, passage)."""

    name = "sentences"

    def __init__(self, embedder: Any, passage_weight: float = 1.0) -> None:
        self.embedder = embedder
        self.passage_weight = passage_weight

    def score(self, query: str, passages: list) -> list[float]:
        if not passages:
            return []
        owners: list[int] = []
        sents: list[str] = []
        for i, p in enumerate(passages):
            for a, b in sentence_spans(p.text):
                if b - a >= 12:
                    owners.append(i)
                    sents.append(p.text[a:b])
        best = np.full(len(passages), -1.0)
        if sents:
            qv = self.embedder.embed_query_vec(query)
            sims = self.embedder.embed_passages(sents) @ qv
            for i, s in zip(owners, sims):
                best[i] = max(best[i], float(s))
        own = np.array([float(p.trace.get("dense_score", p.score)) for p in passages])
        best = np.where(best < 0, own, best)
        return list(best + self.passage_weight * own)


def make_reranker(settings, embedder) -> Reranker | None:
    spec = (settings.reranker or "none").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind in ("", "none", "off"):
        return None
    if kind == "cross-encoder":
        if not arg:
            raise ValueError("QA_RERANKER=cross-encoder:<model name or folder>")
        return CrossEncoderReranker(arg)
    if kind == "sentences":
        return SentenceReranker(embedder)
    raise ValueError(f"unknown reranker '{spec}': use none, cross-encoder:<model> or sentences")
