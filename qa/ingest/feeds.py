"""Feeds: a registry of RSS/Atom feeds and XML sitemaps, and ``qa sync`` that ingests their items.

The registry is a SQLite file next to the index (``<index_dir>/feeds.sqlite``, WAL mode). Per
feed it keeps the validators of the last fetch (ETag, Last-Modified), the last sync time,
status and error, and its items; per item the URL, the document id, the content hash (the
sha256 the index stores for the document), the validators, when it was last fetched, its
status and error, and how many syncs in a row failed on it.

A sync (:func:`sync_feeds`):

1. fetches every feed with a conditional GET (a 304 costs nothing; a sitemap index: each of its
   sitemaps too, with their own validators) and records new items;
2. hands the items that need a look to the ingest pipeline as :class:`~qa.ingest.web.UrlSource` s:
   new ones, failed ones (retried every sync until they succeed) and ingested ones first
   seen less than ``QA_FEED_RECHECK_DAYS`` ago, these with a conditional GET: a 304 or
   the same bytes embed nothing, a changed page replaces its document;
3. writes each item's outcome back. A failing feed or page is reported and tried again on the
   next sync; it never stops the others.
"""

from __future__ import annotations

import sqlite3
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from qa.config import Settings
from qa.ingest.documents import DocumentError
from qa.ingest.pipeline import IngestReport, Progress, ingest_sources
from qa.ingest.web import Fetcher, NotModified, UrlSource, normalise_url, url_doc_id

REGISTRY_NAME = "feeds.sqlite"
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
MAX_SITEMAP_DEPTH = 3  # a sitemap index of sitemap indexes of sitemaps

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    kind TEXT,
    title TEXT,
    etag TEXT,
    last_modified TEXT,
    added_at REAL NOT NULL,
    last_sync REAL,
    last_status TEXT,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS items (
    url TEXT PRIMARY KEY,
    feed_url TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    content_hash TEXT,
    etag TEXT,
    last_modified TEXT,
    first_seen REAL NOT NULL,
    last_fetched REAL,
    last_status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_feed ON items(feed_url);
CREATE TABLE IF NOT EXISTS parts (
    feed_url TEXT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    PRIMARY KEY (feed_url, url)
);
"""


class FeedError(ValueError):
    """A feed URL that cannot be added (unreachable, or neither RSS/Atom nor a sitemap)."""


def registry_path(settings: Settings) -> Path:
    return settings.index_dir / REGISTRY_NAME


class FeedRegistry:
    """The feeds and their items, in ``<index_dir>/feeds.sqlite``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    @classmethod
    def open(cls, settings: Settings) -> "FeedRegistry":
        return cls(registry_path(settings))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "FeedRegistry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- feeds
    def add(self, url: str, kind: str | None = None, title: str | None = None) -> bool:
        """Register a feed; False when it was already there."""
        cur = self.db.execute("INSERT OR IGNORE INTO feeds(url, kind, title, added_at) VALUES (?, ?, ?, ?)",
                              (url, kind, title, time.time()))
        return cur.rowcount == 1

    def remove(self, url: str) -> bool:
        """Forget a feed and the items only it listed (their documents stay in the index)."""
        with self.db:
            self.db.execute("BEGIN")
            cur = self.db.execute("DELETE FROM feeds WHERE url = ?", (url,))
            self.db.execute("DELETE FROM items WHERE feed_url = ?", (url,))
            self.db.execute("DELETE FROM parts WHERE feed_url = ?", (url,))
        return cur.rowcount == 1

    def feeds(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT f.*, COUNT(i.url) AS items, "
            "SUM(CASE WHEN i.last_status IN ('ingested', 'unchanged') THEN 1 ELSE 0 END) AS ingested, "
            "SUM(CASE WHEN i.last_status IN ('pending', 'failed') THEN 1 ELSE 0 END) AS pending "
            "FROM feeds f LEFT JOIN items i ON i.feed_url = f.url GROUP BY f.url ORDER BY f.added_at, f.url"
        ).fetchall()
        return [{k: r[k] for k in r.keys()} | {"ingested": r["ingested"] or 0, "pending": r["pending"] or 0} for r in rows]

    def feed(self, url: str) -> dict | None:
        r = self.db.execute("SELECT * FROM feeds WHERE url = ?", (url,)).fetchone()
        return dict(r) if r else None

    def update_feed(self, url: str, **fields) -> None:
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE feeds SET {cols} WHERE url = ?", (*fields.values(), url))

    # -- items
    def add_items(self, feed_url: str, urls: list[str]) -> int:
        """Record newly listed items (pending); returns how many were new."""
        now = time.time()
        new = 0
        with self.db:
            self.db.execute("BEGIN")
            for u in urls:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO items(url, feed_url, doc_id, first_seen) VALUES (?, ?, ?, ?)",
                    (u, feed_url, url_doc_id(u), now))
                new += cur.rowcount
        return new

    def items(self, feed_url: str | None = None) -> list[dict]:
        if feed_url is None:
            rows = self.db.execute("SELECT * FROM items ORDER BY first_seen, rowid").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM items WHERE feed_url = ? ORDER BY first_seen, rowid", (feed_url,)).fetchall()
        return [dict(r) for r in rows]

    def record_items(self, rows: list[tuple]) -> None:
        """(url, status, error, content_hash, etag, last_modified) per fetched item, in one transaction."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN")
            for url, status, error, sha, etag, lm in rows:
                if status == "failed":
                    self.db.execute(
                        "UPDATE items SET last_status = 'failed', last_error = ?, failures = failures + 1, "
                        "last_fetched = ? WHERE url = ?", (error, now, url))
                else:
                    self.db.execute(
                        "UPDATE items SET last_status = ?, last_error = NULL, failures = 0, last_fetched = ?, "
                        "content_hash = COALESCE(?, content_hash), etag = ?, last_modified = ? WHERE url = ?",
                        (status, now, sha, etag, lm, url))

    # -- the sitemaps of a sitemap index
    def parts(self, feed_url: str) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM parts WHERE feed_url = ? ORDER BY rowid", (feed_url,))]

    def set_parts(self, feed_url: str, urls: list[str]) -> None:
        """The index's sitemaps now: new ones added (no validators), gone ones dropped."""
        with self.db:
            self.db.execute("BEGIN")
            keep = set(urls)
            for p in self.parts(feed_url):
                if p["url"] not in keep:
                    self.db.execute("DELETE FROM parts WHERE feed_url = ? AND url = ?", (feed_url, p["url"]))
            for u in urls:
                self.db.execute("INSERT OR IGNORE INTO parts(feed_url, url) VALUES (?, ?)", (feed_url, u))

    def update_part(self, feed_url: str, url: str, etag: str | None, last_modified: str | None) -> None:
        self.db.execute("UPDATE parts SET etag = ?, last_modified = ? WHERE feed_url = ? AND url = ?",
                        (etag, last_modified, feed_url, url))

    def last_sync(self) -> float | None:
        r = self.db.execute("SELECT MAX(last_sync) FROM feeds").fetchone()
        return r[0] if r else None


