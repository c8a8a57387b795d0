"""Citation markers: verification, renumbering, and the citation objects every face shows."""

from __future__ import annotations

import re

from qa.answer.retrieval import Passage

MARKER = re.compile(r"\[(\d{1,3})\]")


def finalize(answer: str, passages: list[Passage], quotes: dict[int, str] | None = None) -> tuple[str, list[dict], dict]:
    """Check and renumber the [n] markers of ``answer`` against ``passages`` (1-based).

    Markers that point at no passage are dropped; the remaining ones are renumbered in
    order of first use, and exactly the cited passages are returned as citations.
    Returns (answer, citations, report) where report lists what was dropped.
    """
    mapping: dict[int, int] = {}
    dropped: list[int] = []

    def sub(m: re.Match) -> str:
        n = int(m.group(1))
        if not 1 <= n <= len(passages):
            dropped.append(n)
            return ""
        if n not in mapping:
            mapping[n] = len(mapping) + 1
        return f"[{mapping[n]}]"

    text = MARKER.sub(sub, answer)
    text = re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", text)  # "[1] [1]" → "[1]"
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    citations = []
    for old, new in sorted(mapping.items(), key=lambda kv: kv[1]):
        p = passages[old - 1]
        citations.append(
            {
                "n": new,
                "doc_id": p.doc_id,
                "title": p.title,
                "source": p.source,
                "chunk_id": p.chunk_id,
                "text": p.text,
                "quote": (quotes or {}).get(old, ""),
                "start": p.meta.get("start"),
                "end": p.meta.get("end"),
                "score": round(float(p.score), 4),
            }
        )
    return text, citations, {"dropped_markers": dropped}


def markers(answer: str) -> list[int]:
    return [int(n) for n in MARKER.findall(answer)]


def is_consistent(answer: str, citations: list[dict]) -> bool:
    """Every [n] in the answer has a citation and every citation is used."""
    used = set(markers(answer))
    have = {c["n"] for c in citations}
    return used == have
