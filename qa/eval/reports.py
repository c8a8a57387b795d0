"""Report formats of ``qa eval run``: the Markdown summary (with per-tag slices and a baseline
diff), JUnit XML for CI, and reading a saved JSON report back."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from qa.eval.gates import Gate
from qa.eval.items import SetProblem
from qa.eval.metrics import LOWER_IS_BETTER, METRICS, format_metric

# --------------------------------------------------------------------------- reports


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
        row = [k, format_metric(k, m.get(k))]
        if baseline is not None:
            row += [format_metric(k, old.get(k)), _delta(k, m.get(k), old.get(k))]
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
            row += [format_metric(k, m.get(k)) for k in _TAG_COLUMNS]
            out.append("| " + " | ".join(row) + " |")

    if report.get("by_language"):
        out += ["", "## By question language → source language", ""]
        cols = ("hit@1", "hit@5", "mrr@10", "citation_precision", "keyword_coverage", "false_refusal_rate")
        out.append("| slice | n | " + " | ".join(cols) + " |")
        out.append("|---|---:|" + "---:|" * len(cols))
        for sl, m in report["by_language"].items():
            out.append(f"| {_cell(sl)} | {int(m.get('n') or 0)} | " + " | ".join(format_metric(k, m.get(k)) for k in cols) + " |")

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
