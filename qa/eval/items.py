"""Eval sets: the item schema (``eval/README.md``) and loading JSONL files with clear problems."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

LANGS = ("vi", "en")

# --------------------------------------------------------------------------- loading


class EvalSetError(ValueError):
    """A set cannot be used at all (missing file, no valid item, ...)."""


@dataclass
class EvalItem:
    id: str
    question: str
    lang: str
    history: list[dict] = field(default_factory=list)
    expected_sources: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    answer_keywords: list[list[str]] = field(default_factory=list)
    unanswerable: bool = False
    tags: list[str] = field(default_factory=list)
    set_name: str = ""
    line: int = 0


@dataclass
class SetProblem:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _str_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'{name}' must be a list of strings")
    return list(value)


def parse_item(data: Any) -> EvalItem:
    """Validate one decoded JSON line; raises ValueError with a readable reason."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    for key in ("id", "question", "lang"):
        if key not in data:
            raise ValueError(f"missing required field '{key}'")
    for key in ("id", "question"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise ValueError(f"'{key}' must be a non-empty string")
    if data["lang"] not in LANGS:
        raise ValueError(f"'lang' must be one of {', '.join(LANGS)}, got {data['lang']!r}")
    review = data.get("review", False)
    if not isinstance(review, bool):
        raise ValueError("'review' must be true or false")
    if review:  # an item made from feedback (qa eval from-feedback) that nobody has reviewed yet
        raise ValueError(
            "awaiting review: fill in expected_sources / evidence / answer_keywords (or set unanswerable), "
            "then remove \"review\" (or set it to false)"
        )
    history = data.get("history") or []
    if not isinstance(history, list):
        raise ValueError("'history' must be a list of {role, content} objects")
    for turn in history:
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str) or turn.get("role") not in ("user", "assistant", "system"):
            raise ValueError("'history' turns must be objects with role (user/assistant) and content (string)")
    unanswerable = data.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise ValueError("'unanswerable' must be true or false")
    groups_raw = data.get("answer_keywords") or []
    if not isinstance(groups_raw, list):
        raise ValueError("'answer_keywords' must be a list of lists of strings")
    groups: list[list[str]] = []
    for g in groups_raw:
        if isinstance(g, str):  # a lone string is a group of one alternative
            g = [g]
        if not isinstance(g, list) or not g or not all(isinstance(a, str) and a.strip() for a in g):
            raise ValueError("'answer_keywords' must be a list of non-empty lists of strings")
        groups.append(list(g))
    item = EvalItem(
        id=data["id"].strip(),
        question=data["question"],
        lang=data["lang"],
        history=[{"role": t["role"], "content": t["content"]} for t in history],
        expected_sources=_str_list(data.get("expected_sources"), "expected_sources"),
        evidence=[e for e in _str_list(data.get("evidence"), "evidence") if e.strip()],
        answer_keywords=groups,
        unanswerable=unanswerable,
        tags=_str_list(data.get("tags"), "tags"),
    )
    if item.unanswerable and (item.expected_sources or item.evidence or item.answer_keywords):
        raise ValueError("an unanswerable item must not list expected_sources, evidence or answer_keywords")
    return item


PLAIN_TAG = "typed-without-diacritics"
LOWER_TAG = "typed-in-lower-case"


def _retyped(items: Iterable[EvalItem], retype, suffix: str, tag: str) -> list[EvalItem]:
    """Each item whose question ``retype`` changes, again with ``retype`` applied to the question
    and the history's user turns (the bot's turns as they were), id ``<id>~<suffix>``, tagged ``tag``."""
    from dataclasses import replace

    out = []
    for it in items:
        question = retype(it.question)
        if question == it.question:
            continue
        history = [{**h, "content": retype(h.get("content", ""))} if h.get("role") == "user" else h for h in it.history]
        out.append(replace(it, id=f"{it.id}~{suffix}", question=question, history=history, tags=[*it.tags, tag]))
    return out


def without_diacritics(items: Iterable[EvalItem]) -> list[EvalItem]:
    """Each Vietnamese item written with diacritics, again as a user without a Vietnamese keyboard
    types it (the question and the history's user turns), id ``<id>~plain``, tagged :data:`PLAIN_TAG`."""
    from qa.text import strip_diacritics

    return _retyped([it for it in items if it.lang == "vi"], strip_diacritics, "plain", PLAIN_TAG)


def lower_case(items: Iterable[EvalItem]) -> list[EvalItem]:
    """Each item with a capital letter, again as typed all in lower case (the question and the
    history's user turns), id ``<id>~lower``, tagged :data:`LOWER_TAG`."""
    return _retyped(items, str.lower, "lower", LOWER_TAG)


def load_sets(paths: Iterable[Path | str]) -> tuple[list[EvalItem], list[SetProblem]]:
    """Items of every set, in order, and the problems found (invalid lines are skipped).

    Blank lines are ignored. Ids must be unique across all the sets of a run.
    """
    items: list[EvalItem] = []
    problems: list[SetProblem] = []
    seen: dict[str, str] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise EvalSetError(f"eval set not found: {path}")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise EvalSetError(f"{path}: not UTF-8 ({exc})") from exc
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(SetProblem(str(path), n, f"invalid JSON: {exc.msg} (column {exc.colno})"))
                continue
            try:
                item = parse_item(data)
            except ValueError as exc:
                problems.append(SetProblem(str(path), n, str(exc)))
                continue
            if item.id in seen:
                problems.append(SetProblem(str(path), n, f"duplicate id '{item.id}' (first at {seen[item.id]})"))
                continue
            seen[item.id] = f"{path}:{n}"
            item.set_name = path.stem
            item.line = n
            items.append(item)
    return items, problems
