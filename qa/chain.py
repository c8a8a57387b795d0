"""The answer chain (LangChain runnables), shared by the CLI, UI, API and eval.

question (+ history) → language → standalone query → retrieve → generate → verify citations
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Iterator

from langchain_core.runnables import Runnable, RunnableLambda

from .answer import make_generator, refusal_message
from .citations import finalize, is_consistent
from .config import Settings
from .embeddings import make_embedder
from .language import detect_language
from .retrieval import NewsRetriever
from .store import Store

_PRONOUN = re.compile(r"\b(he|she|him|his|her|they|them|their|it|this|that|ông ấy|bà ấy|anh ấy|chị ấy|họ|ông|bà|người này|điều đó|việc này)\b", re.IGNORECASE)
_NAME_RUN = re.compile(r"(?:[A-ZÀ-ỸĐ][\wÀ-ỹ]*(?:\s+|$)){2,}")


def history_entities(history: list[dict]) -> list[str]:
    """Names (runs of ≥2 capitalised words) in the earlier turns, most recent first."""
    out: list[str] = []
    for turn in reversed(history or []):
        text = str(turn.get("content", ""))
        for m in _NAME_RUN.finditer(text):
            name = m.group().strip()
            words = name.split()
            if words and words[0].lower() in {"what", "who", "which", "when", "where", "why", "how", "the", "ai"}:
                name = " ".join(words[1:])
            if len(name.split()) >= 2 and name not in out:
                out.append(name)
    return out


def condense(question: str, history: list[dict]) -> str:
    """Deterministic standalone query for a follow-up: carry the entities of earlier turns."""
    if not history:
        return question
    ents = history_entities(history)
    if not ents:
        return question
    if _PRONOUN.search(question) or len(question.split()) <= 6:
        return f"{ents[0]}: {question}"
    return question


@dataclass
class Engine:
    settings: Settings
    embedder: Any
    store: Store
    retriever: NewsRetriever
    generator: Any

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False) -> "Engine":
        embedder = make_embedder(settings)
        store = Store(settings, embedder.describe(), create=create)
        retriever = NewsRetriever(store=store, embedder=embedder, k=settings.top_k, fetch_k=settings.fetch_k)
        return cls(settings, embedder, store, retriever, make_generator(settings, embedder))

    # ----------------------------------------------------------------- the chain
    def chain(self) -> Runnable:
        return (
            RunnableLambda(self._prepare, name="prepare")
            | RunnableLambda(self._retrieve, name="retrieve")
            | RunnableLambda(self._generate, name="generate")
            | RunnableLambda(self._verify, name="verify")
        )

    def ask(self, question: str, history: list[dict] | None = None, language: str | None = None) -> dict:
        return self.chain().invoke({"question": question, "history": history or [], "language": language})

    def stream(self, question: str, history: list[dict] | None = None, language: str | None = None) -> Iterator[dict]:
        """The one streaming API (CLI ``--stream``, UI, HTTP SSE). Events, in order:

        - ``{"type": "token", "text": str}`` — pieces of the answer, in order (zero or more);
        - ``{"type": "citations", "citations": [...]}`` — the verified citations (once);
        - ``{"type": "done", "result": {...}}`` — the same object :meth:`ask` returns; its
          ``answer`` is authoritative (verification may have replaced what was streamed,
          in which case ``result["trace"]["replaced_stream"]`` is true).
        """
        result = self.ask(question, history, language)
        for piece in re.findall(r"\S+\s*", result["answer"]):
            yield {"type": "token", "text": piece}
        yield {"type": "citations", "citations": result["citations"]}
        yield {"type": "done", "result": result}

    # ----------------------------------------------------------------- steps
    def _prepare(self, inp: dict) -> dict:
        q = " ".join(str(inp.get("question", "")).split())
        if not q:
            raise ValueError("the question is empty")
        history = inp.get("history") or []
        lang = inp.get("language") or detect_language(q)
        standalone = condense(q, history)
        return {"question": q, "history": history, "language": lang, "query": standalone, "t0": time.perf_counter()}

    def _retrieve(self, st: dict) -> dict:
        t = time.perf_counter()
        st["passages"] = self.retriever.search(st["query"], language=st["language"])
        st["t_retrieve"] = (time.perf_counter() - t) * 1000
        return st

    def _generate(self, st: dict) -> dict:
        t = time.perf_counter()
        passages = st["passages"]
        corpus_lang = detect_language(passages[0].text[:300]) if passages else "vi"
        # retrieval used the standalone query; the answer addresses the original wording
        st["draft"] = self.generator.generate(st["question"], st["language"], passages, corpus_lang)
        st["t_answer"] = (time.perf_counter() - t) * 1000
        return st

    def _verify(self, st: dict) -> dict:
        draft = st["draft"]
        passages = st["passages"]
        trace = {"query": st["query"], **draft.trace}
        if draft.refused:
            answer, citations = draft.answer, []
        else:
            answer, citations, report = finalize(draft.answer, passages, draft.quotes)
            trace.update(report)
            if not citations or not is_consistent(answer, citations):
                trace["refusal_reason"] = "no valid citation in the answer"
                answer, citations = refusal_message(st["language"]), []
        refused = not citations
        trace["passages"] = [
            {"chunk_id": p.chunk_id, "doc_id": p.doc_id, **p.trace} for p in passages
        ]
        total = (time.perf_counter() - st["t0"]) * 1000
        return {
            "question": st["question"],
            "answer": answer,
            "refused": refused,
            "language": st["language"],
            "citations": citations,
            "timings_ms": {
                "retrieve": round(st["t_retrieve"], 1),
                "answer": round(st["t_answer"], 1),
                "total": round(total, 1),
            },
            "trace": trace,
        }
