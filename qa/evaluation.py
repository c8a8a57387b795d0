"""Evaluation harness behind ``qa eval run``: load JSONL sets, run the chain, score, report.

The set format is described in ``eval/README.md``. Every item goes through the same
``Engine.ask`` call the CLI, UI and API use (with its history); the passages the chain
retrieved are read back from the index by chunk id, so retrieval is scored on exactly what
the generator saw.

Pure functions (matching, metrics, thresholds, rendering) are separate from the run so they
can be tested on hand-made cases.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .citations import MARKER
from .text import fold, normalise_ws

PROJECT_ROOT = Path(__file__).resolve().parent.parent

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
    "latency_ms_p50",
    "latency_ms_p95",
)
#: Metrics where a lower value is better (deltas and default gate direction).
LOWER_IS_BETTER = frozenset({"false_refusal_rate", "latency_ms_p50", "latency_ms_p95"})

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
        "latency_ms_p50": percentile([s.latency_ms for s in scores], 50),
        "latency_ms_p95": percentile([s.latency_ms for s in scores], 95),
    }


def metrics_by_tag(scores: list[ItemScore]) -> dict[str, dict[str, float | None]]:
    tags = sorted({t for s in scores for t in s.item.tags})
    return {t: compute_metrics([s for s in scores if t in s.item.tags]) for t in tags}


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def run_config(settings: Any, prompts: Iterable[str] = ()) -> dict:
    from .prompts import prompt_id

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


def run_item(engine: Any, item: EvalItem, *, force_language: bool = False) -> ItemScore:
    t0 = time.perf_counter()
    try:
        result = engine.ask(item.question, history=item.history, language=item.lang if force_language else None)
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
) -> list[ItemScore]:
    """Run every item through ``engine.ask``. ``warmup`` asks the first question once, untimed,
    so that lazy model loading does not land in the latency percentiles."""
    if warmup and items:
        try:
            engine.ask(items[0].question, history=items[0].history)
        except Exception:
            pass
    scores = []
    for item in items:
        s = run_item(engine, item, force_language=force_language)
        scores.append(s)
        if on_item:
            on_item(s)
    return scores


# --------------------------------------------------------------------------- thresholds


@dataclass
class Gate:
    metric: str
    kind: str  # "min" | "max"
    limit: float
    value: float | None

    @property
    def skipped(self) -> bool:
        return self.value is None

    @property
    def ok(self) -> bool:
        if self.value is None:
            return True
        return self.value >= self.limit if self.kind == "min" else self.value <= self.limit

    def __str__(self) -> str:
        op = "≥" if self.kind == "min" else "≤"
        if self.value is None:
            return f"{self.metric}: no eligible items (gate {op} {self.limit:g} skipped)"
        return f"{self.metric} = {_fmt(self.metric, self.value)} (needs {op} {self.limit:g})"


def _check_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown metric '{name}'; known: {', '.join(METRICS)}")
    return name


def parse_metric_values(specs: Iterable[str]) -> dict[str, float]:
    """['hit@5=0.8', ...] → {'hit@5': 0.8}."""
    out: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            raise ValueError(f"expected METRIC=VALUE, got '{spec}'")
        try:
            out[_check_metric(name.strip())] = float(value)
        except ValueError as exc:
            if "unknown metric" in str(exc):
                raise
            raise ValueError(f"not a number in '{spec}'") from exc
    return out


def load_thresholds(path: Path | str) -> tuple[dict[str, float], dict[str, float]]:
    """TOML ``[min]`` and ``[max]`` tables of metric = value."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ValueError(f"thresholds file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from exc
    unknown = set(data) - {"min", "max"}
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; use [min] and [max]")
    out: list[dict[str, float]] = []
    for kind in ("min", "max"):
        table = data.get(kind, {})
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [{kind}] must be a table")
        parsed = {}
        for k, v in table.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{path}: [{kind}] {k} must be a number")
            try:
                parsed[_check_metric(k)] = float(v)
            except ValueError as exc:
                raise ValueError(f"{path}: [{kind}] {exc}") from exc
        out.append(parsed)
    return out[0], out[1]


def check_thresholds(metrics: dict, mins: dict[str, float], maxs: dict[str, float]) -> list[Gate]:
    gates = [Gate(m, "min", v, metrics.get(m)) for m, v in mins.items()]
    gates += [Gate(m, "max", v, metrics.get(m)) for m, v in maxs.items()]
    return gates


