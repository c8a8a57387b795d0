"""Ingest benchmark: the full pipeline vs the bare encoder on the same texts, then a re-ingest.

    python bench/ingest.py [--articles N] [--server] [--repeat R] --json OUT

1. Writes a corpus of N articles (the two sample articles + synthetic articles recombined
   from XQuAD paragraphs, see bench/_common.py).
2. Encoder: embeds exactly the texts the pipeline embeds (every chunk's passage text, as
   ``qa.ingest.pipeline`` builds it) with the bare embedder, in batches of
   ``QA_EMBEDDINGS_BATCH_SIZE``: the upper bound for any pipeline.
3. Pipeline: ``ingest_paths`` into a fresh index (read, clean, chunk, embed, write, commit):
   its throughput is chunks / seconds until the last document is committed (searchable).
   With ``QA_SENTENCE_VECTORS=ingest`` (the default) the sentence-vector phase follows; it
   is reported on its own (seconds, and the throughput including it: ``ratio_total``).
   Steps 2 and 3 alternate ``--repeat`` times; the medians are reported (the CPU is shared:
   see ``machine.loadavg_1m`` and the per-run figures).
4. Re-ingest of the unchanged corpus, grown to ``--reingest-articles`` (default 1000) files:
   the articles beyond N are committed through the same ``Store.write_document`` path with
   random vectors instead of the encoder (a re-ingest never looks at vectors), then
   ``ingest_paths`` runs over all files; also ``qa ingest`` as a fresh process.

``--server`` runs steps 3 and 4 against a ``chroma run`` server started on localhost.
Settings (embedder, batch size, chunking) come from QA_* variables like the app's own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import (  # noqa: E402
    PROJECT_ROOT,
    ChromaServer,
    machine,
    peak_rss_mb,
    quiet_logs,
    setup_env,
    rss_mb,
    table,
    write_corpus,
    write_json,
)


class RssSampler:
    """Peak RSS of this process (and of a server process) while a block runs."""

    def __init__(self, server: ChromaServer | None = None, every: float = 0.05) -> None:
        self.server, self.every = server, every
        self.peak = self.server_peak = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> "RssSampler":
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            if self.server is not None:
                self.server_peak = max(self.server_peak, self.server.rss_mb())
            self._stop.wait(self.every)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self._run_once()

    def _run_once(self) -> None:
        self.peak = max(self.peak, rss_mb())
        if self.server is not None:
            self.server_peak = max(self.server_peak, self.server.rss_mb())


def chunk_texts(files: list[Path], settings) -> tuple[list[str], list[tuple]]:
    """The passage texts the pipeline embeds, and (doc, chunks) per file."""
    from qa.ingest.chunking import chunk_document
    from qa.ingest.documents import load_document
    from qa.ingest.pipeline import doc_embedding_text

    texts, docs = [], []
    for f in files:
        doc = load_document(f)
        chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap, settings.tokenizer)
        docs.append((doc, chunks))
        texts.extend(doc_embedding_text(c, settings) for c in chunks)
    return texts, docs


def run_encoder(embedder, texts: list[str], batch: int) -> dict:
    c0, t0 = time.process_time(), time.perf_counter()
    for k in range(0, len(texts), batch):
        embedder.embed_passages(texts[k : k + batch])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "chunks_per_s": round(len(texts) / wall, 3)}


def _phase_clock():
    """Progress callbacks that note when the sentence-vector phase starts (CPU time)."""
    from qa.ingest.pipeline import Progress

    class PhaseClock(Progress):
        sentences_cpu_start = 0.0

        def sentences_total(self, n):
            if not self.sentences_cpu_start:
                self.sentences_cpu_start = time.process_time()

    return PhaseClock()


def run_pipeline(corpus: Path, settings, embedder, server: ChromaServer | None) -> dict:
    from qa.ingest.pipeline import ingest_paths
    from qa.index.store import Store

    store = Store(settings, embedder.describe())
    before = embedder.texts_embedded
    with RssSampler(server) as mem:
        progress = _phase_clock()
        c0 = time.process_time()
        report = ingest_paths([corpus], settings, embedder, store, progress=progress)
        cpu = time.process_time() - c0
        sentences_cpu = time.process_time() - progress.sentences_cpu_start if progress.sentences_cpu_start else 0.0
    if report.failed:
        raise SystemExit(f"ingest failed for {report.failed[:3]}")
    sentences_s = report.timings.get("sentences", 0.0)
    return {
        # documents searchable: the pipeline proper; the sentence-vector phase follows it
        "seconds": round(report.searchable_seconds, 3),
        "total_seconds": round(report.seconds, 3),
        "sentences_seconds": round(sentences_s, 3),
        "cpu_seconds": round(cpu, 3),
        "chunks": report.chunks_embedded,
        "sentences_embedded": report.sentences_embedded,
        "sentences_cpu_seconds": round(sentences_cpu, 3),
        "texts_embedded": embedder.texts_embedded - before,
        "chunks_per_s": round(report.chunks_embedded / report.searchable_seconds, 3),
        "chunks_per_s_total": round(report.chunks_embedded / report.seconds, 3),
        "timings": report.timings,
        "peak_rss_mb": round(mem.peak, 1),
        "server_peak_rss_mb": round(mem.server_peak, 1) if server else None,
        "store": store,
    }


def grow_corpus(corpus: Path, n_total: int, settings, store, seed: int = 11) -> int:
    """Add files up to n_total and commit them with random vectors (no encoder). Returns how many.

    The records are the ones ``Store.write_document`` writes (chunks with their metadata,
    keyword rows, then the document records), written in bulk: a re-ingest only compares
    files with the committed records and never looks at vectors.
    """
    import time as _time

    from qa.ingest.chunking import chunk_document
    from qa.ingest.documents import load_document
    from qa.index.store import chunker_signature

    have = sorted(corpus.rglob("*.txt"))
    if len(have) >= n_total:
        return 0
    files = write_corpus(corpus / "more", n_total - len(have), seed=seed, prefix="more", samples=False)
    rng = np.random.default_rng(seed)
    dim = int(store.embedder_info.get("dim") or 384)
    batch = 2000
    ids, vecs, texts, metas, kw, docs = [], [], [], [], [], []

    def flush() -> None:
        for k in range(0, len(ids), batch):
            store.chunks.upsert(ids=ids[k : k + batch], embeddings=vecs[k : k + batch], documents=texts[k : k + batch],
                                metadatas=metas[k : k + batch])
        store.keyword.add(kw)
        for k in range(0, len(docs), batch):
            part = docs[k : k + batch]
            store.docs.upsert(ids=[d[0] for d in part], documents=[d[1] for d in part], metadatas=[d[2] for d in part],
                              embeddings=[[1.0]] * len(part))
        for lst in (ids, vecs, texts, metas, kw, docs):
            lst.clear()

    for f in files:
        doc = load_document(f)
        chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap, settings.tokenizer)
        v = rng.standard_normal((len(chunks), dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        for c, vv in zip(chunks, v):
            ids.append(c.id)
            vecs.append(vv.tolist())
            texts.append(c.text)
            metas.append(c.metadata(doc))
            kw.append((c.id, doc.id, doc.sha256, c.text))
        meta = {"title": doc.title, "source": doc.source, "sha256": doc.sha256, "n_chunks": len(chunks),
                "body_end": doc.body_end, "ingested_at": _time.time(), "chunker": chunker_signature(settings)}
        if doc.author:
            meta["author"] = doc.author
        if doc.date:
            meta["date"] = doc.date
        docs.append((doc.id, doc.text, meta))
        if len(ids) >= 5000:
            flush()
    flush()
    return len(files)


def run_reingest(corpus: Path, settings, embedder, store, server: ChromaServer | None) -> dict:
    from qa.ingest.pipeline import ingest_paths

    before = embedder.texts_embedded
    report = ingest_paths([corpus], settings, embedder, store)
    out = {
        "articles": len(report.unchanged) + len(report.added) + len(report.updated),
        "unchanged": len(report.unchanged),
        "seconds": round(report.seconds, 3),
        "embeddings": embedder.texts_embedded - before,
        "chunks_embedded": report.chunks_embedded,
    }
    # the same through the command line: a fresh process (imports, model load, index open)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_INDEX_DIR=str(settings.index_dir), QA_COLLECTION=settings.collection,
               QA_CONFIG=os.environ.get("QA_CONFIG", os.devnull), ANONYMIZED_TELEMETRY="False")
    for key in ("embeddings", "embeddings_base_url", "embeddings_batch_size", "chunk_tokens", "chunk_overlap", "tokenizer"):
        env[f"QA_{key.upper()}"] = str(getattr(settings, key))
    if server is not None:
        env["QA_CHROMA_URL"] = server.url
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "qa", "ingest", str(corpus), "--json"], capture_output=True, text=True,
                          env=env, cwd=PROJECT_ROOT, timeout=600)
    out["cli_seconds"] = round(time.perf_counter() - t0, 3)
    if proc.returncode != 0:
        out["cli_error"] = proc.stderr[-500:]
    else:
        import json

        data = json.loads(proc.stdout)
        out["cli_unchanged"] = data.get("unchanged")
        out["cli_chunks_embedded"] = data.get("chunks_embedded")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=50, help="articles in the corpus (default 50, ≈ 350 chunks)")
    ap.add_argument("--server", action="store_true", help="index into a `chroma run` server on localhost")
    ap.add_argument("--no-samples", action="store_true", help="synthetic articles only (not the two sample articles)")
    ap.add_argument("--repeat", type=int, default=1, help="encoder/pipeline runs, alternating (default 1)")
    ap.add_argument("--reingest-articles", type=int, default=1000, help="corpus size for the re-ingest (default 1000)")
    ap.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    ap.add_argument("--json", type=Path, dest="json_out", help="write the results here")
    args = ap.parse_args(argv)
    quiet_logs()

    from qa.config import load_settings
    from qa.index.embeddings import make_embedder

    work = args.work or Path(tempfile.mkdtemp(prefix="qa-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    files = write_corpus(corpus, args.articles, samples=not args.no_samples)
    base = load_settings(index_dir=work / "index")
    embedder = make_embedder(base)
    texts, _ = chunk_texts(files, base)
    embedder.embed_passages(texts[:2])  # load/warm the model outside the timings
    batch = max(1, base.embeddings_batch_size)
    server_ctx = ChromaServer(work / "chroma") if args.server else None
    if server_ctx:
        server_ctx.__enter__()
    try:
        enc_runs, pipe_runs = [], []
        for r in range(max(1, args.repeat)):
            enc_runs.append(run_encoder(embedder, texts, batch))
            settings = load_settings(index_dir=work / "index", collection=f"bench{r}",
                                     chroma_url=server_ctx.url if server_ctx else None)
            pipe_runs.append(run_pipeline(corpus, settings, embedder, server_ctx))
            print(f"run {r + 1}: encoder {enc_runs[-1]['chunks_per_s']} chunks/s, pipeline {pipe_runs[-1]['chunks_per_s']} chunks/s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
        enc = statistics.median(x["chunks_per_s"] for x in enc_runs)
        pipe = statistics.median(x["chunks_per_s"] for x in pipe_runs)
        enc_cpu = statistics.median(len(texts) / x["cpu_seconds"] for x in enc_runs)
        pipe_total = statistics.median(x["chunks_per_s_total"] for x in pipe_runs)
        # CPU time of the pipeline proper: the sentence phase is (almost) all encoder time
        pipe_cpu = statistics.median(x["chunks"] / max(1e-9, x["cpu_seconds"] - x["sentences_cpu_seconds"]) for x in pipe_runs)
        last = pipe_runs[-1]
        store = last.pop("store")
        for x in pipe_runs:
            x.pop("store", None)
        grown = grow_corpus(corpus, args.reingest_articles, settings, store)
        re = run_reingest(corpus, settings, embedder, store, server_ctx)
    finally:
        if server_ctx:
            server_ctx.__exit__()
    result = {
        "mode": "server" if args.server else "embedded",
        "embeddings": base.embeddings,
        "batch_size": batch,
        "sentence_vectors": base.sentence_vectors,
        "articles": len(files),
        "chunks": len(texts),
        "pipeline_chunks_per_s": round(pipe, 3),
        "encoder_chunks_per_s": round(enc, 3),
        "ratio": round(pipe / enc, 3),
        "pipeline_total_chunks_per_s": round(pipe_total, 3),
        "ratio_total": round(pipe_total / enc, 3),
        "sentence_vectors_seconds": last["sentences_seconds"],
        "ratio_cpu": round(pipe_cpu / enc_cpu, 3),
        "pipeline_timings_s": last["timings"],
        "sentences_embedded": last["sentences_embedded"],
        "reingest_articles": re["articles"],
        "reingest_synthetic_articles": grown,
        "reingest_seconds": re["seconds"],
        "reingest_embeddings": re["embeddings"],
        "reingest_cli_seconds": re.get("cli_seconds"),
        "reingest_cli_chunks_embedded": re.get("cli_chunks_embedded"),
        "peak_rss_mb": max(x["peak_rss_mb"] for x in pipe_runs),
        "server_peak_rss_mb": max((x["server_peak_rss_mb"] or 0) for x in pipe_runs) if args.server else None,
        "process_peak_rss_mb": round(peak_rss_mb(), 1),
        "encoder_runs": enc_runs,
        "pipeline_runs": pipe_runs,
        "machine": machine(),
    }
    if re.get("cli_error"):
        result["reingest_cli_error"] = re["cli_error"]
    print()
    print(f"ingest benchmark ({result['mode']}, {result['embeddings']}, batch {batch}, sentence vectors {result['sentence_vectors']}, "
          f"{len(files)} articles, {len(texts)} chunks, load {result['machine']['loadavg_1m']})")
    print(table(
        ["measure", "value"],
        [
            ["encoder chunks/s (bare embedder)", enc],
            ["pipeline chunks/s (qa ingest, until searchable)", pipe],
            ["ratio pipeline / encoder (wall)", result["ratio"]],
            ["ratio pipeline / encoder (CPU time)", result["ratio_cpu"]],
            ["then sentence vectors s (QA_SENTENCE_VECTORS=ingest)", result["sentence_vectors_seconds"]],
            ["chunks/s incl. sentence vectors; ratio", f"{pipe_total:.3f} ; {result['ratio_total']}"],
            ["pipeline read / embed / write / wait s", " / ".join(f"{last['timings'].get(k, 0):.1f}" for k in ("read", "embed", "write", "wait"))],
            ["sentence vectors embedded at ingest", result["sentences_embedded"]],
            ["peak RSS during ingest MiB", result["peak_rss_mb"]],
            ["chroma server peak RSS MiB", result["server_peak_rss_mb"] if args.server else "–"],
            [f"re-ingest {re['articles']} unchanged articles s", re["seconds"]],
            ["re-ingest embeddings computed", re["embeddings"]],
            ["re-ingest via `qa ingest` (new process) s", re.get("cli_seconds")],
        ],
    ))
    write_json(args.json_out, result)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    setup_env()
    main()
