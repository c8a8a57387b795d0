"""Ingest: files → documents → chunks → embeddings → index, idempotently."""

from __future__ import annotations

import hashlib
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .chunking import Chunk, chunk_document
from .config import Settings
from .documents import Document, DocumentError, discover, load_document, read_text
from .embeddings import Embedder
from .store import Store, chunker_signature

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks_embedded: int = 0
    recovered: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "removed": len(self.removed),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
        }


class Progress:
    """Callbacks for a progress display; the CLI passes a rich-based one."""

    def files_total(self, n: int) -> None: ...
    def file_done(self, path: Path) -> None: ...
    def chunks_total(self, n: int) -> None: ...
    def chunks_done(self, n: int) -> None: ...
    def warn(self, message: str) -> None:
        log.warning(message)


def doc_embedding_text(chunk: Chunk, settings: Settings) -> str:
    if settings.embed_title and chunk.title and chunk.kind == "body":
        return f"{chunk.title}\n{chunk.text}"
    return chunk.text


def ingest_paths(
    paths: list[Path],
    settings: Settings,
    embedder: Embedder,
    store: Store,
    *,
    sync: bool = False,
    progress: Progress | None = None,
    id_fn: Callable[[Path], str] | None = None,
) -> IngestReport:
    import time

    t0 = time.perf_counter()
    progress = progress or Progress()
    report = IngestReport()
    lock = _lock(settings)
    with lock:
        report.recovered = store.recover()
        files, skipped = discover(paths)
        for p, why in skipped:
            report.skipped.append((str(p), why))
            progress.warn(f"skipped {p}: {why}")
        manifest = store.manifest(refresh=True)
        progress.files_total(len(files))

        # 1. decide what changed (cheap: hash the bytes), parse and chunk only those
        pending: list[tuple[Document, list[Chunk], bool]] = []
        seen_ids: dict[str, Path] = {}
        for f in files:
            doc_id = id_fn(f) if id_fn else f.stem
            try:
                if doc_id in seen_ids:
                    raise DocumentError(f"duplicate document id '{doc_id}' (also {seen_ids[doc_id]}); rename one file")
                seen_ids[doc_id] = f
                rec = manifest.get(doc_id)
                if rec is not None:
                    _, data = read_text(f)

                    if hashlib.sha256(data).hexdigest() == rec.sha256 and rec.chunker == chunker_signature(settings):
                        if rec.source != str(f.resolve()):
                            store.relocate(doc_id, str(f.resolve()))
                        report.unchanged.append(doc_id)
                        progress.file_done(f)
                        continue
                doc = load_document(f, doc_id)
                chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap, settings.tokenizer)
                if not chunks:
                    raise DocumentError("no text to index")
                pending.append((doc, chunks, rec is not None))
            except DocumentError as exc:
                report.failed.append((str(f), str(exc)))
                progress.warn(f"failed {f}: {exc}")
                progress.file_done(f)

        # 2. embed in batches across documents; commit each document when its chunks are done
        total = sum(len(c) for _, c, _ in pending)
        progress.chunks_total(total)
        batch = max(1, settings.embeddings_batch_size)
        queue: list[tuple[Document, list[Chunk], bool]] = []
        texts: list[str] = []
        vecs: list[np.ndarray] = []

        def flush_ready(final: bool = False) -> None:
            nonlocal texts, vecs
            done = sum(len(v) for v in vecs)
            while queue:
                doc, chunks, existed = queue[0]
                if done < len(chunks):
                    break
                allv = np.vstack(vecs) if vecs else np.zeros((0, 0), dtype=np.float32)
                store.write_document(doc, chunks, allv[: len(chunks)])
                (report.updated if existed else report.added).append(doc.id)
                rest = allv[len(chunks) :]
                vecs = [rest] if len(rest) else []
                done -= len(chunks)
                queue.pop(0)
                progress.file_done(Path(doc.source))

        for doc, chunks, existed in pending:
            queue.append((doc, chunks, existed))
            texts.extend(doc_embedding_text(c, settings) for c in chunks)
            while len(texts) >= batch:
                vecs.append(_embed(embedder, texts[:batch], progress))
                report.chunks_embedded += batch
                texts = texts[batch:]
                flush_ready()
        if texts:
            vecs.append(_embed(embedder, texts, progress))
            report.chunks_embedded += len(texts)
            texts = []
        flush_ready(final=True)

        # 3. --sync: drop documents whose files are gone
        if sync:
            for doc_id, rec in list(store.manifest(refresh=True).items()):
                if rec.source and not Path(rec.source).exists():
                    store.remove_document(doc_id)
                    report.removed.append(doc_id)
    report.seconds = time.perf_counter() - t0
    return report


def _embed(embedder: Embedder, texts: list[str], progress: Progress) -> np.ndarray:
    v = embedder.embed_passages(texts)
    progress.chunks_done(len(texts))
    return v


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
