"""Rated answers (the rows of :mod:`qa.app.feedback`, as plain dicts) → eval items to review.

An item made here carries what the user saw (``answer_given``, ``passages_shown``) and the
rating (``feedback``), and ``"review": true``: the loader (:func:`qa.eval.items.parse_item`)
refuses it until someone fills in what the right answer needs (``expected_sources``,
``evidence``, ``answer_keywords``, or ``"unanswerable": true``) and removes ``review``. The
other extra fields are ignored by the loader and can stay as notes.
"""

from __future__ import annotations

from typing import Any, Iterable

from qa.eval.items import LANGS
from qa.language import detect_language

PASSAGE_FIELDS = ("n", "doc_id", "title", "source", "chunk_id", "text", "quote")


def item_id(record: dict) -> str:
    return f"feedback-{record['id']}"


def item_from_feedback(record: dict) -> dict[str, Any]:
    """One eval item (a JSON object for a set's line) from one feedback row."""
    question = " ".join(str(record.get("question") or "").split())
    lang = record.get("language")
    if lang not in LANGS:
        lang = detect_language(question)
    trace = record.get("trace") or {}
    passages = [{k: c.get(k) for k in PASSAGE_FIELDS if c.get(k) is not None} for c in record.get("citations") or []]
    return {
        "id": item_id(record),
        "question": question,
        "lang": lang,
        "history": [{"role": t["role"], "content": t["content"]} for t in record.get("history") or []
                    if isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("content"), str)],
        # to fill in (then remove "review"): what a right answer cites and says, or unanswerable
        "expected_sources": [],
        "evidence": [],
        "answer_keywords": [],
        "unanswerable": False,
        "expected_answer": "",
        "review": True,
        "tags": ["feedback"],
        # what the user saw
        "answer_given": record.get("answer") or "",
        "refused": record.get("refused"),
        "passages_shown": passages,
        "feedback": {
            "id": record.get("id"),
            "created_at": record.get("created_at"),
            "rating": record.get("rating"),
            "comment": record.get("comment") or "",
            "channel": record.get("channel"),
            "answered_by": trace.get("answered_by") if isinstance(trace, dict) else None,
        },
    }


def items_from_feedback(records: Iterable[dict], skip_ids: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Items for the rows whose item id is not in ``skip_ids`` (already exported), in order."""
    skip = set(skip_ids)
    return [item_from_feedback(r) for r in records if item_id(r) not in skip]
