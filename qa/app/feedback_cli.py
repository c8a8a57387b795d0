"""`qa feedback …`: the ratings users gave to answers (stored by :mod:`qa.app.feedback`).

Registered in :mod:`qa.app.cli` as ``app.add_typer(feedback_app, name="feedback")``. Turning
the down-voted ones into eval items is ``qa eval from-feedback`` (:mod:`qa.app.eval_cli`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

feedback_app = typer.Typer(no_args_is_help=True, help="Ratings (thumbs up/down, comments) users gave to answers.")

console = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def feedback_records(index_dir: Optional[Path], config: Optional[Path], rating: Optional[str], limit: Optional[int] = None):
    """The stored rows of the index folder's feedback (``--index-dir`` as the other commands)."""
    import os

    from qa.app.feedback import RATINGS, feedback_path, store_for
    from qa.config import load_settings

    if rating is not None and rating not in RATINGS:
        raise typer.BadParameter(f"must be one of {', '.join(RATINGS)}", param_hint="--rating")
    if config is not None:
        os.environ["QA_CONFIG"] = str(config)
    settings = load_settings(index_dir=index_dir)
    return store_for(settings).list(rating=rating, limit=limit), feedback_path(settings)


@feedback_app.command("list")
def feedback_list(
    json_out: bool = typer.Option(False, "--json", help="Print the rows as a JSON array (with history, citations, trace)"),
    rating: Optional[str] = typer.Option(None, "--rating", help="Only this rating: up or down"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the most recent N"),
    index_dir: Optional[Path] = typer.Option(None, "--index-dir", help="Index folder (QA_INDEX_DIR, default ./vectorstore)"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file (QA_CONFIG)"),
) -> None:
    """List the ratings, oldest first: id, time, rating, question, comment."""
    rows, path = feedback_records(index_dir, config, rating, limit)
    if json_out:
        out.print(json.dumps(rows, ensure_ascii=False, indent=2), markup=False)
        return
    table = Table("id", "time", "rating", "question", "comment", "channel")
    for r in rows:
        table.add_row(str(r["id"]), r["created_at"].replace("T", " ")[:19], r["rating"],
                      escape(_clip(r["question"], 80)), escape(_clip(r["comment"], 60)), r["channel"])
    out.print(table)
    ups = sum(r["rating"] == "up" for r in rows)
    out.print(f"{len(rows)} ratings ({ups} up, {len(rows) - ups} down) in {escape(str(path))}")