# ----------------------------------------------------------------------------- parsing


@dataclass
class Parsed:
    kind: str  # "rss" | "atom" | "sitemap" | "sitemapindex"
    title: str | None
    items: list[str]  # article URLs, in feed order
    sitemaps: list[str] = field(default_factory=list)  # child sitemaps of a sitemap index


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def parse_feed(content: bytes, base_url: str) -> Parsed:
    """An RSS/Atom feed (feedparser) or an XML sitemap / sitemap index (ElementTree)."""
    head = content[:2048].lstrip()
    if b"<urlset" in head or b"<sitemapindex" in head:
        try:
            root = ET.fromstring(content)
        except ET.ParseError as exc:
            raise FeedError(f"invalid sitemap XML ({exc})") from exc
        kind = _local(root.tag)
        if kind in ("urlset", "sitemapindex"):
            locs = [(el.text or "").strip() for el in root.iter() if _local(el.tag) == "loc"]
            locs = [urljoin(base_url, u) for u in locs if u]
            if kind == "urlset":
                return Parsed("sitemap", None, _dedupe(locs))
            return Parsed("sitemapindex", None, [], _dedupe(locs))
    import feedparser

    d = feedparser.parse(content, response_headers={"content-location": base_url})
    version = d.get("version") or ""
    if not version and not d.entries:
        why = f" ({d.get('bozo_exception')})" if d.get("bozo") else ""
        raise FeedError(f"neither an RSS/Atom feed nor a sitemap{why}")
    links = []
    for e in d.entries:
        link = e.get("link")
        if not link:
            for ln in e.get("links", []):
                if ln.get("rel", "alternate") == "alternate" and ln.get("href"):
                    link = ln["href"]
                    break
        if link:
            links.append(urljoin(base_url, link.strip()))
    kind = "atom" if version.startswith("atom") else "rss"
    return Parsed(kind, (d.feed.get("title") or None), _dedupe(links))


def _dedupe(urls: list[str]) -> list[str]:
    seen, out = set(), []
    for u in urls:
        if not u.startswith(("http://", "https://")):
            continue
        n = normalise_url(u)
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


