"""The index: two Chroma collections, embedded (``QA_INDEX_DIR``) or on a server (``QA_CHROMA_URL``).

* ``<name>_chunks`` — one record per chunk: vector, text, metadata (doc id, title, offsets…).
  Its collection metadata records the embedder (backend, model, dimension).
* ``<name>_docs`` — one record per document: cleaned text + metadata (sha256, source…).
  Writing this record is the commit point of a document.

A document is written as: add its new chunks (ids contain the content hash), upsert its doc
record, then delete the chunks of its previous version. Readers only trust chunks whose
content hash matches the committed doc record, so a crash at any point leaves every document
either in its old or in its new version, never half-written; the next ingest removes the
leftovers (see the journal).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from qa.config import Settings
from qa.schema import Chunk, Document
from qa.index.keyword import KeywordIndex

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
# what chunk metadata holds beyond the chunker's output: 2–3 = the filter fields (qa.filters) and
# the duplicate group, 4 = the year; an older index gets them written in place once (no re-embedding)
FIELDS_VERSION = 9  # 9: the year compared with may follow a few words ("so với kỳ thi … 2021"); 8: the year compared with ("so với năm 2022") is not stated; 7: "cùng kỳ 2018" also states 2019; 6: "ba quý đầu năm"
_MAX_BATCH = 2000
POOL_WIDTH = 40  # language_pools: one search of ids this many times wider than a pool


class StoreError(RuntimeError):
    pass


class EmbedderMismatch(StoreError):
    pass


@dataclass
class DocRecord:
    id: str
    title: str
    source: str
    sha256: str
    n_chunks: int
    author: str | None = None
    date: str | None = None
    ingested_at: float = 0.0
    chunker: str = ""
    language: str | None = None
    outlet: str | None = None
    group: str | None = None  # the syndicated/translated duplicates it belongs to (qa.ingest.duplicates)

    def as_json(self) -> dict:
        """What ``qa docs list --json`` and ``/api/documents`` print for a document."""
        return {"id": self.id, "title": self.title, "published": self.date, "outlet": self.outlet,
                "author": self.author, "language": self.language, "source": self.source, "chunks": self.n_chunks,
                "group": self.group, "sha256": self.sha256, "ingested_at": self.ingested_at}

    def reference(self) -> dict:
        """How an answer names this article ("also reported by")."""
        return {"doc_id": self.id, "title": self.title, "outlet": self.outlet, "published": self.date,
                "language": self.language, "source": self.source}

    @classmethod
    def from_meta(cls, doc_id: str, meta: dict) -> "DocRecord":
        return cls(
            id=doc_id,
            title=meta.get("title", doc_id),
            source=meta.get("source", ""),
            sha256=meta.get("sha256", ""),
            n_chunks=int(meta.get("n_chunks", 0)),
            author=meta.get("author"),
            date=meta.get("date"),
            ingested_at=float(meta.get("ingested_at", 0.0)),
            chunker=str(meta.get("chunker", "")),
            language=meta.get("language"),
            outlet=meta.get("outlet"),
            group=meta.get("group"),
        )


@dataclass
class Hit:
    chunk_id: str
    text: str
    meta: dict
    score: float  # cosine similarity
    extra: dict = field(default_factory=dict)

    @property
    def doc_id(self) -> str:
        return self.meta["doc_id"]


def chunker_signature(settings: Settings) -> str:
    """What decides a document's chunks and passage texts: a change means re-chunking."""
    # the last part versions what chunk metadata holds ("l": the chunk's language, "h": outlet and
    # publication date from the header lines, which are no longer body text): an index
    # written before it re-chunks each document once, on its next ingest
    return f"{settings.chunk_tokens}/{settings.chunk_overlap}/{settings.tokenizer}/{int(settings.embed_title)}/lh"


def keyword_text(text: str, meta: dict) -> str:
    """What the keyword index reads for a chunk: the article's title, outlet and publication date
    are context of every body chunk (a question naming the year or the outlet finds the chunks of
    an article whose text does not repeat them)."""
    if meta.get("kind", "body") != "body":
        return text
    title = meta.get("title") or ""
    context = [title] if title and not text.startswith(title) else []
    context += [x for x in (meta.get("outlet"), published_words(meta.get("date"))) if x]
    return "\n".join([*context, text]) if context else text


