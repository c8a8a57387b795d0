"""Versioned prompt files under ``prompts/`` (TOML: name, version, texts)."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from qa.config import PROJECT_ROOT

PROMPTS_DIR = PROJECT_ROOT / "prompts"


@lru_cache(maxsize=16)
def load_prompt(name: str) -> dict:
    path = PROMPTS_DIR / f"{name}.toml"
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    data.setdefault("name", name)
    data.setdefault("version", "0")
    return data


def prompt_id(name: str) -> str:
    p = load_prompt(name)
    return f"{p['name']}@{p['version']}"
