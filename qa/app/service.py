"""The service behind the HTTP API and the UI: one engine, opened once, used from a bounded pool.

Both faces (:mod:`qa.app.api`, :mod:`qa.app.ui`) call the same :class:`Service`, which calls the
same chain as the CLI and the eval (:class:`qa.answer.chain.Engine`). :func:`error_status` maps
the chain's exceptions to an HTTP status and a message shown to the user.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

from qa.config import PROJECT_ROOT, VERSION, Settings
from qa.language import detect_language

_END = object()

SAMPLE_DIR = PROJECT_ROOT / "data" / "articles"
SAMPLE_EXAMPLES = PROJECT_ROOT / "data" / "sample-examples.txt"
MAX_EXAMPLES = 8


def read_examples(spec: str) -> list[str]:
    """``QA_EXAMPLES``: a file (one question a line, ``#`` comments) or questions separated by `` | ``."""
    path = Path(spec).expanduser()
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        lines = [ln for ln in lines if not ln.lstrip().startswith("#")]
    else:
        lines = spec.split("|")
    return [" ".join(ln.split()) for ln in lines if ln.strip()][:MAX_EXAMPLES]


def question_about(title: str) -> str:
    """A question about one article, in the language of its title."""
    title = " ".join(title.split()).strip(" .")
    if detect_language(title) == "vi":
        return f"Bài báo “{title}” đưa tin gì?"
    return f"What does the article “{title}” report?"


# ----------------------------------------------------------------------------- errors


class ServiceUnavailable(RuntimeError):
    """The index or a backend (embeddings, LLM) cannot serve requests right now."""


def backend_errors() -> tuple[type[BaseException], ...]:
    from qa.index.embeddings import EmbeddingError
    from qa.index.store import StoreError

    errs: list[type[BaseException]] = [StoreError, EmbeddingError, ServiceUnavailable]
    try:  # the LLM generators are optional
        from qa.answer.llm import LLMError

        errs.append(LLMError)
    except Exception:  # pragma: no cover
        pass
    return tuple(errs)


def error_status(exc: BaseException) -> tuple[int, str]:
    """HTTP status and a clear message for an exception raised by the answer chain."""
    from qa.ingest.pipeline import IndexBusy

    if isinstance(exc, ValueError):
        return 422, str(exc)
    if isinstance(exc, IndexBusy):
        return 409, str(exc)
    if isinstance(exc, backend_errors()):
        return 503, str(exc)
    return 500, f"internal error: {type(exc).__name__}"


# ----------------------------------------------------------------------------- the service


class Service:
    """The engine behind the API and the UI: opened once, used from a bounded thread pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.executor = ThreadPoolExecutor(max_workers=settings.api_workers, thread_name_prefix="qa-engine")
        self._engine = None
        self._open_lock = threading.Lock()
        self.ingest_lock = threading.Lock()

    # -- engine
    def engine(self, create: bool = False):
        """The open :class:`~qa.answer.chain.Engine`; raises ``StoreError`` while there is no index."""
        if self._engine is None:
            with self._open_lock:
                if self._engine is None:
                    from qa.answer.chain import Engine

                    self._engine = Engine.open(self.settings, create=create)
        return self._engine

    def try_open(self) -> str | None:
        """Open the engine now (at startup); returns the reason when it cannot be opened."""
        try:
            self.engine()
            return None
        except backend_errors() as exc:
            return str(exc)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- asking (on the pool)
    def submit(self, fn: Callable, *args) -> Future:
        return self.executor.submit(fn, *args)

    def ask(self, question: str, history: list[dict], language: str | None, filters=None, as_of=None) -> dict:
        """Blocking ask on the pool (for threads that are not the pool's)."""
        engine = self.engine()
        return self.submit(lambda: engine.ask(question, history, language, filters=filters, as_of=as_of)).result()

    def stream(self, question: str, history: list[dict], language: str | None, filters=None, as_of=None) -> Iterator[dict]:
        """Blocking event iterator; each step of the engine's stream runs on the pool."""
        gen = self.engine().stream(question, history, language, filters=filters, as_of=as_of)
        try:
            while True:
                ev = self.submit(next, gen, _END).result()
                if ev is _END:
                    return
                yield ev
        finally:
            self.submit(gen.close)

    async def astream(self, question: str, history: list[dict], language: str | None, filters=None,
                      as_of=None) -> AsyncIterator[dict]:
        gen = self.engine().stream(question, history, language, filters=filters, as_of=as_of)
        fut: Future | None = None
        try:
            while True:
                fut = self.submit(next, gen, _END)
                ev = await asyncio.wrap_future(fut)
                if ev is _END:
                    return
                yield ev
        finally:
            # close the generator on the pool once its current step (if any) is over
            if fut is not None and not fut.done():
                fut.add_done_callback(lambda _f: self.submit(gen.close))
            else:
                self.submit(gen.close)

    # -- index information
    def health(self) -> dict:
        s = self.settings
        out: dict[str, Any] = {
            "status": "ok",
            "version": VERSION,
            "index": {"present": False, "location": s.chroma_url or str(s.index_dir), "documents": 0, "chunks": 0},
            "models": {"embeddings": {"spec": s.embeddings}, "generator": s.llm},
        }
        try:
            engine = self.engine()
        except backend_errors() as exc:
            out["status"] = "no_index"
            out["detail"] = str(exc)
            return out
        out["index"].update(present=True, documents=len(engine.store.manifest(refresh=True)), chunks=engine.store.count_chunks())
        out["models"]["embeddings"].update(engine.embedder.describe())
        out["models"]["answerability"] = self._answerability(engine)
        return out

    def _answerability(self, engine) -> dict:
        """How refusals are decided, and whether the model is calibrated for this embedder."""
        s = self.settings
        if s.answerability != "model":
            return {"decision": s.answerability}
        from qa.answer.answerability import calibration_mismatch, load_model

        model = load_model(s.answerability_model)
        out: dict[str, Any] = {"decision": "model", "model": str(s.answerability_model or "shipped"),
                               "trained_with": model.meta.get("embedder") if model is not None else None,
                               # the least probability at which a refusal suggests asking in English
                               "hint_floor": dict(model.hint_floor) if model is not None else {}}
        why = calibration_mismatch(model, engine.embedder) if model is not None else None
        if why:
            out["warning"] = why
        return out

    def documents(self) -> list[dict]:
        engine = self.engine()
        docs = sorted(engine.store.manifest(refresh=True).values(), key=lambda d: d.id)
        return [{**d.as_json(), "date": d.date} for d in docs]  # "date": the name before "published"

    def document_text(self, doc_id: str) -> str | None:
        """The document's title, then its cleaned text."""
        store = self.engine().store
        text = store.document_text(doc_id)
        if text is None:
            return None
        rec = store.manifest(refresh=True).get(doc_id)
        return f"{rec.title}\n\n{text}" if rec and rec.title else text

    def examples(self, limit: int = 4) -> list[str]:
        """Example questions for the UI: ``QA_EXAMPLES`` if set; the sample's own when the bundled
        sample is what is indexed; else one question per most recent article (by date, then ingest)."""
        if self.settings.examples:
            return read_examples(self.settings.examples)
        try:
            docs = self.engine().store.manifest(refresh=True)
        except backend_errors():
            return []
        sample_ids = {p.stem for p in SAMPLE_DIR.glob("*") if p.is_file()}
        if docs and set(docs) <= sample_ids and SAMPLE_EXAMPLES.is_file():
            return read_examples(str(SAMPLE_EXAMPLES))
        recent = sorted(docs.values(), key=lambda d: (d.date or "", d.ingested_at), reverse=True)
        return [question_about(d.title) for d in recent if d.title and d.title != d.id][:limit]

    # -- ingest (UI upload)
    @property
    def upload_dir(self) -> Path:
        return self.settings.upload_dir or (self.settings.index_dir / "uploads")

    def ingest(self, paths: list[Path], progress=None):
        from qa.ingest.pipeline import ingest_paths

        with self.ingest_lock:
            engine = self.engine(create=True)
            return ingest_paths(paths, self.settings, engine.embedder, engine.store, progress=progress)

    # -- feeds (read-only: `qa feeds` and `qa sync` manage them)
    def feeds(self) -> dict:
        """The registered feeds (``<index_dir>/feeds.sqlite``) and the last sync; empty when there is none."""
        from qa.ingest.feeds import FeedRegistry, registry_path

        if not registry_path(self.settings).exists():
            return {"feeds": [], "last_sync": None}
        with FeedRegistry.open(self.settings) as reg:
            feeds = reg.feeds()
            return {"feeds": [{k: f[k] for k in ("url", "kind", "title", "last_sync", "last_status", "last_error",
                                                  "items", "ingested", "pending")} for f in feeds],
                    "last_sync": reg.last_sync()}