def fetch_feed(fetcher: Fetcher, url: str, *, etag: str | None = None, last_modified: str | None = None,
               depth: int = 0) -> tuple[Parsed, str | None, str | None]:
    """Fetch and parse a feed; a sitemap index is followed to its sitemaps (their items merged).

    Returns (parsed, etag, last_modified). Raises NotModified (304) or FetchError / FeedError.
    """
    r = fetcher.get(url, etag=etag, last_modified=last_modified, accept=FEED_ACCEPT)
    parsed = parse_feed(r.content, r.url)
    if parsed.kind == "sitemapindex" and depth < MAX_SITEMAP_DEPTH:
        items: list[str] = []
        errors = []
        for child in parsed.sitemaps:
            try:
                sub, _, _ = fetch_feed(fetcher, child, depth=depth + 1)
            except (DocumentError, FeedError) as exc:
                errors.append(f"{child}: {exc}")
                continue
            items.extend(sub.items)
        if errors and not items:
            raise FeedError("no readable sitemap in the index: " + "; ".join(errors[:3]))
        parsed = Parsed("sitemapindex", parsed.title, _dedupe(items), parsed.sitemaps)
    return parsed, r.etag, r.last_modified


def check_feed(url: str, settings: Settings, fetcher: Fetcher | None = None) -> Parsed:
    """Fetch a feed once (for ``qa feeds add``): what it is and how many items it lists."""
    own = fetcher is None
    fetcher = fetcher or Fetcher(settings)
    try:
        parsed, _, _ = fetch_feed(fetcher, url)
    except NotModified:  # cannot happen without validators
        raise FeedError("the server answered 304 to an unconditional request")
    except DocumentError as exc:
        raise FeedError(f"cannot fetch the feed: {exc}") from exc
    finally:
        if own:
            fetcher.close()
    return parsed


# ----------------------------------------------------------------------------- sync


class SyncProgress(Progress):
    """Ingest progress plus the feed fetches."""

    def feeds_total(self, n: int) -> None: ...
    def feed_done(self, url: str) -> None: ...


@dataclass
class FeedResult:
    url: str
    status: str  # "ok" | "not_modified" | "failed"
    error: str | None = None
    items: int = 0  # listed in the feed (0 when not fetched)
    new_items: int = 0


@dataclass
class SyncReport:
    feeds: list[FeedResult] = field(default_factory=list)
    ingest: IngestReport = field(default_factory=IngestReport)
    checked: int = 0  # item pages requested
    not_modified: int = 0  # of which answered 304
    failed_items: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)
    pending: int = 0  # items still waiting (failed ones, retried next sync)
    requests: int = 0  # HTTP requests sent (robots.txt and retries included)
    seconds: float = 0.0

    def as_json(self) -> dict:
        return {
            "feeds": [f.__dict__ for f in self.feeds],
            **self.ingest.counts(),
            "chunks_embedded": self.ingest.chunks_embedded,
            "checked": self.checked,
            "not_modified": self.not_modified,
            "failed_items": [{"url": u, "reason": r} for u, r in self.failed_items],
            "pending": self.pending,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
        }


def _due(item: dict, manifest: dict, now: float, recheck_s: float) -> tuple[bool, bool]:
    """(look at it this sync, with a conditional GET)."""
    if item["last_status"] in ("pending", "failed"):
        return True, False
    rec = manifest.get(item["doc_id"])
    if rec is None or rec.source != item["url"]:
        return True, False  # its document was removed (or replaced by a file of that id): fetch afresh
    conditional = rec.sha256 == item["content_hash"]
    if now - item["first_seen"] > recheck_s:
        return False, conditional
    return True, conditional


