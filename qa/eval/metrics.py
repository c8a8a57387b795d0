"""Scoring one item (evidence matching, citations, keywords, refusals) and the set's metrics.

Pure functions, tested on hand-made cases."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from qa.answer.citations import MARKER
from qa.eval.items import EvalItem
from qa.text import fold, normalise_ws

#: Metric keys, in report order.
METRICS: tuple[str, ...] = (
    "hit@1",
    "hit@5",
    "mrr@10",
    "source_recall@5",
    "citation_precision",
    "citation_validity",
    "keyword_coverage",
    "refusal_accuracy",
    "false_refusal_rate",
    "answer_language_accuracy",
    "claim_support",
    "latency_ms_p50",
    "latency_ms_p95",
)
#: Metrics where a lower value is better (deltas and default gate direction).
LOWER_IS_BETTER = frozenset({"false_refusal_rate", "latency_ms_p50", "latency_ms_p95"})



# --------------------------------------------------------------------------- matching


def middle_split(span: str) -> tuple[str, str] | None:
    """Cut a (normalised) span at the word boundary nearest its middle; None for one word."""
    words = span.split(" ")
    if len(words) < 2:
        return None
    best, best_d = 0, math.inf
    pos = 0
    for i, w in enumerate(words[:-1]):
        pos += len(w)
        d = abs(pos - len(span) / 2)
        if d < best_d:
            best, best_d = i + 1, d
        pos += 1  # the space
    return " ".join(words[:best]), " ".join(words[best:])


def longest_half(span: str) -> str | None:
    halves = middle_split(normalise_ws(span))
    if halves is None:
        return None
    a, b = halves
    return a if len(a) >= len(b) else b


def contains_evidence(passage: str, evidence: Iterable[str]) -> bool:
    """Does the passage hold one evidence span, or the longest half of one cut by a chunk boundary?

    Compared after Unicode NFC and whitespace normalisation (case-sensitive: spans are verbatim).
    """
    text = normalise_ws(passage)
    for span in evidence:
        s = normalise_ws(span)
        if not s:
            continue
        if s in text:
            return True
        half = longest_half(s)
        if half and half in text:
            return True
    return False


def first_hit_rank(passages: list[str], evidence: list[str]) -> int | None:
    """1-based rank of the first passage holding evidence; None when none does."""
    for rank, text in enumerate(passages, 1):
        if contains_evidence(text, evidence):
            return rank
    return None


def has_keywords(answer: str, groups: list[list[str]]) -> bool:
    """One alternative of every group occurs in the answer (case- and diacritic-insensitive)."""
    text = fold(normalise_ws(answer))
    return all(any(fold(normalise_ws(alt)) in text for alt in g) for g in groups)


def marker_validity(answer: str, citations: list[dict]) -> tuple[int, int]:
    """(valid, total) [n] markers: valid when a citation numbered n exists."""
    have = {c.get("n") for c in citations}
    ns = [int(m) for m in MARKER.findall(answer or "")]
    return sum(n in have for n in ns), len(ns)


# --------------------------------------------------------------------------- scoring


@dataclass
class ItemScore:
    item: EvalItem
    answer: str
    refused: bool
    citations: list[dict]
    passages: list[tuple[str, str]]  # (doc_id, text) of the retrieved passages, in rank order
    latency_ms: float
    error: str | None = None
    prompt: str | None = None
    hit_rank: int | None = None
    passed: bool = False
    reasons: list[str] = field(default_factory=list)
    # per-item metric inputs
    source_recall: float | None = None
    good_citations: int = 0
    markers_valid: int = 0
    markers_total: int = 0
    keywords_ok: bool | None = None
    #: "<question language>→<language of the expected source>" (answerable items, when known)
    language_slice: str | None = None

    @property
    def answerable(self) -> bool:
        return not self.item.unanswerable

    def to_json(self) -> dict:
        return {
            "id": self.item.id,
            "question": self.item.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": self.citations,
            "hit_rank": self.hit_rank,
            "passed": self.passed,
            "reasons": self.reasons,
            "latency_ms": round(self.latency_ms, 1),
        }


def citation_is_good(item: EvalItem, citation: dict) -> bool:
    return contains_evidence(citation.get("text", ""), item.evidence) or citation.get("doc_id") in item.expected_sources


def score_item(
    item: EvalItem,
    answer: str,
    refused: bool,
    citations: list[dict],
    passages: list[tuple[str, str]],
    latency_ms: float,
    *,
    error: str | None = None,
    prompt: str | None = None,
) -> ItemScore:
    s = ItemScore(item, answer, refused, citations, passages, latency_ms, error, prompt)
    s.markers_valid, s.markers_total = marker_validity(answer, citations)
    if error:
        s.reasons.append(f"error: {error}")
    if item.unanswerable:
        if not refused:
            s.reasons.append("answered instead of refusing")
        if citations:
            s.reasons.append(f"cited {len(citations)} passage(s) for an unanswerable question")
        s.passed = not s.reasons
        return s

    if item.evidence:
        s.hit_rank = first_hit_rank([t for _, t in passages], item.evidence)
    if item.expected_sources:
        top5 = {d for d, _ in passages[:5]}
        s.source_recall = sum(src in top5 for src in item.expected_sources) / len(item.expected_sources)
    s.good_citations = sum(citation_is_good(item, c) for c in citations)
    if item.answer_keywords:
        s.keywords_ok = has_keywords(answer, item.answer_keywords)
    if refused:
        s.reasons.append("refused an answerable question")
    elif not citations:
        s.reasons.append("answered without citations")
    elif item.evidence:
        if not any(contains_evidence(c.get("text", ""), item.evidence) for c in citations):
            s.reasons.append("no cited passage holds the evidence" + (f" (first retrieved at rank {s.hit_rank})" if s.hit_rank else " (not retrieved)"))
    elif item.expected_sources:
        if not any(c.get("doc_id") in item.expected_sources for c in citations):
            s.reasons.append("no citation from the expected sources")
    s.passed = not s.reasons
    return s


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else round(num / den, 4)


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo), 1)


def compute_metrics(scores: list[ItemScore]) -> dict[str, float | None]:
    """Aggregate metrics; a metric with no eligible item is None."""
    ans = [s for s in scores if s.answerable]
    una = [s for s in scores if not s.answerable]
    with_ev = [s for s in ans if s.item.evidence]
    with_src = [s for s in ans if s.item.expected_sources]
    cited = [s for s in ans if s.citations]
    kw = [s for s in ans if s.item.answer_keywords]

    def hit(k: int) -> float | None:
        return _ratio(sum(1 for s in with_ev if s.hit_rank is not None and s.hit_rank <= k), len(with_ev))

    return {
        "hit@1": hit(1),
        "hit@5": hit(5),
        "mrr@10": _ratio(sum(1 / s.hit_rank for s in with_ev if s.hit_rank is not None and s.hit_rank <= 10), len(with_ev)),
        "source_recall@5": _ratio(sum(s.source_recall or 0.0 for s in with_src), len(with_src)),
        "citation_precision": _ratio(sum(s.good_citations for s in cited), sum(len(s.citations) for s in cited)),
        "citation_validity": _ratio(sum(s.markers_valid for s in scores), sum(s.markers_total for s in scores)),
        "keyword_coverage": _ratio(sum(1 for s in kw if s.keywords_ok), len(kw)),
        "refusal_accuracy": _ratio(sum(1 for s in una if s.refused and not s.citations and not s.error), len(una)),
        "false_refusal_rate": _ratio(sum(1 for s in ans if s.refused), len(ans)),
        "answer_language_accuracy": _answer_language_accuracy(scores),
        # share of citations whose passage holds every name and number said with them
        "claim_support": _ratio(sum(1 for s in scores for c in s.citations if (c.get("support") or {}).get("verdict") == "verified"),
                                sum(1 for s in scores for c in s.citations if c.get("support"))),
        "latency_ms_p50": percentile([s.latency_ms for s in scores], 50),
        "latency_ms_p95": percentile([s.latency_ms for s in scores], 95),
    }


def _answer_language_accuracy(scores: list[ItemScore]) -> float | None:
    """Share of the answers (refusals aside) written in the question's language; an answer too
    short to tell (a name, a figure) counts as right. Quotes from the articles are not read."""
    from qa.language import written_in

    answered = [s for s in scores if not s.refused and not s.error and s.answer]
    return _ratio(sum(1 for s in answered if written_in(s.answer) in (None, s.item.lang)), len(answered))


def metrics_by_language(scores: list[ItemScore]) -> dict[str, dict[str, float | None]]:
    """Metrics per question language → expected-source language (answerable items whose source language is known)."""
    slices = sorted({s.language_slice for s in scores if s.language_slice})
    out = {sl: compute_metrics([s for s in scores if s.language_slice == sl]) for sl in slices}
    for sl in out:
        out[sl]["n"] = sum(s.language_slice == sl for s in scores)
    return out


def metrics_by_tag(scores: list[ItemScore]) -> dict[str, dict[str, float | None]]:
    tags = sorted({t for s in scores for t in s.item.tags})
    return {t: compute_metrics([s for s in scores if t in s.item.tags]) for t in tags}


def format_metric(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if metric.startswith("latency"):
        return f"{value:.0f} ms"
    return f"{value:.3f}"
