"""Running eval items through the same ``Engine.ask`` the CLI, UI and API use; the report object.

The passages the chain retrieved are read back from the index by chunk id, so retrieval is
scored on exactly what the generator saw."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from qa.config import PROJECT_ROOT
from qa.eval.items import EvalItem
from qa.eval.metrics import ItemScore, compute_metrics, metrics_by_language, metrics_by_tag, score_item

def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def run_config(settings: Any, prompts: Iterable[str] = ()) -> dict:
    from qa.answer.prompts import prompt_id

    try:
        refusal = prompt_id("refusal")
    except Exception:  # a missing prompt file must not stop a report
        refusal = None
    answer_prompts = sorted({p for p in prompts if p})
    return {
        "embeddings": settings.embeddings,
        "llm": settings.llm,
        "retriever": {
            "top_k": settings.top_k,
            "fetch_k": settings.fetch_k,
            "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap": settings.chunk_overlap,
            "min_relevance": settings.min_relevance,
        },
        "prompts": {
            "answer": answer_prompts[0] if len(answer_prompts) == 1 else (answer_prompts or None),
            "refusal": refusal,
        },
        "git_commit": git_commit(),
    }


def build_report(sets: list[str], scores: list[ItemScore], config: dict) -> dict:
    return {
        "sets": [str(s) for s in sets],
        "n": len(scores),
        "config": config,
        "metrics": compute_metrics(scores),
        "by_tag": metrics_by_tag(scores),
        "by_language": metrics_by_language(scores),
        "items": [s.to_json() for s in scores],
    }


# --------------------------------------------------------------------------- running


def retrieved_passages(engine: Any, result: dict) -> list[tuple[str, str]]:
    """(doc_id, text) of the passages the chain retrieved, in rank order, read back by chunk id."""
    trace = result.get("trace") or {}
    ids = [p["chunk_id"] for p in trace.get("passages") or [] if p.get("chunk_id")]
    if not ids:
        return []
    hits = {h.chunk_id: h for h in engine.store.get_chunks(ids)}
    cited = {c.get("chunk_id"): c for c in result.get("citations") or []}
    out = []
    for p in trace["passages"]:
        cid = p.get("chunk_id")
        if cid in hits:
            out.append((hits[cid].meta.get("doc_id", p.get("doc_id", "")), hits[cid].text))
        elif cid in cited:  # deleted meanwhile: the citation still carries the text
            out.append((cited[cid].get("doc_id", ""), cited[cid].get("text", "")))
        else:
            out.append((p.get("doc_id", ""), ""))
    return out


def run_item(engine: Any, item: EvalItem, *, force_language: bool = False, filters=None, as_of=None) -> ItemScore:
    t0 = time.perf_counter()
    try:
        extra = {k: v for k, v in (("filters", filters), ("as_of", as_of)) if v}
        result = engine.ask(item.question, history=item.history, language=item.lang if force_language else None, **extra)
    except Exception as exc:  # one broken item must not stop the run
        latency = (time.perf_counter() - t0) * 1000
        return score_item(item, "", True, [], [], latency, error=f"{type(exc).__name__}: {exc}")
    latency = (time.perf_counter() - t0) * 1000
    citations = list(result.get("citations") or [])
    return score_item(
        item,
        str(result.get("answer", "")),
        bool(result.get("refused", not citations)),
        citations,
        retrieved_passages(engine, result),
        latency,
        prompt=(result.get("trace") or {}).get("prompt"),
    )


def evaluate(
    engine: Any,
    items: list[EvalItem],
    *,
    force_language: bool = False,
    warmup: bool = True,
    on_item: Callable[[ItemScore], None] | None = None,
    filters=None,
    as_of=None,
) -> list[ItemScore]:
    """Run every item through ``engine.ask``. ``warmup`` asks the first question once, untimed,
    so that lazy model loading does not land in the latency percentiles."""
    if warmup and items:
        try:
            engine.ask(items[0].question, history=items[0].history)
        except Exception:
            pass
    try:
        doc_lang = {d.id: d.language for d in engine.store.manifest(refresh=True).values()}
    except Exception:  # an index without a manifest: no language slices
        doc_lang = {}
    scores = []
    for item in items:
        s = run_item(engine, item, force_language=force_language, filters=filters, as_of=as_of)
        s.language_slice = language_slice(item, doc_lang)
        scores.append(s)
        if on_item:
            on_item(s)
    return scores


def language_slice(item: EvalItem, doc_language: dict[str, str | None]) -> str | None:
    """``"en→vi"``: an English question whose expected source is a Vietnamese article."""
    if item.unanswerable or not item.expected_sources:
        return None
    langs = {doc_language.get(src) for src in item.expected_sources}
    if len(langs) != 1 or None in langs:
        return None
    return f"{item.lang}→{langs.pop()}"
