"""Feedback on answers: thumbs up/down and a comment, kept in SQLite next to the index.

One store per index folder: ``<index_dir>/feedback.sqlite`` (WAL, ``synchronous=FULL``: a
row is on disk when :meth:`FeedbackStore.add` returns, so a crash right after the reply
loses nothing). Every write opens its own connection under a process-wide lock, with a
busy timeout for writers in other processes (a second server, the CLI).

Written by the API (``POST /api/feedback``, :func:`feedback_router`) and the UI (the thumbs
under each answer, :mod:`qa.app.ui`); read by ``qa feedback list`` and turned into eval
items to review by ``qa eval from-feedback`` (:mod:`qa.eval.feedback`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, Field, field_validator

FILENAME = "feedback.sqlite"
RATINGS = ("up", "down")
MAX_TEXT_CHARS = 20_000      # question, answer, one passage
MAX_COMMENT_CHARS = 4_000
MAX_HISTORY_TURNS = 200
MAX_CITATIONS = 50
MAX_TRACE_CHARS = 500_000    # JSON of the trace; a larger one is not stored
CHANNELS = ("api", "ui", "embed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    rating     TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    question   TEXT NOT NULL,
    history    TEXT NOT NULL DEFAULT '[]',
    answer     TEXT NOT NULL DEFAULT '',
    citations  TEXT NOT NULL DEFAULT '[]',
    comment    TEXT NOT NULL DEFAULT '',
    trace      TEXT,
    language   TEXT,
    refused    INTEGER,
    channel    TEXT NOT NULL DEFAULT 'api'
);
CREATE INDEX IF NOT EXISTS feedback_rating ON feedback (rating, id);
"""
_JSON_COLUMNS = ("history", "citations", "trace")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class FeedbackStore:
    """The feedback rows of one index folder (thread-safe; safe across processes)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ready = False

    # -- connections
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _writer(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: set once per database file
            conn.executescript(_SCHEMA)
            self._ready = True
            return conn
        return self._connect()

    def _write(self, sql: str, params: tuple) -> sqlite3.Cursor:
        with self._lock:
            conn = self._writer()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    cur = conn.execute(sql, params)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return cur
            finally:
                conn.close()

    # -- writing
    def add(
        self,
        *,
        question: str,
        rating: str,
        answer: str = "",
        history: list[dict] | None = None,
        citations: list[dict] | None = None,
        comment: str = "",
        trace: dict | None = None,
        language: str | None = None,
        refused: bool | None = None,
        channel: str = "api",
    ) -> dict:
        """Store one rating; returns ``{"id", "created_at"}`` once the row is durable."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}, got {rating!r}")
        created = now()
        cur = self._write(
            "INSERT INTO feedback (created_at, rating, question, history, answer, citations, comment, trace,"
            " language, refused, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (created, rating, question, _dumps(history or []), answer or "", _dumps(citations or []), comment or "",
             None if trace is None else _dumps(trace), language, None if refused is None else int(bool(refused)),
             channel),
        )
        return {"id": int(cur.lastrowid), "created_at": created}

    def update(self, feedback_id: int, *, rating: str | None = None, comment: str | None = None) -> bool:
        """Change the rating and/or the comment of a row (the UI: a comment after the thumb)."""
        if rating is not None and rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}, got {rating!r}")
        cur = self._write(
            "UPDATE feedback SET rating = COALESCE(?, rating), comment = COALESCE(?, comment), updated_at = ?"
            " WHERE id = ?",
            (rating, comment, now(), int(feedback_id)),
        )
        return cur.rowcount > 0

    def delete(self, feedback_id: int) -> bool:
        """Remove a row (the UI: a thumb taken back)."""
        return self._write("DELETE FROM feedback WHERE id = ?", (int(feedback_id),)).rowcount > 0

    # -- reading (never creates the file)
    def _rows(self, sql: str, params: tuple = ()) -> Iterator[dict]:
        if not self.path.exists():
            return
        conn = self._connect()
        try:
            conn.row_factory = sqlite3.Row
            try:
                rows = conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return
                raise
        finally:
            conn.close()
        for row in rows:
            rec = dict(row)
            for key in _JSON_COLUMNS:
                rec[key] = json.loads(rec[key]) if rec[key] is not None else None
            if rec["refused"] is not None:
                rec["refused"] = bool(rec["refused"])
            yield rec

    def list(self, rating: str | None = None, limit: int | None = None) -> list[dict]:
        """Rows, oldest first; only one rating when given; the ``limit`` most recent when given."""
        where, params = ("WHERE rating = ?", (rating,)) if rating else ("", ())
        sql = f"SELECT * FROM feedback {where} ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace('ORDER BY id', 'ORDER BY id DESC')} LIMIT {int(limit)}) ORDER BY id"
        return list(self._rows(sql, params))

    def get(self, feedback_id: int) -> dict | None:
        return next(iter(self._rows("SELECT * FROM feedback WHERE id = ?", (int(feedback_id),))), None)

    def count(self, rating: str | None = None) -> int:
        return len(self.list(rating))


