"""Ingest: files → documents → chunks → embeddings → index, idempotently and crash-safely.

A streaming pipeline:

* a reader thread hashes each source (a file, or a page fetched from a URL: see
  :mod:`qa.ingest.sources`), skips unchanged ones (same sha256 and chunker as the committed
  record, or an HTTP 304), and cleans + chunks the changed ones, a few documents ahead of
  the encoder (bounded queue: memory stays flat however large the batch; page fetches
  overlap with embedding);
* the calling thread packs chunk texts of consecutive documents into full encoder batches
  (``QA_EMBEDDINGS_BATCH_SIZE``);
* a writer thread commits each document (:meth:`Store.write_document`) as soon as all of
  its chunks are embedded, in file order, while the encoder goes on (a write mostly waits
  for the disk).

Chunk texts are tokenised once (by the chunker; the encoder tokenises its own input).
With ``QA_SENTENCE_VECTORS=ingest`` (the default) a second phase, after every document is
committed and searchable, embeds the sentences of the new chunks into the sentence-vector
cache (:mod:`qa.index.sentvec`), so answers embed nothing at question time. Interrupting that
phase loses nothing: the cache is filled lazily for whatever it missed.

Crash safety: every document write is journaled (see :mod:`qa.index.store`); killing the process
at any moment leaves each document in its old or its new version, and the next run
repairs leftovers before it starts. One ingest at a time per index (a file lock).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from qa.ingest.chunking import chunk_document
from qa.config import Settings
from qa.ingest.documents import DocumentError, discover
from qa.ingest.sources import FileSource, Source, Unchanged, is_url
from qa.schema import Chunk, Document
from qa.index.embeddings import Embedder
from qa.index.store import Store, chunker_signature
from qa.ingest.duplicates import DuplicateIndex

log = logging.getLogger(__name__)

PREFETCH_DOCS = 32  # parsed documents the reader thread may hold ahead of the encoder


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, id of the document with the same bytes)
    regrouped: dict[str, str | None] = field(default_factory=dict)  # doc id → its new duplicate group (None: none)
    chunks_embedded: int = 0
    sentences_embedded: int = 0  # sentence-vector cache entries computed (QA_SENTENCE_VECTORS=ingest)
    searchable_seconds: float = 0.0  # until the last document was committed (before the sentence phase)
    recovered: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # where the time went (seconds): "read" (hash, parse, chunk) and "write" (index writes
    # and commits) run on their own threads, overlapped with "embed"; "wait" is the encoder
    # waiting for the reader, "flush" waiting for the last writes at the end
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "removed": len(self.removed),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "duplicates": len(self.duplicates),
        }


class Progress:
    """Callbacks for a progress display; the CLI passes a rich-based one."""

    def files_total(self, n: int) -> None: ...
    def file_done(self, path: str) -> None: ...  # the source's key: a path or a URL
    def chunks_total(self, n: int) -> None: ...
    def chunks_done(self, n: int) -> None: ...
    def sentences_total(self, n: int) -> None: ...
    def sentences_done(self, n: int) -> None: ...
    def warn(self, message: str) -> None:
        log.warning(message)


def doc_embedding_text(chunk: Chunk, settings: Settings) -> str:
    if settings.embed_title and chunk.title and chunk.kind == "body":
        return f"{chunk.title}\n{chunk.text}"
    return chunk.text


@dataclass
class _Job:
    """A changed document on its way through the encoder."""

    path: str  # the source's key (a path or a URL)
    doc: Document
    chunks: list[Chunk]
    existed: bool
    vectors: list = field(default_factory=list)
    remaining: int = 0

    def __post_init__(self) -> None:
        self.vectors = [None] * len(self.chunks)
        self.remaining = len(self.chunks)


class _Reader:
    """Hashes, parses and chunks files in a background thread, a bounded number ahead."""

    _END = object()

    def __init__(self, fn: Callable[[Source], tuple], files: list, ahead: int) -> None:
        self._fn = fn
        self._files = files
        self._q: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        self._stop = threading.Event()
        self.busy_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="qa-ingest-reader", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for f in self._files:
                if self._stop.is_set():
                    return
                t = time.perf_counter()
                item = self._fn(f)
                self.busy_seconds += time.perf_counter() - t
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(("error", exc))
        finally:
            self._put(self._END)

    def __iter__(self) -> Iterator[tuple]:
        while True:
            item = self._q.get()
            if item is self._END:
                return
            if item[0] == "error":
                raise item[1]
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _Writer:
    """Runs index writes in order on one background thread, so they overlap with embedding.

    A document write mostly waits for the disk (Chroma's and the journal's syncs): done
    inline it would idle the encoder. Writes stay strictly sequential and in file order;
    the first error stops further writes and is raised to the caller.
    """

    def __init__(self, ahead: int) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        self.error: BaseException | None = None
        self.busy_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="qa-ingest-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            fn = self._q.get()
            if fn is None:
                return
            if self.error is not None:
                continue  # drain without writing
            t = time.perf_counter()
            try:
                fn()
            except BaseException as exc:
                self.error = exc
            self.busy_seconds += time.perf_counter() - t

    def submit(self, fn: Callable[[], None]) -> None:
        if self.error is not None:
            raise self.error
        self._q.put(fn)

    def close(self) -> None:
        """Wait until every submitted write is done; raise the first error."""
        self._q.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


def ingest_paths(
    paths: list[Path],
    settings: Settings,
    embedder: Embedder,
    store: Store,
    *,
    sync: bool = False,
    progress: Progress | None = None,
    id_fn: Callable[[Path], str] | None = None,
    urls: list[str] | None = None,
    fetcher=None,
) -> IngestReport:
    """Ingest files and folders, and (``urls``) article pages fetched with ``fetcher``
    (a :class:`qa.ingest.web.Fetcher`, made from the settings when not given)."""
    progress = progress or Progress()
    files, skipped = discover(paths)
    sources: list[Source] = [FileSource(f, id_fn(f) if id_fn else f.stem) for f in files]
    own = None
    if urls:
        from qa.ingest.web import Fetcher, UrlSource, url_doc_id

        if fetcher is None:
            fetcher = own = Fetcher(settings)
        sources += [UrlSource(u, url_doc_id(u), fetcher) for u in dict.fromkeys(urls)]  # each URL once
    try:
        return ingest_sources(sources, settings, embedder, store, sync=sync, progress=progress,
                              skipped=[(str(p), why) for p, why in skipped])
    finally:
        if own is not None:
            own.close()


def ingest_sources(
    sources: list[Source],
    settings: Settings,
    embedder: Embedder,
    store: Store,
    *,
    sync: bool = False,
    progress: Progress | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> IngestReport:
    """The pipeline proper: every source read, cleaned, chunked, embedded and committed in order."""
    t0 = time.perf_counter()
    progress = progress or Progress()
    report = IngestReport()
    timings = {"read": 0.0, "embed": 0.0, "write": 0.0, "wait": 0.0, "flush": 0.0, "sentences": 0.0}
    with _lock(settings):
        report.recovered = store.recover()
        for p, why in skipped or []:
            report.skipped.append((p, why))
            progress.warn(f"skipped {p}: {why}")
        manifest = dict(store.manifest(refresh=True))
        progress.files_total(len(sources))
        signature = chunker_signature(settings)
        sentvec = None
        if str(getattr(settings, "sentence_vectors", "ingest")).lower() == "ingest":
            from qa.index.sentvec import sentence_vectors

            sentvec = sentence_vectors(settings, embedder)
        seen_ids: dict[str, str] = {}
        # exact re-uploads (the same bytes under another name) are not embedded twice
        by_sha: dict[str, str] = {rec.sha256: d for d, rec in manifest.items() if rec.sha256}
        dups = DuplicateIndex(duplicates_path(settings))
        prints_todo: list[str] = []

        def read(src: Source) -> tuple:
            """("unchanged", key, doc_id, source, location) | ("failed", key, reason)
            | ("duplicate", key, doc_id, other id) | ("job", _Job)"""
            doc_id = src.doc_id
            try:
                if doc_id in seen_ids:
                    raise DocumentError(f"duplicate document id '{doc_id}' (also {seen_ids[doc_id]}); rename one file")
                seen_ids[doc_id] = src.key
                rec = manifest.get(doc_id)
                sha = None
                if rec is not None and rec.chunker == signature:
                    try:
                        sha = src.sha256()
                        if sha == rec.sha256:
                            return ("unchanged", src.key, doc_id, rec.source, src.location)
                    except Unchanged:
                        return ("unchanged", src.key, doc_id, rec.source, src.location)
                if sha is None:
                    try:
                        sha = src.sha256()
                    except Unchanged:
                        sha = None
                if sha:
                    other = by_sha.get(sha)
                    if other is not None and other != doc_id:
                        return ("duplicate", src.key, doc_id, other)
                    by_sha[sha] = doc_id
                doc = src.load()
                chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap, settings.tokenizer)
                if not chunks:
                    raise DocumentError("no text to index")
                return ("job", _Job(src.key, doc, chunks, rec is not None))
            except DocumentError as exc:
                return ("failed", src.key, str(exc))

        batch_size = max(1, settings.embeddings_batch_size)
        jobs: deque[_Job] = deque()
        slots: list[tuple[_Job, int]] = []  # (job, chunk index)
        texts: list[str] = []
        total_chunks = 0

        def embed(n: int) -> None:
            nonlocal slots, texts
            t = time.perf_counter()
            vecs = embedder.embed_passages(texts[:n])
            timings["embed"] += time.perf_counter() - t
            for (job, k), v in zip(slots[:n], vecs):
                job.vectors[k] = v
                job.remaining -= 1
            report.chunks_embedded += n
            slots, texts = slots[n:], texts[n:]
            progress.chunks_done(n)

        def write(job: _Job) -> None:
            vectors = np.vstack(job.vectors)
            store.write_document(job.doc, job.chunks, vectors)
            (report.updated if job.existed else report.added).append(job.doc.id)
            try:  # the fingerprint of a committed document (its group is settled after the batch)
                dups.put(DuplicateIndex.fingerprint(job.doc, job.chunks, vectors))
                prints_todo.append(job.doc.id)
            except Exception as exc:  # never lose a document over its fingerprint
                progress.warn(f"{job.doc.id}: no duplicate fingerprint ({type(exc).__name__}: {exc})")
            progress.file_done(job.path)

        def commit_ready() -> None:
            while jobs and jobs[0].remaining == 0:
                job = jobs.popleft()
                writer.submit(lambda job=job: write(job))

        def relocate(doc_id: str, location: str) -> None:
            store.relocate(doc_id, location)

        reader = _Reader(read, sources, PREFETCH_DOCS)
        writer = _Writer(PREFETCH_DOCS)
        try:
            t_wait = time.perf_counter()
            for item in reader:
                timings["wait"] += time.perf_counter() - t_wait
                kind = item[0]
                if kind == "unchanged":
                    _, f, doc_id, source, location = item
                    if source != location:
                        writer.submit(lambda doc_id=doc_id, location=location: relocate(doc_id, location))
                    report.unchanged.append(doc_id)
                    progress.file_done(f)
                elif kind == "duplicate":
                    _, f, doc_id, other = item
                    report.duplicates.append((f, other))
                    progress.warn(f"{f}: the same text as '{other}', not indexed again")
                    progress.file_done(f)
                elif kind == "failed":
                    _, f, why = item
                    report.failed.append((f, why))
                    progress.warn(f"failed {f}: {why}")
                    progress.file_done(f)
                else:
                    job: _Job = item[1]
                    jobs.append(job)
                    for k, c in enumerate(job.chunks):
                        slots.append((job, k))
                        texts.append(doc_embedding_text(c, settings))
                    total_chunks += len(job.chunks)
                    progress.chunks_total(total_chunks)
                    while len(texts) >= batch_size:
                        embed(batch_size)
                        commit_ready()
                t_wait = time.perf_counter()
            while texts:
                embed(min(batch_size, len(texts)))
                commit_ready()
            commit_ready()
            progress.chunks_total(total_chunks)  # a run with nothing to embed shows 0/0, not 0/?
        finally:
            reader.close()
            t = time.perf_counter()
            try:
                writer.close()  # the embedded documents are written even when embedding failed later
            finally:
                timings["flush"] = time.perf_counter() - t
                timings["read"] = reader.busy_seconds
                timings["write"] = writer.busy_seconds
        report.searchable_seconds = time.perf_counter() - t0

        # --sync: drop documents whose files are gone
        gone: list[str] = []
        if sync:
            t = time.perf_counter()
            copies = {other: key for key, other in report.duplicates}
            for doc_id, rec in list(store.manifest(refresh=True).items()):
                if rec.source and not is_url(rec.source) and not Path(rec.source).exists():
                    if doc_id in copies and not is_url(copies[doc_id]):
                        # moved: its file is gone but a copy of the same bytes is here
                        store.relocate(doc_id, str(Path(copies[doc_id]).resolve()))
                        continue
                    store.remove_document(doc_id)
                    dups.remove(doc_id)
                    report.removed.append(doc_id)
                    gone.append(doc_id)
            timings["write"] += time.perf_counter() - t
        if prints_todo or gone or (store.manifest() and not dups.count()):
            report.regrouped = regroup(store, dups, settings, prints_todo + gone)
        dups.close()

        if sentvec is not None and (report.added or report.updated):
            t = time.perf_counter()
            report.sentences_embedded = fill_sentence_vectors(
                store, sentvec, embedder, report.added + report.updated, batch_size, progress
            )
            timings["sentences"] = time.perf_counter() - t
        if sentvec is not None and not sentvec.units_current():
            # a cache filled before the units were cut as now (UNITS_VERSION): the units the
            # other documents now have are embedded too (only those the cache lacks)
            t = time.perf_counter()
            done = set(report.added + report.updated)
            rest = [d for d in store.manifest(refresh=True) if d not in done]
            if rest:
                report.sentences_embedded += fill_sentence_vectors(store, sentvec, embedder, rest, batch_size, progress)
            sentvec.mark_units_current()
            timings["sentences"] = timings.get("sentences", 0.0) + time.perf_counter() - t

    report.seconds = time.perf_counter() - t0
    report.timings = {k: round(v, 3) for k, v in timings.items()}
    return report


def fill_sentence_vectors(store: Store, sentvec, embedder: Embedder, doc_ids: list[str], batch_size: int,
                          progress: Progress | None = None) -> int:
    """Embed the answer units of these documents' chunks that the cache lacks. Returns how many.

    Streams over the documents a page at a time (memory stays flat) and stores each batch
    as soon as it is embedded, so an interrupted run keeps what it did.
    """
    from qa.index.sentvec import answer_units, title_unit

    progress = progress or Progress()
    page_docs = 64
    pages = [doc_ids[i : i + page_docs] for i in range(0, len(doc_ids), page_docs)]
    done = 0
    total = 0
    todo: list[str] = []

    def flush(n: int) -> None:
        nonlocal todo, done
        part, todo = todo[:n], todo[n:]
        sentvec.store(part, embedder.embed_passages(part))
        done += len(part)
        progress.sentences_done(len(part))

    for k, page in enumerate(pages):
        texts, titles = store.chunk_texts_and_titles(page)
        heads = [h for h in map(title_unit, titles) if h]
        units = sentvec.missing([u for t in texts for u in answer_units(t)] + heads)
        pending = set(todo)
        units = [u for u in units if u not in pending]
        # the total is known only page by page: extrapolated from the pages seen so far
        total += len(units)
        progress.sentences_total(total if k == len(pages) - 1 else total * len(pages) // (k + 1))
        todo.extend(units)
        while len(todo) >= batch_size:
            flush(batch_size)
    while todo:
        flush(min(batch_size, len(todo)))
    progress.sentences_total(done)
    return done


def duplicates_path(settings: Settings) -> Path:
    return settings.index_dir / f"{settings.collection}.dups.sqlite"


def regroup(store: Store, dups: DuplicateIndex, settings: Settings, changed: list[str]) -> dict[str, str | None]:
    """Settle the duplicate groups after documents were added, changed or removed, and record
    each document's new group in the index. An index written before the groups (no fingerprints
    yet) gets the fingerprints of all its documents first, from their stored vectors."""
    if not dups.count():
        backfill_fingerprints(store, dups)
    diff = dups.regroup(changed)
    for doc_id, group in diff.items():
        store.set_group(doc_id, group)
    return diff


def backfill_fingerprints(store: Store, dups: DuplicateIndex) -> int:
    """Fingerprints of documents indexed before this existed: text and vectors from the index."""
    from qa.schema import Chunk, Document

    n = 0
    for doc_id, rec in store.manifest(refresh=True).items():
        got = store.chunks.get(where={"doc_id": doc_id}, include=["embeddings", "metadatas"])
        rows = [(m or {}, e) for m, e in zip(got["metadatas"], got["embeddings"])
                if (m or {}).get("doc_sha256") == rec.sha256]
        text = store.document_text(doc_id) or ""
        if not rows or not text:
            continue
        body_end = int((store.docs.get(ids=[doc_id], include=["metadatas"])["metadatas"][0] or {}).get("body_end", len(text)))
        doc = Document(doc_id, rec.title, rec.source, text, body_end, rec.sha256, rec.author, rec.date, rec.language, rec.outlet)
        chunks = [Chunk("", doc_id, rec.title, int(m.get("position", 0)), 0, 0, "", m.get("kind", "body"), 0) for m, _ in rows]
        dups.put(DuplicateIndex.fingerprint(doc, chunks, np.asarray([e for _, e in rows], dtype=np.float32)))
        n += 1
    return n


def remove_documents(settings: Settings, store: Store, doc_ids: list[str]) -> list[str]:
    """Remove documents from the index (and from their duplicate groups). Returns those that were there."""
    with _lock(settings):
        removed = [d for d in doc_ids if store.remove_document(d)]
        if removed:
            dups = DuplicateIndex(duplicates_path(settings))
            try:
                for d in removed:
                    dups.remove(d)
                regroup(store, dups, settings, removed)
            finally:
                dups.close()
    return removed


class IndexBusy(RuntimeError):
    pass


def _lock(settings: Settings):
    try:
        from filelock import FileLock, Timeout
    except ImportError:  # pragma: no cover
        return nullcontext()

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.index_dir / f".{settings.collection}.lock"), timeout=0)

    class _Ctx:
        def __enter__(self):
            try:
                lock.acquire()
            except Timeout as exc:
                raise IndexBusy(
                    f"another `qa ingest` is writing to {settings.index_dir}; wait for it to finish"
                ) from exc

        def __exit__(self, *exc):
            lock.release()

    return _Ctx()
