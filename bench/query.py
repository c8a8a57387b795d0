"""Query benchmark: retrieval and extractive-answer latency at growing index sizes.

    python bench/query.py [--sizes 1000,10000,100000] [--server] [--queries 60] [--loop 0] --json OUT

The index (embedded Chroma + keyword index, or a ``chroma run`` server with ``--server``)
holds:

* the real corpus, embedded for real with the configured embedder: the two sample
  articles + the 24 XQuAD Wikipedia articles (≈ 190 chunks). Their vectors are cached in
  ``~/.cache/qa-bench`` (float16) so reruns do not re-embed them;
* synthetic chunks up to each size: documents of 5 chunks, each a perturbed copy of a real
  chunk — vector = normalise(real vector + 0.6 × random unit vector) (cosine ≈ 0.86 to
  its origin, so synthetic chunks cluster around real topics like a real archive), text =
  the real chunk's sentences shuffled, each made unique with a bulletin number (so no
  sentence is shared: a sentence-vector cache gets no free hits from the copies). They are
  written straight through the Chroma collections and the keyword index (same records and
  commit order as ``Store.write_document``), since embedding 100k chunks for real takes
  hours on 2 cores.

Sentence vectors (``QA_SENTENCE_VECTORS``): with ``ingest`` (the default) ``qa ingest``
fills the sentence-vector cache for every chunk, so the benchmark fills it too: the real
chunks' sentences embedded for real (cached in ``~/.cache/qa-bench``), each synthetic
sentence a perturbed copy of its real sentence's vector (same noise as the chunks), all of
them (≈ 8 per chunk) written to the cache like an ingest would.

Questions are real: the dev set, then XQuAD questions in Vietnamese and English,
alternating. For each size, with ``ingest``: one pass as configured (``answer``: no
sentence is embedded at question time), then one pass with the cache turned off
(``nocache``: every answer embeds its budget of candidate sentences, the cost of ``lazy``
on passages never seen before). With ``lazy``: one pass with an emptied cache (``cold``),
one pass over the same questions again (``warm``). Latencies are
``Engine.ask`` timings: ``retrieve`` (query embedding + dense + keyword + fusion + context),
``answer`` = end to end (the whole chain, model already loaded). The CPU is shared: the
figures include other processes' interference; see ``machine.loadavg_1m``.

``--loop N`` asks N questions in a row at the last size and samples the RSS (memory must
stay flat). Startup (first answer of a new ``qa ask`` process on the sample corpus) is
measured too (``--no-startup`` skips it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import (  # noqa: E402
    ARTICLES_DIR,
    PROJECT_ROOT,
    ChromaServer,
    machine,
    mixed_questions,
    paragraphs,
    pct,
    quiet_logs,
    setup_env,
    rss_mb,
    table,
    write_json,
)

EXAMPLE = "What did Le Cong Thanh recommend on climate diplomacy?"
SYNTH_CHUNKS_PER_DOC = 5
NOISE = 0.6


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "qa-bench"


# ---------------------------------------------------------------------------- building


def real_corpus(dest: Path, limit: int | None = None, mixed: bool = True) -> list[Path]:
    """The XQuAD articles (one file per Wikipedia title; with ``mixed``, every other one in
    English), then the sample articles; ``limit`` files at most."""
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    by_title: dict[str, list[str]] = {}
    for p in paragraphs(mixed=mixed):
        by_title.setdefault(p.title, []).append(p.text)
    for title, paras in sorted(by_title.items()):
        f = dest / f"xquad-{title.replace(' ', '_')}.txt"
        f.write_text(title + "\n\n" + "\n\n".join(paras) + "\n", encoding="utf-8")
        files.append(f)
    for p in sorted(ARTICLES_DIR.glob("*.txt")):
        shutil.copyfile(p, dest / p.name)
        files.append(dest / p.name)
    return files[:limit] if limit else files


def build_real(files: list[Path], settings, embedder, store) -> list[dict]:
    """Write the real corpus with real (cached) vectors. Returns its chunks (text, vector, meta)."""
    from qa.ingest.chunking import chunk_document
    from qa.ingest.documents import load_document
    from qa.ingest.pipeline import doc_embedding_text
    from qa.index.sentvec import SentenceVectors, embedder_key

    from qa.index.sentvec import answer_units, sentence_vectors

    vcache = SentenceVectors(cache_dir() / "chunk_vectors.sqlite", embedder_key(embedder))
    index_cache = sentence_vectors(settings, embedder) if settings.sentence_vectors == "ingest" else None
    out = []
    for f in files:
        doc = load_document(f)
        chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap, settings.tokenizer)
        vecs = vcache.embed([doc_embedding_text(c, settings) for c in chunks], embedder)
        store.write_document(doc, chunks, vecs)
        for c, v in zip(chunks, vecs):
            units = answer_units(c.text)
            uvecs = vcache.embed(units, embedder) if index_cache is not None and units else None
            if uvecs is not None:
                index_cache.store(units, uvecs)
            meta = c.metadata(doc)
            out.append({"text": c.text, "vec": v, "title": c.title, "kind": c.kind,
                        "language": meta.get("language"), "facts": meta.get("facts", ""),
                        "units": dict(zip(units, uvecs)) if uvecs is not None else {}})
    return out


class SynthFiller:
    """Adds synthetic documents (SYNTH_CHUNKS_PER_DOC chunks each) through the bulk paths."""

    def __init__(self, store, real: list[dict], embedder=None, seed: int = 5) -> None:
        from qa.index.store import chunker_signature

        self.store, self.real = store, real
        self.rng = np.random.default_rng(seed)
        self.prng = random.Random(seed)
        self.n_docs = 0
        self.signature = chunker_signature(store.settings)
        self.batch = max(1, min(5000, _max_batch(store)))
        self.checked = False
        self.sentvec = None
        self.sentences = 0
        if store.settings.sentence_vectors == "ingest" and embedder is not None:
            from qa.index.sentvec import sentence_vectors

            self.sentvec = sentence_vectors(store.settings, embedder)

    def fill_to(self, n_chunks: int) -> float:
        t0 = time.perf_counter()
        need = n_chunks - self.store.count_chunks()
        while need > 0:
            n_docs = min(max(1, self.batch // SYNTH_CHUNKS_PER_DOC), -(-need // SYNTH_CHUNKS_PER_DOC))
            self._add(n_docs, need)
            need = n_chunks - self.store.count_chunks()
        return time.perf_counter() - t0

    def _sentences(self, src: dict) -> list[tuple[str, list[str]]]:
        """The sentences of a real chunk, each with its keyword terms when followed by a bulletin tag."""
        from qa.index.keyword import analyse
        from qa.text import sentence_spans

        if "sents" not in src:
            sents = [src["text"][a:b] for a, b in sentence_spans(src["text"])]
            src["sents"] = [(x, analyse(f"{x} (Bản tin")) for x in sents]
        return src["sents"]

    def _add(self, n_docs: int, need: int) -> None:
        """One bulk write: chunks (vectors, texts, metadata), keyword rows, then the doc records (commit)."""
        import threading

        from qa.index.keyword import analyse

        import datetime as dt

        from qa.filters import filter_fields

        ids, vecs, texts, metas, kw, srcs = [], [], [], [], [], []
        doc_rows, attrs = [], []
        for _ in range(n_docs):
            n = min(SYNTH_CHUNKS_PER_DOC, need - len(ids))
            if n <= 0:
                break
            self.n_docs += 1
            j = self.n_docs
            doc_id = f"synth-{j:07d}"
            parts = []
            for pos in range(n):
                src = self.real[int(self.rng.integers(len(self.real)))]
                sents = list(self._sentences(src))
                self.prng.shuffle(sents)
                text = " ".join(f"{x} (Bản tin {j}.{pos}.{k})" for k, (x, _) in enumerate(sents))
                # the keyword terms of that text, without re-analysing the real sentences each time
                terms = []
                for k, (_, t) in enumerate(sents):
                    terms.extend(t)
                    terms.extend(analyse(f"{j}.{pos}.{k})"))
                g = self.rng.standard_normal(len(src["vec"])).astype(np.float32)
                v = src["vec"] + NOISE * g / np.linalg.norm(g)
                parts.append((text, v / np.linalg.norm(v), src["title"], terms))
                srcs.append(src)
            # the document's language: that of its first chunk's source
            lang = srcs[-n]["language"] if n and srcs[-n].get("language") else None
            # a publication date spread over 2015–2025 and one of SYNTH_OUTLETS (for the filter passes)
            date = (dt.date(2015, 1, 1) + dt.timedelta(days=(j * 37) % 4000)).isoformat()
            outlet = SYNTH_OUTLETS[j % len(SYNTH_OUTLETS)]
            fields = filter_fields(date, outlet, lang)
            body = "\n\n".join(p[0] for p in parts)
            sha = hashlib.sha256(body.encode("utf-8")).hexdigest()
            start = 0
            for pos, (text, v, title, terms) in enumerate(parts):
                cid = f"{doc_id}:{sha[:12]}:{pos}"
                ids.append(cid)
                vecs.append(v)
                texts.append(text)
                meta = {"doc_id": doc_id, "title": f"{title} ({j})", "source": f"synthetic://{doc_id}", "position": pos,
                        "start": start, "end": start + len(text), "kind": "body", "doc_sha256": sha, "n_tokens": 0,
                        "facts": srcs[len(srcs) - len(parts) + pos].get("facts", ""), "date": date, "outlet": outlet,
                        **fields}
                chunk_lang = srcs[len(srcs) - len(parts) + pos].get("language")
                if chunk_lang:  # each chunk its source's language, as ingest records it
                    meta["language"] = chunk_lang
                metas.append(meta)
                kw.append((" ".join(terms), cid, doc_id, sha))
                start += len(text) + 2
            doc_meta = {"title": f"{parts[0][2]} ({j})", "source": f"synthetic://{doc_id}", "sha256": sha,
                        "n_chunks": len(parts), "body_end": len(body), "ingested_at": time.time(), "chunker": self.signature,
                        "date": date, "outlet": outlet}
            attrs.append((doc_id, fields))
            if lang:
                doc_meta["language"] = lang
            doc_rows.append((doc_id, body, doc_meta))
        if not self.checked:  # the shortcut above must give exactly the keyword index's own analysis
            for (terms, *_), text in zip(kw[:20], texts[:20]):
                assert terms == " ".join(analyse(text)), "synthetic keyword terms differ from qa.index.keyword.analyse"
            self.checked = True
        st = self.store

        def keyword_rows() -> None:
            c = st.keyword._conn()
            c.execute("BEGIN")
            c.executemany("INSERT INTO chunks(terms, chunk_id, doc_id, doc_sha) VALUES (?, ?, ?, ?)", kw)
            c.executemany("INSERT OR REPLACE INTO doc_attrs(doc_id, date_from, date_to, outlet_key, language) VALUES (?, ?, ?, ?, ?)",
                          [(d, f.get("date_from"), f.get("date_to"), f.get("outlet_key"), f.get("doc_language")) for d, f in attrs])
            c.execute("COMMIT")

        t = threading.Thread(target=keyword_rows)  # overlaps with the Chroma writes
        t.start()
        if self.sentvec is not None:
            self._sentence_vectors(texts, srcs)
        for k in range(0, len(ids), self.batch):
            st.chunks.upsert(ids=ids[k : k + self.batch], embeddings=np.vstack(vecs[k : k + self.batch]).tolist(),
                             documents=texts[k : k + self.batch], metadatas=metas[k : k + self.batch])
        t.join()
        for k in range(0, len(doc_rows), self.batch):
            part = doc_rows[k : k + self.batch]
            st.docs.upsert(ids=[d[0] for d in part], documents=[d[1] for d in part], metadatas=[d[2] for d in part],
                           embeddings=[[1.0]] * len(part))


    def _sentence_vectors(self, texts: list[str], srcs: list[dict]) -> None:
        """What ``qa ingest`` would put in the cache for these chunks: a vector per answer unit."""
        import re

        from qa.index.sentvec import answer_units

        tag = re.compile(r"\s*\(Bản tin [\d.]+\)\s*")
        units, vecs = [], []
        for text, src in zip(texts, srcs):
            real = src.get("units") or {}
            for u in answer_units(text):
                base = real.get(tag.sub(" ", u).strip())
                if base is None:  # a piece the tags split differently: near its chunk instead
                    base = src["vec"]
                units.append(u)
                vecs.append(base)
        if not units:
            return
        base = np.vstack(vecs).astype(np.float32)
        g = self.rng.standard_normal(base.shape).astype(np.float32)
        v = base + NOISE * g / np.linalg.norm(g, axis=1, keepdims=True)
        self.sentvec.store(units, v / np.linalg.norm(v, axis=1, keepdims=True))
        self.sentences += len(units)


def _max_batch(store) -> int:
    try:
        return int(store.client.get_max_batch_size())
    except Exception:
        return 1000


# ---------------------------------------------------------------------------- measuring


SYNTH_OUTLETS = ["Báo Một", "Tin Hai", "Thời báo Ba", "Daily Four", "Nhật báo Năm", "Six News", "Bảy Online", "Eight Wire"]


def filter_pass(engine, questions: list[tuple[str, str]]) -> dict:
    """Retrieval p50/p95 unfiltered, with a one-year date range, a range cut inside years, and
    one outlet (an eighth); with how many dense searches Chroma answered short (redone exactly
    among the passing chunks, see ``Store.query``)."""
    from qa.filters import Filters

    out = {}
    store = engine.retriever.store
    for name, f in (("none", None), ("date_range", Filters.make("2020-01-01", "2020-12-31")),
                    ("date_partial", Filters.make("2020-03-15", "2021-02-10")),
                    ("outlet", Filters.make(outlets=[SYNTH_OUTLETS[3]]))):
        ms = []
        s0, u0 = store.short_searches, store.short_unresolved
        for q, lang in questions:
            t0 = time.perf_counter()
            engine.retriever.search(q, language=lang, filters=f)
            ms.append((time.perf_counter() - t0) * 1000)
        out[name] = {"retrieve_p50_ms": round(pct(ms, 50), 1), "retrieve_p95_ms": round(pct(ms, 95), 1),
                     "short_searches": store.short_searches - s0, "short_unresolved": store.short_unresolved - u0}
    base = out["none"]
    for name in ("date_range", "date_partial", "outlet"):
        out[name]["p95_ratio"] = round(out[name]["retrieve_p95_ms"] / (base["retrieve_p95_ms"] or 1.0), 2)
        out[name]["p50_ratio"] = round(out[name]["retrieve_p50_ms"] / (base["retrieve_p50_ms"] or 1.0), 2)
    return out


def ask_pass(engine, questions: list[tuple[str, str]]) -> dict:
    retrieve, total, gen, cpu, refused = [], [], [], [], 0
    for q, lang in questions:
        c0 = time.process_time()
        r = engine.ask(q, language=lang)
        cpu.append((time.process_time() - c0) * 1000)
        t = r["timings_ms"]
        retrieve.append(t["retrieve"])
        total.append(t["total"])
        gen.append(t.get("answer", float("nan")))
        refused += bool(r["refused"])
    return {
        "retrieve_p50_ms": round(pct(retrieve, 50), 1),
        "retrieve_p95_ms": round(pct(retrieve, 95), 1),
        "answer_p50_ms": round(pct(total, 50), 1),
        "answer_p95_ms": round(pct(total, 95), 1),
        "generate_p50_ms": round(pct(gen, 50), 1),
        "cpu_p50_ms": round(pct(cpu, 50), 1),
        "refused": refused,
        "n": len(questions),
    }


def measure_size(n: int, settings, questions, warmup, server: ChromaServer | None) -> dict:
    from qa.answer.chain import Engine
    from qa.index.sentvec import sentence_vectors

    engine = Engine.open(settings)
    for q, lang in warmup:
        engine.ask(q, language=lang)

    def timed(eng) -> dict:
        e0 = eng.embedder.texts_embedded - eng.embedder.queries_embedded
        res = ask_pass(eng, questions)
        # sentences only: the question's own embeddings (query side) are not counted
        passages_embedded = eng.embedder.texts_embedded - eng.embedder.queries_embedded - e0
        res["sentences_embedded_per_question"] = round(passages_embedded / max(1, len(questions)), 2)
        return res

    out: dict = {"chunks": engine.store.count_chunks(), "keyword_rows": engine.store.keyword.count()}
    if settings.sentence_vectors == "ingest":
        main = timed(engine)
        off = Engine.open(settings.model_copy(update={"sentence_vectors": "off"}))
        for q, lang in warmup:
            off.ask(q, language=lang)
        other = timed(off)
        out["passes"] = {"answer": main, "nocache": other}
        out.update(answer_nocache_p50_ms=other["answer_p50_ms"], answer_nocache_p95_ms=other["answer_p95_ms"])
    else:
        cache = sentence_vectors(settings, engine.embedder)
        if cache is not None:
            cache.clear()
        main = timed(engine)
        other = timed(engine)
        out["passes"] = {"cold": main, "warm": other}
        out.update(answer_warm_p50_ms=other["answer_p50_ms"], answer_warm_p95_ms=other["answer_p95_ms"])
    out["filters"] = filter_pass(engine, questions)
    out.update(
        retrieve_p50_ms=main["retrieve_p50_ms"],
        retrieve_p95_ms=main["retrieve_p95_ms"],
        answer_p50_ms=main["answer_p50_ms"],
        answer_p95_ms=main["answer_p95_ms"],
        sentences_embedded_per_question=main["sentences_embedded_per_question"],
        rss_mb=round(rss_mb(), 1),
        loadavg_1m=round(os.getloadavg()[0], 2),
    )
    if server is not None:
        out["server_rss_mb"] = round(server.rss_mb(), 1)
    return out, engine


def memory_loop(engine, questions, n: int) -> dict:
    samples = []
    for k in range(n):
        q, lang = questions[k % len(questions)]
        engine.ask(q, language=lang)
        if k % 50 == 0 or k == n - 1:
            samples.append((k + 1, round(rss_mb(), 1)))
    after_warmup = [m for i, m in samples if i > min(100, n // 4)]
    return {
        "questions": n,
        "rss_samples": samples,
        "rss_start_mb": samples[0][1],
        "rss_after_warmup_mb": after_warmup[0] if after_warmup else None,
        "rss_end_mb": samples[-1][1],
        "growth_after_warmup_mb": round(samples[-1][1] - after_warmup[0], 1) if after_warmup else None,
    }


def startup(settings, server: ChromaServer | None, work: Path) -> dict:
    """Seconds from launching `qa ask` to its JSON answer, on an index of the sample articles."""
    from qa.config import load_settings
    from qa.index.embeddings import make_embedder
    from qa.ingest.pipeline import ingest_paths
    from qa.index.store import Store

    s = load_settings(index_dir=work / "sample", collection="sample", chroma_url=server.url if server else None)
    e = make_embedder(s)
    ingest_paths([ARTICLES_DIR], s, e, Store(s, e.describe()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_INDEX_DIR=str(s.index_dir), QA_COLLECTION="sample", QA_CONFIG=os.environ.get("QA_CONFIG", os.devnull),
               ANONYMIZED_TELEMETRY="False", QA_EMBEDDINGS=settings.embeddings, QA_SENTENCE_VECTORS=settings.sentence_vectors)
    if server:
        env["QA_CHROMA_URL"] = server.url
    out = {}
    for label in ("first_answer_s", "second_process_s"):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "qa", "ask", EXAMPLE, "--json"], capture_output=True, text=True,
                              env=env, cwd=PROJECT_ROOT, timeout=300)
        out[label] = round(time.perf_counter() - t0, 2)
        if proc.returncode != 0:
            out["error"] = proc.stderr[-500:]
            break
        data = json.loads(proc.stdout)
        out.setdefault("refused", data["refused"])
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated chunk counts (default 1000,10000,100000)")
    ap.add_argument("--server", action="store_true", help="use a `chroma run` server on localhost")
    ap.add_argument("--queries", type=int, default=60, help="questions per size and pass (default 60)")
    ap.add_argument("--loop", type=int, default=0, help="then ask this many questions in a row, sampling memory")
    ap.add_argument("--no-startup", action="store_true", help="skip the startup measurement")
    ap.add_argument("--real-docs", type=int, help="use only this many real articles (default: all ≈ 26)")
    ap.add_argument("--vi-only", action="store_true", help="Vietnamese XQuAD paragraphs only (default: every other article in English, a mixed-language archive)")
    ap.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    ap.add_argument("--json", type=Path, dest="json_out", help="write the results here")
    args = ap.parse_args(argv)
    sizes = sorted(int(x) for x in args.sizes.split(",") if x.strip())
    quiet_logs()

    from qa.config import load_settings
    from qa.index.embeddings import make_embedder
    from qa.index.store import Store

    work = args.work or Path(tempfile.mkdtemp(prefix="qa-bench-query-"))
    if (work / "index").exists():
        shutil.rmtree(work / "index")
    server = ChromaServer(work / "chroma") if args.server else None
    if server:
        if (work / "chroma").exists():
            shutil.rmtree(work / "chroma")
        server.__enter__()
    result: dict = {"mode": "server" if server else "embedded", "sizes": {}}
    try:
        settings = load_settings(index_dir=work / "index", collection="bench", chroma_url=server.url if server else None)
        embedder = make_embedder(settings)
        store = Store(settings, embedder.describe())
        t0 = time.perf_counter()
        real = build_real(real_corpus(work / "real", args.real_docs, mixed=not args.vi_only), settings, embedder, store)
        result["languages"] = store.languages()
        result["real_chunks"] = len(real)
        result["real_build_s"] = round(time.perf_counter() - t0, 1)
        allq = mixed_questions(args.queries + 3)
        questions, warmup = allq[: args.queries], allq[args.queries :]
        filler = SynthFiller(store, real, embedder)
        engine = None
        for n in sizes:
            if n < len(real):
                print(f"size {n} is below the real corpus ({len(real)} chunks): measuring at {len(real)}")
            fill_s = filler.fill_to(n)
            print(f"size {n}: filled in {fill_s:.1f}s ({filler.sentences} synthetic sentence vectors so far), "
                  f"measuring {len(questions)} questions × 2 passes…", flush=True)
            res, engine = measure_size(n, settings, questions, warmup, server)
            res["fill_s"] = round(fill_s, 1)
            result["sizes"][str(n)] = res
        if args.loop and engine is not None:
            print(f"memory loop: {args.loop} questions at {sizes[-1]} chunks…", flush=True)
            result["loop"] = memory_loop(engine, questions, args.loop)
        if not args.no_startup:
            result["startup"] = startup(settings, server, work)
    finally:
        if server:
            server.__exit__()
    result["embeddings"] = settings.embeddings
    result["sentence_vectors"] = settings.sentence_vectors
    result["answer_embed_budget"] = settings.answer_embed_budget
    result["machine"] = machine()
    print()
    print(f"query benchmark ({result['mode']}, {settings.embeddings}, sentence vectors {settings.sentence_vectors}, "
          f"{args.queries} questions per pass, load {result['machine']['loadavg_1m']})")
    rows = []
    ingest_mode = settings.sentence_vectors == "ingest"
    for n, r in result["sizes"].items():
        other = ("answer_nocache_p50_ms", "answer_nocache_p95_ms") if ingest_mode else ("answer_warm_p50_ms", "answer_warm_p95_ms")
        rows.append([r["chunks"], r["retrieve_p50_ms"], r["retrieve_p95_ms"], r["answer_p50_ms"], r["answer_p95_ms"],
                     r["sentences_embedded_per_question"], r[other[0]], r[other[1]], r["rss_mb"], r.get("server_rss_mb", "–")])
    label = "no-cache answer" if ingest_mode else "warm answer"
    print(table(["chunks", "retrieve p50 ms", "retrieve p95 ms", "answer p50 ms", "answer p95 ms", "sentences embedded/q",
                 f"{label} p50", f"{label} p95", "RSS MiB", "server RSS MiB"], rows))
    frows = []
    for n, r in result["sizes"].items():
        f = r.get("filters") or {}
        if f:
            for name, label in (("none", "none"), ("date_range", "one year"), ("date_partial", "11 months, across two years"),
                                ("outlet", "one outlet")):
                x = f[name]
                frows.append([r["chunks"], label, x["retrieve_p50_ms"], x["retrieve_p95_ms"], x.get("p50_ratio", "–"),
                              x.get("p95_ratio", "–"), f"{x['short_searches']} ({x['short_unresolved']})"])
    if frows:
        print("filters at the index (retrieval only; target: filtered p95 ≤ 1.5 × unfiltered; short: dense searches Chroma "
              "answered short and that were redone exactly (not redone, too many passing))")
        print(table(["chunks", "filter", "p50 ms", "p95 ms", "p50 ratio", "p95 ratio", "short searches"], frows))
    if "loop" in result:
        lp = result["loop"]
        print(f"memory loop: {lp['questions']} questions, RSS {lp['rss_start_mb']} → {lp['rss_after_warmup_mb']} (after warm-up) "
              f"→ {lp['rss_end_mb']} MiB (growth after warm-up {lp['growth_after_warmup_mb']} MiB)")
    if "startup" in result:
        print(f"startup: first answer of a new `qa ask` process {result['startup'].get('first_answer_s')} s "
              f"(again: {result['startup'].get('second_process_s')} s)")
    write_json(args.json_out, result)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    setup_env()
    main()