_STORES: dict[Path, FeedbackStore] = {}
_STORES_LOCK = threading.Lock()


def feedback_path(settings) -> Path:
    """``<index_dir>/feedback.sqlite`` (also with a Chroma server: next to the keyword index)."""
    return Path(settings.index_dir) / FILENAME


def store_for(settings) -> FeedbackStore:
    """The process's one store for this index folder (the API and the UI share its lock)."""
    path = feedback_path(settings).resolve()
    with _STORES_LOCK:
        if path not in _STORES:
            _STORES[path] = FeedbackStore(path)
        return _STORES[path]


# ----------------------------------------------------------------------------- answers given by this server


def _key(question: str, answer: str) -> str:
    norm = " ".join(str(question or "").split()) + "\x00" + " ".join(str(answer or "").split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


class RecentAnswers:
    """The last answers this server gave (trace, language, refusal), so that feedback posted
    without its trace still gets the one the answer came with."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, result: dict) -> None:
        key = _key(result.get("question", ""), result.get("answer", ""))
        info = {"trace": result.get("trace"), "language": result.get("language"), "refused": result.get("refused")}
        with self._lock:
            self._items[key] = info
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def lookup(self, question: str, answer: str) -> dict | None:
        with self._lock:
            return self._items.get(_key(question, answer))


# ----------------------------------------------------------------------------- the API


class FeedbackTurn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TEXT_CHARS)


class FeedbackCitation(BaseModel):
    """A passage shown with the answer (the citation objects of /api/ask; extra fields kept)."""

    model_config = {"extra": "allow"}

    n: int | None = None
    doc_id: str = Field("", max_length=1_000)
    title: str = Field("", max_length=2_000)
    source: str = Field("", max_length=2_000)
    chunk_id: str = Field("", max_length=1_000)
    text: str = Field("", max_length=MAX_TEXT_CHARS)
    quote: str = Field("", max_length=MAX_TEXT_CHARS)


class FeedbackRequest(BaseModel):
    question: str = Field(max_length=MAX_TEXT_CHARS, description="The question that was answered")
    history: list[FeedbackTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS,
                                        description="The turns before the question, oldest first")
    answer: str = Field("", max_length=MAX_TEXT_CHARS, description="The answer given")
    citations: list[FeedbackCitation] = Field(default_factory=list, max_length=MAX_CITATIONS,
                                              description="The passages shown with the answer")
    rating: Literal["up", "down"]
    comment: str = Field("", max_length=MAX_COMMENT_CHARS, description="Optional: what was good or wrong")
    language: Literal["vi", "en"] | None = Field(None, description="The answer's language (default: the one this server answered in, else detected)")
    trace: dict[str, Any] | None = Field(None, description="The answer's trace (default: the one this server answered with, if it did)")

    model_config = {"json_schema_extra": {"examples": [
        {"question": "What did Le Cong Thanh recommend on climate diplomacy?", "history": [],
         "answer": "…", "citations": [], "rating": "down", "comment": "it missed the second recommendation"},
    ]}}

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the question is empty")
        return v


class FeedbackResponse(BaseModel):
    id: int
    created_at: str
    trace_stored: bool


def feedback_router(settings, recent: RecentAnswers):
    """``POST /api/feedback`` (behind the same guard as ``/api/ask``: the app's middleware)."""
    from fastapi import APIRouter
    from starlette.concurrency import run_in_threadpool

    router = APIRouter()
    store = store_for(settings)

    @router.post("/api/feedback", response_model=FeedbackResponse, tags=["feedback"],
                 responses={422: {"description": "invalid request"}, 401: {"description": "missing or invalid token"}})
    async def feedback(req: FeedbackRequest) -> dict:
        """Rate an answer (up/down, optional comment); stored next to the index. Returns the row id."""
        question = " ".join(req.question.split())
        known = recent.lookup(question, req.answer) or {}
        trace = req.trace if req.trace is not None else known.get("trace")
        if trace is not None and len(_dumps(trace)) > MAX_TRACE_CHARS:
            trace = {"dropped": f"trace larger than {MAX_TRACE_CHARS} characters"}
        saved = await run_in_threadpool(
            store.add,
            question=question,
            rating=req.rating,
            answer=req.answer,
            history=[t.model_dump() for t in req.history],
            citations=[c.model_dump() for c in req.citations],
            comment=req.comment.strip(),
            trace=trace,
            language=req.language or known.get("language"),
            refused=known.get("refused"),
            channel="api",
        )
        return {**saved, "trace_stored": trace is not None}

    return router
