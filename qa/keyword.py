"""Vietnamese-aware keyword index: SQLite FTS5 (BM25) over folded syllables and syllable bigrams.

Analysis: lower-case, strip diacritics (đ→d), keep codes and numbers whole
("52-NQ/TW" → ``52_nq_tw`` plus its parts), and add syllable bigrams (``le_cong``,
``cong_thanh``) which stand in for Vietnamese word segmentation and also work for
questions typed without diacritics. The index is a file next to the Chroma data and is
updated incrementally with the same commit protocol as the vector index.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

from .text import fold

_WORD = re.compile(r"\w+(?:[.,/-]\w+)*", re.UNICODE)

STOPWORDS = set(
    """
    la cua gi nao nhu the nhung cac mot duoc trong cho voi tai ve khi da dang se ai sao vi
    nay do thi khong co phai cung hay hoac tu den ra vao len theo de nen neu con va ma
    bao nhieu rang o tren duoi sau truoc giua nhat rat
    the a an of to in on for with what who whom which when where why how is are was were did
    does do has have had be been by from about at as that this these those and or not it its
    his her their he she they we you i can could should would will say said tell many much
    according there any some
    """.split()
)


def analyse(text: str, bigrams: bool = True) -> list[str]:
    """Index terms of a text."""
    terms: list[str] = []
    prev: str | None = None
    for m in _WORD.finditer(fold(text)):
        w = m.group()
        if re.search(r"[.,/-]", w):
            # a code or number: the whole thing plus its parts
            parts = [p for p in re.split(r"[.,/-]+", w) if p]
            terms.append("_".join(parts))
            terms.extend(parts)
            prev = None
            continue
        w = w.replace("_", "")
        if not w:
            continue
        terms.append(w)
        if bigrams and prev is not None:
            terms.append(f"{prev}_{w}")
        prev = w
    return terms


def query_terms(text: str, strong_only: bool = False) -> list[str]:
    """Unique query terms without stopwords. ``strong_only``: names, numbers and codes only.

    Strong terms are what can match across languages: tokens with digits, and
    capitalised words that are not at the start of the question (names like "Le Cong Thanh").
    """
    out: list[str] = []
    if strong_only:
        words = list(re.finditer(r"\w+(?:[.,/-]\w+)*", text))
        strong_idx = set()
        for i, m in enumerate(words):
            w = m.group()
            if any(ch.isdigit() for ch in w) or (w[:1].isupper() and i > 0 and len(w) > 1) or (w.isupper() and len(w) > 1):
                strong_idx.add(i)
        runs: list[str] = []
        cur: list[str] = []
        for i, m in enumerate(words):
            if i in strong_idx:
                cur.append(m.group())
            elif cur:
                runs.append(" ".join(cur))
                cur = []
        if cur:
            runs.append(" ".join(cur))
        for run in runs:
            for t in analyse(run):
                if t not in STOPWORDS and t not in out:
                    out.append(t)
        return out
    for t in analyse(text):
        if t in STOPWORDS or all(p in STOPWORDS for p in t.split("_")):
            continue
        if t not in out:
            out.append(t)
    return out[:48]


class KeywordIndex:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._conn() as c:
            c.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5("
                "terms, chunk_id UNINDEXED, doc_id UNINDEXED, doc_sha UNINDEXED, "
                "tokenize=\"unicode61 remove_diacritics 0 tokenchars '_'\")"
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def add(self, rows: list[tuple[str, str, str, str]]) -> None:
        """rows: (chunk_id, doc_id, doc_sha, text)."""
        c = self._conn()
        c.execute("BEGIN")
        try:
            c.execute(f"DELETE FROM chunks WHERE chunk_id IN ({','.join('?' * len(rows))})", [r[0] for r in rows]) if rows else None
            c.executemany(
                "INSERT INTO chunks(terms, chunk_id, doc_id, doc_sha) VALUES (?, ?, ?, ?)",
                [(" ".join(analyse(text)), cid, did, sha) for cid, did, sha, text in rows],
            )
            c.execute("COMMIT")
        except Exception:
            c.execute("ROLLBACK")
            raise

    def delete_doc(self, doc_id: str, keep_sha: str | None = None) -> None:
        c = self._conn()
        if keep_sha is None:
            c.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        else:
            c.execute("DELETE FROM chunks WHERE doc_id = ? AND doc_sha != ?", (doc_id, keep_sha))

    def delete_doc_except(self, doc_id: str, keep_ids: set[str]) -> None:
        c = self._conn()
        rows = [r[0] for r in c.execute("SELECT chunk_id FROM chunks WHERE doc_id = ?", (doc_id,))]
        extra = [cid for cid in rows if cid not in keep_ids]
        if extra:
            c.execute(f"DELETE FROM chunks WHERE chunk_id IN ({','.join('?' * len(extra))})", extra)

    def clear(self) -> None:
        self._conn().execute("DELETE FROM chunks")

    def count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM chunks").fetchone()[0])

    def doc_ids(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for did, sha in self._conn().execute("SELECT doc_id, doc_sha FROM chunks"):
            out.setdefault(did, set()).add(sha)
        return out

    def scores_for(self, terms: list[str], chunk_ids: list[str]) -> dict[str, float]:
        """BM25 scores (≥ 0) of the given chunks for ``terms`` (chunks that match none are left out)."""
        if not terms or not chunk_ids:
            return {}
        q = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
        out: dict[str, float] = {}
        for i in range(0, len(chunk_ids), 500):
            part = chunk_ids[i : i + 500]
            rows = self._conn().execute(
                f"SELECT chunk_id, -bm25(chunks) FROM chunks WHERE chunks MATCH ? AND chunk_id IN ({','.join('?' * len(part))})",
                (q, *part),
            ).fetchall()
            out.update((cid, float(s)) for cid, s in rows)
        return out

    def search(self, terms: list[str], k: int) -> list[tuple[str, float]]:
        """(chunk_id, bm25 score ≥ 0, higher is better) for chunks matching any term."""
        if not terms:
            return []
        q = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
        rows = self._conn().execute(
            "SELECT chunk_id, -bm25(chunks) AS s FROM chunks WHERE chunks MATCH ? ORDER BY s DESC LIMIT ?",
            (q, k),
        ).fetchall()
        return [(cid, float(s)) for cid, s in rows]