def published_words(date: str | None) -> str:
    """A publication date as the text form the keyword index reads: "2024-10-15" → "15/10/2024"."""
    parts = (date or "").split("-")
    if len(parts) == 3:
        return f"{int(parts[2])}/{int(parts[1])}/{parts[0]}"
    if len(parts) == 2:
        return f"{int(parts[1])}/{parts[0]}"
    return parts[0] if parts[0].isdigit() else ""


def open_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=True)
    if settings.chroma_url:
        u = urlparse(settings.chroma_url if "://" in settings.chroma_url else f"http://{settings.chroma_url}")
        try:
            return chromadb.HttpClient(
                host=u.hostname or "localhost",
                port=u.port or (443 if u.scheme == "https" else 8000),
                ssl=u.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:
            raise StoreError(f"cannot reach the Chroma server at {settings.chroma_url}: {exc}") from exc
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)


def _is_committed(h: Hit, known: dict) -> bool:
    rec = known.get(h.meta.get("doc_id", ""), ("?", 0))
    # same content hash and a position within the committed chunk count (beyond it: a
    # leftover of an interrupted re-chunk)
    return rec is not None and rec[0] == h.meta.get("doc_sha256") and int(h.meta.get("position", 0)) < rec[1]


class Store:
    def __init__(self, settings: Settings, embedder_info: dict, *, create: bool = True) -> None:
        self.settings = settings
        self.embedder_info = embedder_info
        self.client = open_client(settings)
        self.chunks_name = f"{settings.collection}_chunks"
        self.docs_name = f"{settings.collection}_docs"
        self._manifest: dict[str, DocRecord] | None = None
        self._languages: dict[str | None, int] | None = None  # documents per language, kept with the manifest
        self._committed: dict[str, tuple[str, int] | None] = {}  # doc id → (sha256, n_chunks) as last seen; None: no record
        self.short_searches = 0  # dense searches Chroma answered short (see query)
        self.short_unresolved = 0  # … of which too many chunks passed to search them exactly
        self.pool_searches = 0  # languages searched on their own (see language_pools)
        self._lang_ids: dict[tuple[str, int], tuple | None] = {}  # (language, chunks in the index) → (ids, vectors)
        self._passing: dict[tuple[str, int], list[str]] = {}  # (a where, chunks in the index) → the ids it lets through
        # chunk id → its vector (float16), for exact searches among a filter's chunks: a chunk id
        # names one version of one document (doc:sha:position), so a kept vector never goes stale
        self._vectors: dict[str, np.ndarray] = {}
        self._vectors_lock = threading.Lock()
        self._open(create)

    # ------------------------------------------------------------------ opening
    def _open(self, create: bool) -> None:
        existing = {c if isinstance(c, str) else c.name for c in self.client.list_collections()}
        if self.chunks_name in existing:
            self.chunks = self.client.get_collection(self.chunks_name, embedding_function=None)
            self._check_embedder(self.chunks.metadata or {})
        elif create:
            info = self.embedder_info
            self.chunks = self.client.create_collection(
                self.chunks_name,
                embedding_function=None,
                metadata={
                    "embedder_backend": info["backend"],
                    "embedder_model": info["model"],
                    "embedder_dim": int(info["dim"] or 0),
                    "schema": SCHEMA_VERSION,
                    "fields": FIELDS_VERSION,
                },
                configuration={"hnsw": {"space": "cosine"}},
            )
        else:
            raise StoreError(
                f"no index found at {self.location}: run `qa ingest data/articles` (or your folder) first"
            )
        self.docs = self.client.get_or_create_collection(self.docs_name, embedding_function=None)
        self.keyword = KeywordIndex(self.settings.index_dir / f"{self.settings.collection}.keywords.sqlite")
        if int((self.chunks.metadata or {}).get("fields", 1)) < FIELDS_VERSION:
            self._upgrade_fields()
        if self.keyword.stale:
            # analysed by an older version (see keyword.ANALYSER_VERSION): rebuild from Chroma once
            self.keyword.clear()
            self._backfill_keyword()
            self.keyword.mark_current()
        elif self.keyword.count() == 0 and self.chunks.count() > 0:
            self._backfill_keyword()
        elif self.settings.chroma_url:
            # server mode: this replica's keyword index may lag ingests run elsewhere
            self.sync_keyword_index()
        if self.keyword.doc_attrs_count() == 0 and self.docs.count() > 0:
            self._backfill_doc_attrs()  # a keyword index written before the filters

    def _upgrade_fields(self) -> None:
        """An index written before the filter fields: add them to every chunk's metadata in place."""
        from qa.constraints import encode, stated
        from qa.filters import filter_fields

        man = self.manifest(refresh=True)
        offset, page = 0, 2000
        while True:
            got = self.chunks.get(include=["metadatas", "documents"], limit=page, offset=offset)
            if not got["ids"]:
                break
            metas = []
            for m, text in zip(got["metadatas"], got["documents"]):
                m = dict(m or {})
                rec = man.get(m.get("doc_id", ""))
                m.update(filter_fields(m.get("date"), m.get("outlet"), (rec.language if rec else None) or m.get("language")))
                # what the chunk states, read again: dates without a year ("ngày 15.5") count since fields 5
                m["facts"] = encode(stated(text or "", (m.get("title") or "") if m.get("kind", "body") == "body" else ""))
                metas.append(m)
            self.chunks.update(ids=got["ids"], metadatas=metas)
            offset += len(got["ids"])
        for rec in man.values():
            self.keyword.set_doc_attrs(rec.id, filter_fields(rec.date, rec.outlet, rec.language))
        self.chunks.modify(metadata={**(self.chunks.metadata or {}), "fields": FIELDS_VERSION})

    def _backfill_keyword(self) -> None:
        """A keyword index is missing (new replica, older index): rebuild it from Chroma once."""
        offset, page = 0, 5000
        while True:
            got = self.chunks.get(include=["documents", "metadatas"], limit=page, offset=offset)
            if not got["ids"]:
                break
            self.keyword.add([(i, (m or {}).get("doc_id", ""), (m or {}).get("doc_sha256", ""), keyword_text(t or "", m or {}))
                              for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])])
            offset += len(got["ids"])
        self._backfill_doc_attrs()

    def _backfill_doc_attrs(self) -> None:
        from qa.filters import filter_fields

        for rec in self.manifest(refresh=True).values():
            self.keyword.set_doc_attrs(rec.id, filter_fields(rec.date, rec.outlet, rec.language))

    def sync_keyword_index(self) -> dict[str, int]:
        """Bring the local keyword index in line with the committed documents in Chroma.

        Adds the chunks of documents it lacks (or holds at another version), drops rows of
        documents that are no longer committed. Cheap when nothing changed (the manifest
        and one grouped scan of the keyword index).
        """
        from filelock import FileLock, Timeout

        # never while an ingest writes through this folder (its uncommitted rows would look stale)
        lock = FileLock(str(self.settings.index_dir / f".{self.settings.collection}.lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return {"added": 0, "removed": 0, "skipped": 1}
        try:
            return self._sync_keyword_index()
        finally:
            lock.release()

    def _sync_keyword_index(self) -> dict[str, int]:
        have = self.keyword.doc_ids()  # doc id → content hashes present
        man = self.manifest(refresh=True)
        stale = [d for d, rec in man.items() if have.get(d) != {rec.sha256}]
        gone = [d for d in have if d not in man]
        for d in gone:
            self.keyword.delete_doc(d)
        if stale:
            from qa.filters import filter_fields
        for d in stale:
            rec = man[d]
            self.keyword.set_doc_attrs(d, filter_fields(rec.date, rec.outlet, rec.language))
            got = self.chunks.get(where={"$and": [{"doc_id": d}, {"doc_sha256": rec.sha256}]}, include=["documents", "metadatas"])
            rows = [(i, d, rec.sha256, keyword_text(t or "", m or {})) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])
                    if int((m or {}).get("position", 0)) < rec.n_chunks]
            self.keyword.add(rows)
            self.keyword.delete_doc_except(d, {r[0] for r in rows})
        return {"added": len(stale), "removed": len(gone)}

    @property
    def location(self) -> str:
        return self.settings.chroma_url or str(self.settings.index_dir)

    def _check_embedder(self, meta: dict) -> None:
        info = self.embedder_info
        got = (meta.get("embedder_backend"), meta.get("embedder_model"))
        want = (info["backend"], info["model"])
        dim_ok = not info.get("dim") or not meta.get("embedder_dim") or int(meta["embedder_dim"]) == int(info["dim"])
        if got != want or not dim_ok:
            raise EmbedderMismatch(
                f"the index at {self.location} was built with embeddings "
                f"{got[0]}:{got[1]} ({meta.get('embedder_dim')}-d), but {want[0]}:{want[1]} "
                f"({info.get('dim')}-d) is configured. Use the same --embeddings, or re-ingest "
                "with --rebuild to re-embed everything with the new model."
            )

    def stored_embedder(self) -> dict:
        meta = self.chunks.metadata or {}
        return {"backend": meta.get("embedder_backend"), "model": meta.get("embedder_model"), "dim": meta.get("embedder_dim")}

    def rebuild(self) -> None:
        """Drop everything in this index (both collections) and start empty."""
        for name in (self.chunks_name, self.docs_name):
            try:
                self.client.delete_collection(name)
            except Exception:
                pass
        self._manifest = None
        self._committed = {}
        self._lang_ids = {}
        self._passing = {}
        KeywordIndex(self.settings.index_dir / f"{self.settings.collection}.keywords.sqlite").clear()
        self._open(create=True)

    # ------------------------------------------------------------------ reading
    def manifest(self, refresh: bool = False) -> dict[str, DocRecord]:
        if self._manifest is None or refresh:
            man: dict[str, DocRecord] = {}
            offset, page = 0, 5000  # paged: one response per 5k documents, however large the archive
            while True:
                got = self.docs.get(include=["metadatas"], limit=page, offset=offset)
                man.update((i, DocRecord.from_meta(i, m or {})) for i, m in zip(got["ids"], got["metadatas"]))
                if len(got["ids"]) < page:
                    break
                offset += page
            self._manifest = man
            self._languages = None
        return self._manifest

    def document_text(self, doc_id: str) -> str | None:
        got = self.docs.get(ids=[doc_id], include=["documents"])
        return got["documents"][0] if got["ids"] else None

    def count_chunks(self) -> int:
        return self.chunks.count()

    def languages(self) -> dict[str | None, int]:
        """Documents per language (None: indexed before languages were recorded). Counted once
        per manifest and kept up to date by this store's writes: asked on every question."""
        man = self.manifest()
        if self._languages is None:
            out: dict[str | None, int] = {}
            for rec in man.values():
                out[rec.language] = out.get(rec.language, 0) + 1
            self._languages = out
        return dict(self._languages)

    def _count_language(self, old: DocRecord | None, new: DocRecord | None) -> None:
        if self._languages is None:
            return
        for rec, step in ((old, -1), (new, 1)):
            if rec is not None:
                n = self._languages.get(rec.language, 0) + step
                if n > 0:
                    self._languages[rec.language] = n
                else:
                    self._languages.pop(rec.language, None)

    def language_pools(self, vector: np.ndarray, k: int, languages: list[str], filters=None) -> dict[str, list[Hit]]:
        """The ``k`` nearest committed chunks of each passage language.

        In Chroma 1.5 a ``where`` on the language costs about 40 ms a search at 10k chunks (its
        metadata is scanned), a search of ids alone about 2–4 ms. So one unfiltered search,
        ``POOL_WIDTH`` times wider than a pool, serves every language: the ids are read in
        order, their document's language (the manifest) sends each to a pool, and only the
        pools' chunks are read and regrouped by their own language. A language still short of
        ``k`` (a small minority of the archive, ranked below the others by a same-language
        bias) is searched exactly among its chunks (their ids and vectors kept in memory, up to
        ``QA_EXACT_SEARCH_MAX``; beyond that, by Chroma with the ``where``). Under a user's
        filter each language's chunks that pass are searched exactly (their ids kept per filter,
        their vectors in the filters' cache); a filter that lets more through than
        ``QA_EXACT_SEARCH_MAX``, by Chroma with the ``where``. Own searches are counted in
        ``pool_searches``."""
        if filters:
            self.pool_searches += len(languages)
            limit = self.settings.exact_search_max
            qv = np.asarray(vector, dtype=np.float32)
            out: dict[str, list[Hit]] = {}
            for lang in languages:
                full = filters.index_where({"language": lang})
                passing = self._passing_ids(full) if limit else []
                if limit and len(passing) <= limit:
                    out[lang] = self.exact_search(qv, passing, k, None if filters.exact_years else filters)
                else:
                    out[lang] = self.query(vector, k, where={"language": lang}, filters=filters)
            return out
        wide = POOL_WIDTH * k + 16
        qv = np.asarray(vector, dtype=np.float32)
        res = self.chunks.query(query_embeddings=[qv.tolist()], n_results=wide, include=["distances"])
        ids, dists = res["ids"][0], res["distances"][0]
        seen_all = len(ids) < wide
        man = self.manifest()
        # a chunk's language is mostly its document's: take a margin of each, then check
        take = k + k // 2
        picked: dict[str | None, int] = {}
        score: dict[str, float] = {}
        skipped: set[str | None] = set()  # the buckets that had more than ``take``
        for cid, dist in zip(ids, dists):
            rec = man.get(cid.rsplit(":", 2)[0])
            lang = rec.language if rec is not None and rec.language in languages else None
            if picked.get(lang, 0) < take:
                picked[lang] = picked.get(lang, 0) + 1
                score[cid] = 1.0 - float(dist)
            else:
                skipped.add(lang)
        got = self.get_chunks(list(score))
        for h in got:
            h.score = score[h.chunk_id]
        good = self.committed(got)
        out: dict[str, list[Hit]] = {}
        for lang in languages:
            mine = sorted((h for h in good if h.meta.get("language") == lang), key=lambda h: -h.score)
            # complete when all of the index came back and none of this language was left unread
            if len(mine) >= k or (seen_all and lang not in skipped and None not in skipped):
                out[lang] = mine[:k]
                continue
            self.pool_searches += 1
            kept = self._language_vectors(lang)
            if kept is None:
                out[lang] = self.query(vector, k, where={"language": lang})
            else:
                out[lang] = self.exact_search(qv, kept[0], k, vectors=kept)
        return out

    def _language_vectors(self, lang: str) -> tuple[list[str], np.ndarray] | None:
        """The ids and vectors of the chunks of one language (None: more than
        ``QA_EXACT_SEARCH_MAX``), kept while the number of chunks in the index stays the same
        (this store's own writes clear them)."""
        n = self.count_chunks()
        key = (lang, n)
        if key not in self._lang_ids:
            self._lang_ids = {kk: v for kk, v in self._lang_ids.items() if kk[1] == n}
            ids = self._passing_ids({"language": lang}) if self.settings.exact_search_max else []
            self._lang_ids[key] = (self.chunk_vectors(ids, keep=False)  # kept here once, not also in the filters' cache
                                   if ids and len(ids) <= self.settings.exact_search_max else None)
        return self._lang_ids[key]

    def query(self, vector: np.ndarray, k: int, where: dict | None = None, filters=None) -> list[Hit]:
        """The ``k`` nearest committed chunks (cosine), optionally among those matching ``where``
        and the :class:`qa.filters.Filters` (applied by Chroma, before its top k: the dates as
        whole years, the day bounds checked here on what comes back).

        Chroma's HNSW search with a ``where`` can come back short, even empty, when the
        chunks that pass lie far from the question in the graph (measured at 100k chunks in
        ``bench/query.py``: a sixth of the filtered searches). When a user's or a question's
        filter came back short, the chunks that pass are read (up to ``QA_EXACT_SEARCH_MAX``)
        and, if more pass than came back, searched exactly (:meth:`exact_search`); beyond that
        many, the short answer stands (counted in ``short_unresolved``). The per-language
        pools without a filter are left as Chroma answers them."""
        exact = not filters or filters.exact_years
        full = filters.index_where(where) if filters else where
        # ask for a margin more: chunks of an uncommitted write are dropped below; when such
        # leftovers crowd the results (a crashed ingest not yet repaired), widen the search
        fetch = 2 * k + 16
        qv = [np.asarray(vector, dtype=np.float32).tolist()]
        extra = {"where": full} if full else {}
        while True:
            res = self.chunks.query(query_embeddings=qv, n_results=fetch, include=["documents", "metadatas", "distances"], **extra)
            hits = [
                Hit(cid, text or "", meta or {}, 1.0 - float(dist))
                for cid, text, meta, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])
            ]
            got = len(hits)
            if not exact:
                hits = [h for h in hits if filters.matches(h.meta)]
            good = self.committed(hits)
            if len(good) >= k:
                return good[:k]
            if not exact and got == fetch and self.settings.exact_search_max:
                # day bounds inside the years cut the answer short: rather than asking Chroma for
                # ever more, search the year filter's chunks exactly (their vectors are kept)
                passing = self._passing_ids(full)
                if len(passing) <= self.settings.exact_search_max:
                    return self.exact_search(np.asarray(vector, dtype=np.float32), passing, k, filters)
            if got < fetch:
                if filters and got < k:
                    limit = self.settings.exact_search_max
                    passing = self._passing_ids(full) if limit else []
                    if len(passing) > got or len(passing) > limit:
                        self.short_searches += 1
                        if len(passing) <= limit:
                            return self.exact_search(np.asarray(vector, dtype=np.float32), passing, k, filters if not exact else None)
                        self.short_unresolved += 1
                return good[:k]
            fetch *= 4

    def _passing_ids(self, where: dict | None) -> list[str]:
        """The ids of the chunks ``where`` lets through, at most one more than ``QA_EXACT_SEARCH_MAX``
        (ids only: 30 ms for 9k chunks at 100k, against 250 ms with their vectors). Kept while
        the number of chunks stays the same (this store's writes clear them): a user's filter
        is asked again at every question."""
        key = (json.dumps(where, sort_keys=True, default=str), self.count_chunks())
        got = self._passing.get(key)
        if got is None:
            got = self.chunks.get(where=where, include=[], limit=self.settings.exact_search_max + 1)["ids"]
            if len(self._passing) >= 16:
                self._passing = {}
            self._passing[key] = got
        return list(got)

    def chunk_vectors(self, ids: list[str], keep: bool = True) -> tuple[list[str], np.ndarray]:
        """The vectors of these chunks (those still there), from memory when read before: a
        filter's chunks are read from Chroma once, not at every question (reading 9k vectors
        costs about 250 ms at 100k chunks; their ids alone, 30 ms). At most
        ``QA_VECTOR_CACHE_MAX`` vectors are kept; ``keep=False``: read, not kept (the caller
        keeps the matrix)."""
        with self._vectors_lock:
            missing = [i for i in ids if i not in self._vectors]
        got: dict[str, np.ndarray] = {}
        for start in range(0, len(missing), _MAX_BATCH):
            part = self.chunks.get(ids=missing[start : start + _MAX_BATCH], include=["embeddings"])
            for cid, vec in zip(part["ids"], part["embeddings"]):
                got[cid] = np.asarray(vec, dtype=np.float16)
        with self._vectors_lock:
            cap = self.settings.vector_cache_max
            if keep and len(self._vectors) + len(got) > cap:
                self._vectors.clear()  # simple and bounded: the next filters fill it again
            if keep and len(got) <= cap:
                self._vectors.update(got)
            have = [(i, self._vectors.get(i, got.get(i))) for i in ids]
        have = [(i, v) for i, v in have if v is not None]
        if not have:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [i for i, _ in have], np.stack([v for _, v in have]).astype(np.float32)

    def exact_search(self, vector: np.ndarray, passing: list[str], k: int, filters=None,
                     vectors: tuple[list[str], np.ndarray] | None = None) -> list[Hit]:
        """The ``k`` nearest committed chunks among ``passing`` (chunk ids), by brute force: the
        fallback when the HNSW search came back short. ``vectors``: their ids and vectors, when
        already at hand."""
        ids, vecs = vectors if vectors is not None else self.chunk_vectors(list(passing))
        if not ids:
            return []
        sims = vecs @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-sims, kind="stable")
        step = 4 * k + 16 if filters else k + 8  # a filter's day bounds drop some of what comes back
        out: list[Hit] = []
        for start in range(0, len(order), step):
            part = order[start : start + step]
            hits = self.get_chunks([ids[i] for i in part])
            score = {ids[i]: float(sims[i]) for i in part}
            for h in hits:
                h.score = score[h.chunk_id]
            if filters:
                hits = [h for h in hits if filters.matches(h.meta)]
            out += self.committed(hits)
            if len(out) >= k:
                break
        return out[:k]

    def keyword_search(self, terms: list[str], k: int, filters=None) -> list[Hit]:
        fetch = 2 * k + 16
        while True:
            found = self.keyword.search(terms, fetch, filters)
            hits = self.get_chunks([cid for cid, _ in found])
            scores = dict(found)
            for h in hits:
                h.score = scores[h.chunk_id]
            good = self.committed(hits)
            if len(good) >= k or len(found) < fetch:
                return good[:k]
            fetch *= 4

    def keyword_scores(self, terms: list[str], ids: list[str]) -> dict[str, float]:
        """BM25 scores of specific chunks (for candidates found by the dense side only)."""
        return self.keyword.scores_for(terms, ids)

    def get_chunks(self, ids: list[str]) -> list[Hit]:
        if not ids:
            return []
        got = self.chunks.get(ids=ids, include=["documents", "metadatas"])
        by_id = {i: Hit(i, t or "", m or {}, 0.0) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])}
        return [by_id[i] for i in ids if i in by_id]

    def chunk_texts_and_titles(self, doc_ids: list[str]) -> tuple[list[str], list[str]]:
        """Texts of the committed chunks of these documents, and the titles of their body
        chunks' documents (once each), from one read."""
        if not doc_ids:
            return [], []
        where = {"doc_id": doc_ids[0]} if len(doc_ids) == 1 else {"doc_id": {"$in": list(doc_ids)}}
        got = self.chunks.get(where=where, include=["documents", "metadatas"])
        hits = self.committed([Hit(i, t or "", m or {}, 0.0) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])])
        titles = dict.fromkeys(str(h.meta["title"]) for h in hits if h.meta.get("kind", "body") == "body" and h.meta.get("title"))
        return [h.text for h in hits], list(titles)

    def committed(self, hits: list[Hit]) -> list[Hit]:
        """Keep only chunks of the committed version of their document (its hash, its positions).

        Looks up only the documents these hits belong to (cached per process; a hit whose
        version differs from the cached one is checked again, since another process may
        have committed meanwhile): no full manifest per query, however large the archive.
        """
        known = self._committed
        stale = {h.meta.get("doc_id", "") for h in hits if not _is_committed(h, known)}
        if stale:
            if len(known) > 200_000:
                known.clear()
            got = self.docs.get(ids=sorted(stale), include=["metadatas"])
            for d in stale:
                known[d] = None
            for d, m in zip(got["ids"], got["metadatas"]):
                known[d] = ((m or {}).get("sha256"), int((m or {}).get("n_chunks", 0)))
        return [h for h in hits if _is_committed(h, known)]

    # ------------------------------------------------------------------ writing
    def write_document(self, doc: Document, chunks: list[Chunk], vectors: np.ndarray) -> None:
        self._lang_ids = {}  # the languages' chunk ids change
        self._passing = {}
        if len(chunks) != len(vectors):
            raise StoreError("chunks and vectors differ in length")
        if vectors.size and self.chunks.metadata and self.chunks.metadata.get("embedder_dim") and vectors.shape[1] != int(self.chunks.metadata["embedder_dim"]):
            raise EmbedderMismatch(f"vectors are {vectors.shape[1]}-d but the index holds {self.chunks.metadata['embedder_dim']}-d ones; use --rebuild")
        from qa.filters import filter_fields

        if "group" not in doc.meta:  # a new version stays in its duplicate group until regrouped
            prev = self.docs.get(ids=[doc.id], include=["metadatas"])
            if prev["ids"] and (prev["metadatas"][0] or {}).get("group"):
                doc.meta["group"] = prev["metadatas"][0]["group"]
        self._journal("begin", doc.id)
        self.keyword.add([(c.id, doc.id, doc.sha256, keyword_text(c.text, c.metadata(doc))) for c in chunks])
        self.keyword.set_doc_attrs(doc.id, filter_fields(doc.date, doc.outlet, doc.language))
        for k in range(0, len(chunks), _MAX_BATCH):
            part = chunks[k : k + _MAX_BATCH]
            self.chunks.upsert(
                ids=[c.id for c in part],
                embeddings=vectors[k : k + _MAX_BATCH].tolist(),
                documents=[c.text for c in part],
                metadatas=[c.metadata(doc) for c in part],
            )
        meta = {
            "title": doc.title,
            "source": doc.source,
            "sha256": doc.sha256,
            "n_chunks": len(chunks),
            "body_end": doc.body_end,
            "ingested_at": time.time(),
            "chunker": chunker_signature(self.settings),
        }
        if doc.author:
            meta["author"] = doc.author
        if doc.date:
            meta["date"] = doc.date
        if doc.language:
            meta["language"] = doc.language
        if doc.outlet:
            meta["outlet"] = doc.outlet
        if doc.meta.get("group"):
            meta["group"] = doc.meta["group"]
        self.docs.upsert(ids=[doc.id], documents=[doc.text], metadatas=[meta], embeddings=[[1.0]])  # commit
        self._delete_stale(doc.id, doc.sha256)
        # same content re-chunked with other settings: drop positions beyond the new chunks
        self.chunks.delete(where={"$and": [{"doc_id": doc.id}, {"position": {"$gte": len(chunks)}}]})
        self.keyword.delete_doc_except(doc.id, {c.id for c in chunks})
        if self._manifest is not None:
            rec = DocRecord.from_meta(doc.id, meta)
            self._count_language(self._manifest.get(doc.id), rec)
            self._manifest[doc.id] = rec
        self._committed[doc.id] = (doc.sha256, len(chunks))
        self._journal("end", doc.id)

    def relocate(self, doc_id: str, source: str) -> None:
        """An unchanged document whose file moved: point its records at the new path."""
        got = self.docs.get(ids=[doc_id], include=["metadatas"])
        if not got["ids"]:
            return
        meta = dict(got["metadatas"][0] or {}, source=source)
        self.docs.update(ids=[doc_id], metadatas=[meta])
        ch = self.chunks.get(where={"doc_id": doc_id}, include=["metadatas"])
        if ch["ids"]:
            self.chunks.update(ids=ch["ids"], metadatas=[dict(m or {}, source=source) for m in ch["metadatas"]])
        if self._manifest is not None:
            rec = DocRecord.from_meta(doc_id, meta)
            self._count_language(self._manifest.get(doc_id), rec)
            self._manifest[doc_id] = rec

    def set_group(self, doc_id: str, group: str | None) -> None:
        """Record (or clear, with None) the duplicate group of a document, on it and its chunks."""
        got = self.docs.get(ids=[doc_id], include=["metadatas"])
        if not got["ids"]:
            return
        meta = dict(got["metadatas"][0] or {}, group=group)
        self.docs.update(ids=[doc_id], metadatas=[meta])
        ch = self.chunks.get(where={"doc_id": doc_id}, include=[])
        for k in range(0, len(ch["ids"]), _MAX_BATCH):
            part = ch["ids"][k : k + _MAX_BATCH]
            self.chunks.update(ids=part, metadatas=[{"group": group}] * len(part))
        if self._manifest is not None and doc_id in self._manifest:
            self._manifest[doc_id].group = group

    def group_members(self, groups: list[str]) -> dict[str, list[DocRecord]]:
        """The documents of each duplicate group."""
        groups = sorted({g for g in groups if g})
        if not groups:
            return {}
        where = {"group": groups[0]} if len(groups) == 1 else {"group": {"$in": groups}}
        got = self.docs.get(where=where, include=["metadatas"])
        out: dict[str, list[DocRecord]] = {}
        for i, m in zip(got["ids"], got["metadatas"]):
            rec = DocRecord.from_meta(i, m or {})
            out.setdefault(rec.group or "", []).append(rec)
        return out

    def remove_document(self, doc_id: str) -> bool:
        self._lang_ids = {}  # the languages' chunk ids change
        self._passing = {}
        known = doc_id in self.manifest(refresh=True)
        self._journal("begin", doc_id)
        self.docs.delete(ids=[doc_id])  # uncommit first: its chunks stop being served
        self.chunks.delete(where={"doc_id": doc_id})
        self.keyword.delete_doc(doc_id)
        if self._manifest is not None:
            self._count_language(self._manifest.pop(doc_id, None), None)
        self._committed[doc_id] = None
        self._journal("end", doc_id)
        return known

    def _delete_stale(self, doc_id: str, sha: str) -> None:
        self.chunks.delete(where={"$and": [{"doc_id": doc_id}, {"doc_sha256": {"$ne": sha}}]})
        self.keyword.delete_doc(doc_id, keep_sha=sha)

    # ------------------------------------------------------------------ crash recovery
    @property
    def journal_path(self) -> Path:
        return self.settings.index_dir / f".{self.settings.collection}.journal"

    def _journal(self, what: str, doc_id: str) -> None:
        self.settings.index_dir.mkdir(parents=True, exist_ok=True)
        with open(self.journal_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"op": what, "doc": doc_id}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def recover(self) -> list[str]:
        """Remove leftovers of documents whose write was interrupted. Returns their ids."""
        if not self.journal_path.exists():
            return []
        open_docs: dict[str, int] = {}
        for line in self.journal_path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn last line
            open_docs[rec["doc"]] = open_docs.get(rec["doc"], 0) + (1 if rec["op"] == "begin" else -1)
        dirty = [d for d, n in open_docs.items() if n > 0]
        man = self.manifest(refresh=True)
        for doc_id in dirty:
            rec = man.get(doc_id)
            if rec is None:
                self.chunks.delete(where={"doc_id": doc_id})
                self.keyword.delete_doc(doc_id)
            else:
                # keep exactly the committed version's chunks (ids carry the content hash and
                # position): drops other versions and surplus positions of a re-chunk alike
                keep = {f"{doc_id}:{rec.sha256[:12]}:{i}" for i in range(rec.n_chunks)}
                ids = self.chunks.get(where={"doc_id": doc_id}, include=[])["ids"]
                extra = [i for i in ids if i not in keep]
                for k in range(0, len(extra), _MAX_BATCH):
                    self.chunks.delete(ids=extra[k : k + _MAX_BATCH])
                self.keyword.delete_doc_except(doc_id, keep)
        self.journal_path.unlink(missing_ok=True)
        return dirty