# --------------------------------------------------------------------------- reports


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if metric.startswith("latency"):
        return f"{value:.0f} ms"
    return f"{value:.3f}"


def _delta(metric: str, new: float | None, old: float | None) -> str:
    if new is None or old is None:
        return "–"
    d = new - old
    if abs(d) < 1e-9:
        return "0"
    worse = d > 0 if metric in LOWER_IS_BETTER else d < 0
    body = f"{d:+.0f} ms" if metric.startswith("latency") else f"{d:+.3f}"
    return body + (" (worse)" if worse else "")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def headline_table(report: dict, baseline: dict | None = None, gates: list[Gate] | None = None) -> str:
    m = report["metrics"]
    by_metric: dict[str, list[Gate]] = {}
    for g in gates or []:
        by_metric.setdefault(g.metric, []).append(g)
    head = ["metric", "value"]
    if baseline is not None:
        head += ["baseline", "Δ"]
    if gates:
        head += ["gate"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    old = (baseline or {}).get("metrics") or {}
    for k in METRICS:
        row = [k, _fmt(k, m.get(k))]
        if baseline is not None:
            row += [_fmt(k, old.get(k)), _delta(k, m.get(k), old.get(k))]
        if gates:
            cells = []
            for g in by_metric.get(k, []):
                op = "≥" if g.kind == "min" else "≤"
                state = "skipped" if g.skipped else ("ok" if g.ok else "**FAIL**")
                cells.append(f"{op} {g.limit:g} {state}")
            row.append(", ".join(cells))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


_TAG_COLUMNS = ("hit@1", "hit@5", "mrr@10", "source_recall@5", "citation_precision", "keyword_coverage", "refusal_accuracy", "false_refusal_rate", "latency_ms_p50")


def render_markdown(
    report: dict,
    *,
    baseline: dict | None = None,
    gates: list[Gate] | None = None,
    tags: dict[str, list[str]] | None = None,
    problems: list[SetProblem] | None = None,
) -> str:
    """The Markdown report. ``tags`` (item id → tags) adds item/pass counts to the tag table."""
    items = report["items"]
    n_pass = sum(1 for i in items if i["passed"])
    cfg = report.get("config") or {}
    r = cfg.get("retriever") or {}
    out = [
        "# QA evaluation",
        "",
        f"Sets: {', '.join(f'`{s}`' for s in report['sets'])} — {report['n']} items, {n_pass} passed, {report['n'] - n_pass} failed.",
        "",
        f"Config: embeddings `{cfg.get('embeddings')}`, llm `{cfg.get('llm')}`, "
        + ", ".join(f"{k}={v}" for k, v in r.items())
        + f", prompts {', '.join(f'{k} `{v}`' for k, v in (cfg.get('prompts') or {}).items())}"
        + f", commit `{cfg.get('git_commit') or 'n/a'}`.",
    ]
    if baseline is not None:
        bcfg = baseline.get("config") or {}
        out += ["", f"Baseline: {', '.join(f'`{s}`' for s in baseline.get('sets', []))}, commit `{bcfg.get('git_commit') or 'n/a'}`."]
    out += ["", "## Metrics", "", headline_table(report, baseline, gates)]

    if report.get("by_tag"):
        out += ["", "## By tag", ""]
        head = ["tag"] + (["n", "passed"] if tags is not None else []) + list(_TAG_COLUMNS)
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        passed = {i["id"]: i["passed"] for i in items}
        for tag, m in report["by_tag"].items():
            row = [_cell(tag)]
            if tags is not None:
                ids = [i for i, ts in tags.items() if tag in ts and i in passed]
                row += [str(len(ids)), str(sum(passed[i] for i in ids))]
            row += [_fmt(k, m.get(k)) for k in _TAG_COLUMNS]
            out.append("| " + " | ".join(row) + " |")

    if baseline is not None:
        was = {i["id"]: i.get("passed") for i in baseline.get("items", [])}
        broke = [i["id"] for i in items if was.get(i["id"]) is True and not i["passed"]]
        fixed = [i["id"] for i in items if was.get(i["id"]) is False and i["passed"]]
        out += ["", "## Changed since the baseline", ""]
        out.append("Pass → fail: " + (", ".join(f"`{i}`" for i in broke) if broke else "none") + ".")
        out.append("")
        out.append("Fail → pass: " + (", ".join(f"`{i}`" for i in fixed) if fixed else "none") + ".")

    failing = [i for i in items if not i["passed"]]
    out += ["", f"## Failing items ({len(failing)})"]
    if not failing:
        out += ["", "None."]
    for i in failing:
        out += ["", f"### `{i['id']}`", ""]
        out.append(f"- question: {_cell(i['question'])}")
        out.append(f"- why: {'; '.join(i['reasons'])}")
        out.append(f"- first evidence hit at rank: {i['hit_rank'] if i['hit_rank'] is not None else '–'}; refused: {'yes' if i['refused'] else 'no'}; {i['latency_ms']:.0f} ms")
        out.append("")
        out.append("> " + (_cell(i["answer"]) or "(no answer)"))
        for c in i["citations"]:
            quote = _cell(c.get("quote") or c.get("text") or "")
            if len(quote) > 300:
                quote = quote[:300] + "…"
            out.append(f"> - [{c.get('n')}] `{c.get('doc_id')}` `{c.get('chunk_id')}`: {quote}")

    if problems:
        out += ["", f"## Invalid set lines ({len(problems)}, skipped)", ""]
        out += [f"- `{p.path}:{p.line}`: {_cell(p.reason)}" for p in problems]
    return "\n".join(out) + "\n"


def render_junit(report: dict, *, sets_of: dict[str, str] | None = None, problems: list[SetProblem] | None = None) -> str:
    """JUnit XML: one testcase per item (grouped in a testsuite per set); failure message = reasons.

    Items that raised are ``<error>``; invalid set lines become ``<error>`` testcases too, so
    CI shows them.
    """
    sets_of = sets_of or {}
    suites: dict[str, list[dict]] = {}
    for i in report["items"]:
        suites.setdefault(sets_of.get(i["id"], "eval"), []).append(i)
    bad: dict[str, list[SetProblem]] = {}
    for p in problems or []:
        bad.setdefault(Path(p.path).stem, []).append(p)
    cfg = report.get("config") or {}
    root = ET.Element("testsuites", name="qa eval")
    t_fail = t_err = t_n = 0
    t_time = 0.0
    for name in list(suites) + [b for b in bad if b not in suites]:
        cases = suites.get(name, [])
        suite = ET.SubElement(root, "testsuite", name=name)
        props = ET.SubElement(suite, "properties")
        for k in ("embeddings", "llm", "git_commit"):
            ET.SubElement(props, "property", name=k, value=str(cfg.get(k)))
        fails = errs = 0
        secs = 0.0
        for i in cases:
            tc = ET.SubElement(suite, "testcase", classname=f"qa_eval.{name}", name=i["id"], time=f"{i['latency_ms'] / 1000:.3f}")
            secs += i["latency_ms"] / 1000
            if not i["passed"]:
                msg = "; ".join(i["reasons"]) or "failed"
                errored = any(r.startswith("error:") for r in i["reasons"])
                el = ET.SubElement(tc, "error" if errored else "failure", message=msg)
                body = [f"question: {i['question']}", f"answer: {i['answer']}"]
                body += [f"[{c.get('n')}] {c.get('doc_id')} {c.get('chunk_id')}: {c.get('quote') or c.get('text', '')}" for c in i["citations"]]
                el.text = "\n".join(body)
                errs += errored
                fails += not errored
        for p in bad.get(name, []):
            tc = ET.SubElement(suite, "testcase", classname=f"qa_eval.{name}", name=f"line {p.line}", time="0")
            ET.SubElement(tc, "error", message=f"invalid set line: {p.reason}").text = str(p)
            errs += 1
        n = len(cases) + len(bad.get(name, []))
        suite.set("tests", str(n))
        suite.set("failures", str(fails))
        suite.set("errors", str(errs))
        suite.set("time", f"{secs:.3f}")
        t_n, t_fail, t_err, t_time = t_n + n, t_fail + fails, t_err + errs, t_time + secs
    root.set("tests", str(t_n))
    root.set("failures", str(t_fail))
    root.set("errors", str(t_err))
    root.set("time", f"{t_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def load_report(path: Path | str) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ValueError(f"baseline not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a JSON report ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise ValueError(f"{path}: not a `qa eval run --json` report (no metrics)")
    return data
