"""Vietnamese-aware keyword index: SQLite FTS5 (BM25) over folded syllables and syllable bigrams.

Analysis: lower-case, strip diacritics (đ→d), keep codes and numbers whole
("52-NQ/TW" → ``52_nq_tw`` plus its parts), and add syllable bigrams (``le_cong``,
``cong_thanh``) which stand in for Vietnamese word segmentation and also work for
questions typed without diacritics. The index is a file next to the Chroma data and is
updated incrementally with the same commit protocol as the vector index.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter
from pathlib import Path

from qa.canonical import canonicalise
from qa.text import fold

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


#: Bumped whenever what the index reads changes (:func:`analyse`, or the chunk context of
#: ``qa.index.store.keyword_text``): an index written otherwise is rebuilt from its chunks.
ANALYSER_VERSION = "6"  # 6: "so với kỳ thi … 2021" (words between) is a compared year; 5: "ba quý đầu năm" → "9M" (4: dates without a year → "15/5"; "9 tháng đầu năm" → "9M")
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def analyse(text: str, bigrams: bool = True) -> list[str]:
    """Index terms of a text (constraints first put in one form: :func:`qa.canonical.canonicalise`)."""
    terms: list[str] = []
    prev: str | None = None
    for m in _WORD.finditer(fold(canonicalise(text))):
        w = m.group()
        if re.search(r"[.,/-]", w):
            # a code or number: the whole thing plus its parts
            parts = [p for p in re.split(r"[.,/-]+", w) if p]
            terms.append("_".join(parts))
            terms.extend(parts)
            dmy = _DMY.match(w)
            if dmy:  # a date also names its month: 14/12/2021 answers "tháng 12/2021"
                terms.append(f"{dmy[2]}_{dmy[3]}")
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
        words = list(re.finditer(r"\w+(?:[.,/-]\w+)*", canonicalise(text)))
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
    def __init__(self, path: Path, search_postings: int = 0) -> None:
        self.search_postings = search_postings or SEARCH_POSTINGS
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._conn() as c:
            c.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5("
                "terms, chunk_id UNINDEXED, doc_id UNINDEXED, doc_sha UNINDEXED, "
                "tokenize=\"unicode61 remove_diacritics 0 tokenchars '_'\")"
            )
            # Lookups by chunk / document id go through indexes on the FTS5 content table
            # (FTS5 itself can only scan UNINDEXED columns: 130 ms per lookup at 100k chunks).
            # SQLite maintains them with every FTS5 write; created once on older indexes.
            c.execute("CREATE INDEX IF NOT EXISTS chunks_content_chunk ON chunks_content(c1)")
            c.execute("CREATE INDEX IF NOT EXISTS chunks_content_doc ON chunks_content(c2)")
            c.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            # what the filters read, per document (qa.filters): a filtered search joins on it
            c.execute("CREATE TABLE IF NOT EXISTS doc_attrs (doc_id TEXT PRIMARY KEY, date_from INTEGER, "
                      "date_to INTEGER, outlet_key TEXT, language TEXT)")
            row = c.execute("SELECT v FROM meta WHERE k = 'analyser'").fetchone()
            empty = c.execute("SELECT 1 FROM chunks_content LIMIT 1").fetchone() is None
            if empty:
                c.execute("INSERT OR REPLACE INTO meta(k, v) VALUES ('analyser', ?)", (ANALYSER_VERSION,))
        #: rows analysed by another version of :func:`analyse`: the owner rebuilds them (:meth:`mark_current`)
        self.stale = not empty and (row is None or row[0] != ANALYSER_VERSION)
        self._generation = 0  # bumped by this process's writes (with data_version: the df cache's key)

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
            if rows:
                ids = [r[0] for r in rows]
                c.execute(f"DELETE FROM chunks WHERE rowid IN (SELECT id FROM chunks_content WHERE c1 IN ({','.join('?' * len(ids))}))", ids)
            c.executemany(
                "INSERT INTO chunks(terms, chunk_id, doc_id, doc_sha) VALUES (?, ?, ?, ?)",
                [(" ".join(analyse(text)), cid, did, sha) for cid, did, sha, text in rows],
            )
            c.execute("COMMIT")
        except Exception:
            c.execute("ROLLBACK")
            raise
        finally:
            self._generation += 1

    def set_doc_attrs(self, doc_id: str, fields: dict) -> None:
        """Record a document's filter fields (:func:`qa.filters.filter_fields`)."""
        self._conn().execute(
            "INSERT OR REPLACE INTO doc_attrs(doc_id, date_from, date_to, outlet_key, language) VALUES (?, ?, ?, ?, ?)",
            (doc_id, fields.get("date_from"), fields.get("date_to"), fields.get("outlet_key"), fields.get("doc_language")),
        )

    def doc_attrs_count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM doc_attrs").fetchone()[0])

    def delete_doc(self, doc_id: str, keep_sha: str | None = None) -> None:
        c = self._conn()
        if keep_sha is None:
            c.execute("DELETE FROM chunks WHERE rowid IN (SELECT id FROM chunks_content WHERE c2 = ?)", (doc_id,))
            c.execute("DELETE FROM doc_attrs WHERE doc_id = ?", (doc_id,))
        else:
            c.execute("DELETE FROM chunks WHERE rowid IN (SELECT id FROM chunks_content WHERE c2 = ? AND c3 != ?)", (doc_id, keep_sha))
        self._generation += 1

    def delete_doc_except(self, doc_id: str, keep_ids: set[str]) -> None:
        c = self._conn()
        rows = c.execute("SELECT id, c1 FROM chunks_content WHERE c2 = ?", (doc_id,)).fetchall()
        extra = [rid for rid, cid in rows if cid not in keep_ids]
        if extra:
            c.execute(f"DELETE FROM chunks WHERE rowid IN ({','.join('?' * len(extra))})", extra)
        self._generation += 1

    def clear(self) -> None:
        self._conn().execute("DELETE FROM chunks")
        self._conn().execute("DELETE FROM doc_attrs")
        self._generation += 1

    def mark_current(self) -> None:
        """Record that every row is analysed by this version (after a rebuild)."""
        self._conn().execute("INSERT OR REPLACE INTO meta(k, v) VALUES ('analyser', ?)", (ANALYSER_VERSION,))
        self.stale = False

    def count(self) -> int:
        return self._totals()[0]

    def doc_ids(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for did, sha in self._conn().execute("SELECT doc_id, doc_sha FROM chunks"):
            out.setdefault(did, set()).add(sha)
        return out

    # ------------------------------------------------------------------ BM25
    # Scores are FTS5's own bm25() (k1 = 1.2, b = 0.75, same idf floor), computed here from
    # FTS5's statistics (row count and token total from its "averages" record, document
    # frequencies from fts5vocab, row lengths from its docsize table) so that a score can
    # be had for any given chunk without evaluating the whole MATCH (which, for common
    # syllables, touches most of a large index). tests/test_retrieval.py checks equality.

    def _totals(self) -> tuple[int, int]:
        """(rows, tokens in the terms column), from FTS5's averages record (rowid 1 of %_data)."""
        row = self._conn().execute("SELECT block FROM chunks_data WHERE id = 1").fetchone()
        if not row or not row[0]:
            return 0, 0
        n, i = _varint(row[0], 0)
        tokens, _ = _varint(row[0], i) if i < len(row[0]) else (0, i)
        return int(n), int(tokens)

    def _df(self, terms: list[str], totals: tuple[int, int] | None = None) -> dict[str, int]:
        """Rows containing each term (cached until the index changes)."""
        c = self._conn()
        # per thread, like the connection: PRAGMA data_version is a per-connection counter
        local = self._local
        key = (totals or self._totals(), self._generation, c.execute("PRAGMA data_version").fetchone()[0])
        cache = getattr(local, "df", None)
        if cache is None or getattr(local, "df_key", None) != key or len(cache) > 100_000:
            cache = local.df = {}
            local.df_key = key
        todo = [t for t in terms if t not in cache]
        if todo:
            c.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab USING fts5vocab(main, chunks, 'row')")
            for t in todo:
                got = c.execute("SELECT doc FROM temp.chunks_vocab WHERE term = ?", (t,)).fetchone()
                cache[t] = int(got[0]) if got else 0
        return {t: cache[t] for t in terms}

    def _score_rows(self, terms: list[str], rowids: list[int], stats: tuple | None = None) -> dict[int, float]:
        """BM25 of these rows; ``stats`` = (totals, df) when the caller already has them."""
        totals, df = stats or (self._totals(), None)
        n_rows, n_tokens = totals
        if not n_rows or not rowids:
            return {}
        df = df if df is not None else self._df(terms, totals)
        idf = {t: max(math.log((n_rows - n + 0.5) / (n + 0.5)), 1e-6) for t, n in df.items() if n > 0}
        if not idf:
            return {}
        avgdl = n_tokens / n_rows if n_tokens else 1.0
        c = self._conn()
        out: dict[int, float] = {}
        for i in range(0, len(rowids), 500):
            part = rowids[i : i + 500]
            marks = ",".join("?" * len(part))
            for rid, text, sz in c.execute(
                f"SELECT c.id, c.c0, d.sz FROM chunks_content c JOIN chunks_docsize d ON d.id = c.id WHERE c.id IN ({marks})", part
            ):
                dl = _varint(sz, 0)[0] if sz else 0
                counts = Counter(t for t in (text or "").split() if t in idf)
                if not counts:
                    continue
                norm = BM25_K1 * (1 - BM25_B + BM25_B * dl / avgdl)
                out[rid] = sum(idf[t] * f * (BM25_K1 + 1) / (f + norm) for t, f in counts.items())
        return out

    def _rowids(self, chunk_ids: list[str]) -> dict[int, str]:
        out: dict[int, str] = {}
        c = self._conn()
        for i in range(0, len(chunk_ids), 500):
            part = chunk_ids[i : i + 500]
            out.update(c.execute(f"SELECT id, c1 FROM chunks_content WHERE c1 IN ({','.join('?' * len(part))})", part).fetchall())
        return out

    def scores_for(self, terms: list[str], chunk_ids: list[str]) -> dict[str, float]:
        """BM25 scores (≥ 0) of the given chunks for ``terms`` (chunks that match none are left out)."""
        terms = list(dict.fromkeys(t for t in terms if t))
        if not terms or not chunk_ids:
            return {}
        rid = self._rowids(list(dict.fromkeys(chunk_ids)))
        return {rid[r]: s for r, s in self._score_rows(terms, list(rid)).items()}

    def search(self, terms: list[str], k: int, filters=None) -> list[tuple[str, float]]:
        """(chunk_id, bm25 score ≥ 0, higher is better) for the best chunks matching any term.

        Exact BM25 top-k while the query's terms occur in at most ``search_postings`` rows in
        all (default 20,000). Beyond that (common syllables in a large archive), candidates
        come from the query's rarest terms only (those carry nearly all of the idf) and are then scored
        with all terms: at 100k chunks this keeps a search in tens of milliseconds instead of
        hundreds, and the chunks it can miss are those that match none of the rare terms.

        ``filters`` (:class:`qa.filters.Filters`) restrict the matches to the documents whose
        recorded fields pass, inside the query: the top k are the best k that pass.
        """
        terms = list(dict.fromkeys(t for t in terms if t))
        if not terms:
            return []
        totals = self._totals()
        df = self._df(terms, totals)
        live = sorted((t for t in terms if df[t] > 0), key=lambda t: (df[t], t))
        if not live:
            return []
        gen, total = [], 0
        for t in live:
            if gen and total + df[t] > self.search_postings:
                break
            gen.append(t)
            total += df[t]
        pruned = len(gen) < len(live)
        q = " OR ".join('"' + t.replace('"', "") + '"' for t in gen)
        limit = max(3 * k, 100) if pruned else k
        cond, args = filter_sql(filters)
        rows = self._conn().execute(
            f"SELECT rowid, chunk_id FROM chunks WHERE chunks MATCH ?{cond} ORDER BY bm25(chunks) LIMIT ?",
            (q, *args, limit),
        ).fetchall()
        ids = dict(rows)
        scores = self._score_rows(live, list(ids), (totals, {t: df[t] for t in live}))
        best = sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:k]
        return [(ids[r], float(s)) for r, s in best]


