"""The ingest progress display of the command line (rich), shared by `qa ingest` and `qa eval`."""

from __future__ import annotations

from rich.markup import escape

from qa.ingest.pipeline import Progress


class RichIngestProgress(Progress):
    """Bars for files, chunks embedded and (after the commits) sentence vectors."""

    def __init__(self, progress, prefix: str = "", files: bool = True) -> None:
        self.p = progress
        self.prefix = prefix
        self.files = progress.add_task(f"{prefix}files", total=None) if files else None
        self.chunks = progress.add_task(f"{prefix}chunks embedded", total=None)
        self.sentences = None

    def files_total(self, n: int) -> None:
        if self.files is not None:
            self.p.update(self.files, total=n)

    def file_done(self, path) -> None:
        if self.files is not None:
            self.p.advance(self.files)

    def chunks_total(self, n: int) -> None:
        self.p.update(self.chunks, total=n)

    def chunks_done(self, n: int) -> None:
        self.p.advance(self.chunks, n)

    def sentences_total(self, n: int) -> None:
        if self.sentences is None:
            self.sentences = self.p.add_task(f"{self.prefix}sentence vectors (for instant answers)", total=None)
        self.p.update(self.sentences, total=n)

    def sentences_done(self, n: int) -> None:
        if self.sentences is not None:
            self.p.advance(self.sentences, n)

    def warn(self, message: str) -> None:
        self.p.console.print(f"[yellow]warning:[/] {escape(message)}")


class RichSyncProgress(RichIngestProgress):
    """`qa sync`: a bar for the feeds fetched, then the ingest bars (pages, chunks)."""

    def __init__(self, progress, prefix: str = "") -> None:
        self.feeds = progress.add_task(f"{prefix}feeds", total=None)
        super().__init__(progress, prefix)
        self.p.update(self.files, description=f"{prefix}pages")

    def feeds_total(self, n: int) -> None:
        self.p.update(self.feeds, total=n)

    def feed_done(self, url: str) -> None:
        self.p.advance(self.feeds)