def _sync_feed(f: dict, registry: FeedRegistry, fetcher: Fetcher, progress: SyncProgress) -> FeedResult:
    """Fetch one feed (conditionally) and record the items it lists.

    A sitemap index keeps its sitemaps and their validators in the registry: each sitemap is
    fetched with its own conditional GET, also when the index itself answers 304.
    """
    url, now = f["url"], time.time()
    try:
        try:
            r = fetcher.get(url, etag=f["etag"], last_modified=f["last_modified"], accept=FEED_ACCEPT)
        except NotModified:
            status, kind, title, etag, lm, items = "not_modified", f["kind"], f["title"], f["etag"], f["last_modified"], []
            children = [p["url"] for p in registry.parts(url)] if kind == "sitemapindex" else []
        else:
            parsed = parse_feed(r.content, r.url)
            status, kind, title, etag, lm, items = "ok", parsed.kind, parsed.title or f["title"], r.etag, r.last_modified, parsed.items
            children = parsed.sitemaps
            registry.set_parts(url, children)
        errors, read = [], 0
        known = {p["url"]: p for p in registry.parts(url)}
        for child in children:
            part = known.get(child, {})
            try:
                cr = fetcher.get(child, etag=part.get("etag"), last_modified=part.get("last_modified"), accept=FEED_ACCEPT)
            except NotModified:
                read += 1
                continue
            except DocumentError as exc:
                errors.append(f"{child}: {exc}")
                continue
            try:
                sub = parse_feed(cr.content, cr.url)
                if sub.kind == "sitemapindex":  # an index of indexes: read in full
                    sub, _, _ = fetch_feed(fetcher, child, depth=1)
            except (DocumentError, FeedError) as exc:
                errors.append(f"{child}: {exc}")
                continue
            read += 1
            items = items + sub.items
            registry.update_part(url, child, cr.etag, cr.last_modified)
        if children and not read:
            raise FeedError("no readable sitemap in the index: " + "; ".join(errors[:3]))
        for e in errors:
            progress.warn(f"feed {url}: {e}")
    except (DocumentError, FeedError) as exc:
        registry.update_feed(url, last_sync=now, last_status="failed", last_error=str(exc))
        progress.warn(f"feed {url}: {exc}")
        return FeedResult(url, "failed", str(exc))
    new = registry.add_items(url, _dedupe(items))
    error = "; ".join(errors[:3]) if errors else None
    if status == "not_modified" and new:
        status = "ok"  # the index did not change, one of its sitemaps did
    registry.update_feed(url, kind=kind, title=title, etag=etag, last_modified=lm, last_sync=now,
                         last_status=status, last_error=error)
    return FeedResult(url, status, error, len(_dedupe(items)), new)


def sync_feeds(settings: Settings, embedder, store, *, registry: FeedRegistry | None = None,
               fetcher: Fetcher | None = None, progress: SyncProgress | None = None,
               only: list[str] | None = None) -> SyncReport:
    """Fetch every registered feed (or ``only`` these) and ingest new and changed items."""
    t0 = time.perf_counter()
    progress = progress or SyncProgress()
    own_reg, own_fetch = registry is None, fetcher is None
    registry = registry or FeedRegistry.open(settings)
    fetcher = fetcher or Fetcher(settings)
    report = SyncReport()
    requests_before = fetcher.requests
    try:
        feeds = [f for f in registry.feeds() if only is None or f["url"] in only]
        progress.feeds_total(len(feeds))
        for f in feeds:
            report.feeds.append(_sync_feed(f, registry, fetcher, progress))
            progress.feed_done(f["url"])

        manifest = store.manifest(refresh=True)
        now = time.time()
        recheck_s = settings.feed_recheck_days * 86400.0
        sources: list[UrlSource] = []
        seen: set[str] = set()
        for f in feeds:
            for item in registry.items(f["url"]):
                if item["url"] in seen:
                    continue
                seen.add(item["url"])
                due, conditional = _due(item, manifest, now, recheck_s)
                if not due:
                    continue
                sources.append(UrlSource(item["url"], item["doc_id"], fetcher,
                                         etag=item["etag"] if conditional else None,
                                         last_modified=item["last_modified"] if conditional else None))
        report.checked = len(sources)
        report.ingest = ingest_sources(sources, settings, embedder, store, progress=progress)

        ok = set(report.ingest.added) | set(report.ingest.updated) | set(report.ingest.unchanged)
        failed = dict(report.ingest.failed)
        rows = []
        for s in sources:
            if s.key in failed or s.doc_id not in ok:
                why = failed.get(s.key) or s.error or "not ingested"
                report.failed_items.append((s.key, why))
                rows.append((s.key, "failed", why, None, None, None))
            elif s.status == "not_modified":
                report.not_modified += 1
                rows.append((s.key, "unchanged", None, None, s.etag, s.last_modified))
            else:
                status = "unchanged" if s.doc_id in report.ingest.unchanged else "ingested"
                rows.append((s.key, status, None, s.sha, s.etag, s.last_modified))
        registry.record_items(rows)
        report.pending = sum(f["pending"] for f in registry.feeds() if only is None or f["url"] in only)
    finally:
        report.requests = fetcher.requests - requests_before
        if own_fetch:
            fetcher.close()
        if own_reg:
            registry.close()
    report.seconds = time.perf_counter() - t0
    return report


def parse_interval(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``1h30m``, ``2d`` or plain seconds → seconds (> 0)."""
    import re

    s = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        value = float(s)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", s)
        if not parts or "".join(n + u for n, u in parts) != s:
            raise ValueError(f"not an interval: {text!r} (use e.g. 90s, 30m, 1h, 1h30m)")
        value = sum(float(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in parts)
    if value <= 0:
        raise ValueError(f"the interval must be positive: {text!r}")
    return value