def filter_sql(filters) -> tuple[str, list]:
    """The filters as a condition on the FTS5 ``doc_id`` column (" AND doc_id IN (…)"), and its arguments."""
    if not filters:
        return "", []
    from qa.filters import day_int

    where, args = [], []
    dates = []
    if filters.since:
        dates.append("date_to >= ?")
        args.append(day_int(filters.since))
    if filters.until:
        dates.append("date_from <= ?")
        args.append(day_int(filters.until))
    if dates:
        cond = " AND ".join(dates)
        where.append(f"(({cond}) OR date_from IS NULL)" if filters.keep_undated else cond)
    keys = list(filters.outlet_keys)
    if keys:
        where.append(f"outlet_key IN ({','.join('?' * len(keys))})")
        args += keys
    if filters.languages:
        where.append(f"language IN ({','.join('?' * len(filters.languages))})")
        args += list(filters.languages)
    if not where:
        return "", []
    return f" AND doc_id IN (SELECT doc_id FROM doc_attrs WHERE {' AND '.join(where)})", args


BM25_K1 = 1.2
BM25_B = 0.75
SEARCH_POSTINGS = 20_000  # postings a keyword search may visit before it uses only the rarest terms


def _varint(b: bytes, i: int) -> tuple[int, int]:
    """SQLite's varint (as FTS5 stores sizes and totals): value, next offset."""
    v = 0
    for _ in range(8):
        c = b[i]
        i += 1
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            return v, i
    return (v << 8) | b[i], i + 1
