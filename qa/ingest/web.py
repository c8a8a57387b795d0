"""Fetching article pages and feeds politely: robots.txt, a per-host delay, retries, a size cap.

:class:`Fetcher` is the one HTTP client of ingest (``qa ingest URL``, ``qa sync``):

* ``robots.txt`` is read once per host (scheme + host + port) and obeyed for our User-Agent
  (``QA_USER_AGENT``); an unreachable one (5xx, connection error) forbids the host for the run,
  a missing one (4xx but 401/403) allows everything; its ``Crawl-delay`` is honoured;
* requests to one host are spaced by ``QA_FETCH_DELAY`` seconds;
* timeouts (``QA_FETCH_TIMEOUT``), connection errors, 429 and 5xx are retried
  ``QA_FETCH_RETRIES`` times with exponential backoff (``QA_FETCH_BACKOFF``, doubling), or
  after the server's ``Retry-After`` when longer (up to a minute);
* redirects are followed here (at most 5), each hop checked against its host's robots.txt;
* bodies are streamed and abandoned beyond ``QA_FETCH_MAX_BYTES``;
* conditional GETs: pass the ``etag`` / ``last_modified`` of the previous fetch and a 304
  comes back as :class:`NotModified`.

:class:`UrlSource` is a page as a :class:`qa.ingest.pipeline.Source`: the pipeline fetches it in
its reader thread, and the fetch outcome (status, validators, error) stays on the object for
the feed registry (:mod:`qa.ingest.feeds`).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import urllib.robotparser
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from qa.config import VERSION, Settings
from qa.ingest.documents import DocumentError, load_html_document
from qa.ingest.sources import Source, Unchanged
from qa.schema import Document
from qa.text import fold

HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_REDIRECTS = 5
MAX_RETRY_AFTER = 60.0  # seconds: the longest Retry-After waited for before a retry


class FetchError(DocumentError):
    """A page that could not be fetched; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotModified(Unchanged):
    """The server answered 304 to a conditional GET."""


@dataclass
class Response:
    url: str  # after redirects
    status: int
    content: bytes
    content_type: str = ""
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    headers: dict = field(default_factory=dict)


def user_agent(settings: Settings) -> str:
    return settings.user_agent or f"qa-news/{VERSION} (news question answering; +https://pypi.org/project/qa-news/)"


def normalise_url(url: str) -> str:
    """Lower-case scheme and host, no fragment, no default port, "/" for an empty path."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_doc_id(url: str) -> str:
    """A stable document id for a URL: a readable slug of its last path segment and a hash.

    ``https://example.vn/thoi-su/ha-noi-mo-pho-di-bo-123.html`` →
    ``ha-noi-mo-pho-di-bo-123-<10 hex>``; the same URL (up to case of the host and the
    fragment) always gives the same id.
    """
    norm = normalise_url(url)
    parts = urlsplit(norm)
    segs = [s for s in parts.path.split("/") if s]
    base = segs[-1] if segs else parts.hostname or "page"
    base = re.sub(r"\.(html?|php|aspx?|jsp)$", "", base, flags=re.IGNORECASE)
    slug = re.sub(r"[^a-z0-9]+", "-", fold(base)).strip("-")[:60].strip("-") or "page"
    return f"{slug}-{hashlib.sha1(norm.encode('utf-8')).hexdigest()[:10]}"


def host_key(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme.lower()}://{p.netloc.lower()}"


class Fetcher:
    """A polite HTTP client (see the module docstring). Thread-safe; one per run."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.agent = user_agent(settings)
        self.client = client or httpx.Client(
            headers={"User-Agent": self.agent}, follow_redirects=False,  # followed here, each hop checked against robots.txt
            timeout=httpx.Timeout(settings.fetch_timeout), trust_env=False,
        )
        self._robots: dict[str, urllib.robotparser.RobotFileParser | str] = {}
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self.requests = 0  # HTTP requests sent (robots.txt and retries included)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- politeness
    def _host_lock(self, host: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(host, threading.Lock())

    def _wait_turn(self, host: str, delay: float) -> None:
        """Space requests to one host by ``delay`` seconds (called with the host's lock held)."""
        last = self._last.get(host)
        if last is not None and delay > 0:
            wait = last + delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last[host] = time.monotonic()

    def _delay(self, host: str) -> float:
        rp = self._robots.get(host)
        crawl = None
        if isinstance(rp, urllib.robotparser.RobotFileParser):
            try:
                crawl = rp.crawl_delay(self.agent)
            except Exception:
                crawl = None
        return max(self.settings.fetch_delay, float(crawl or 0))

    def robots(self, url: str) -> urllib.robotparser.RobotFileParser | str:
        """The host's parsed robots.txt, or a reason string when the host is off limits."""
        host = host_key(url)
        with self._host_lock("robots " + host):  # not the host's request lock: reading robots.txt takes that
            if host not in self._robots:
                self._robots[host] = self._load_robots(host)
            return self._robots[host]

    def _load_robots(self, host: str):
        rp = urllib.robotparser.RobotFileParser(f"{host}/robots.txt")
        try:
            r = self._request(f"{host}/robots.txt", {}, max_bytes=512 * 1024)
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403):
                rp.parse([])  # no robots.txt: everything allowed
                return rp
            if exc.status in (401, 403):
                rp.disallow_all = True
                return rp
            return f"robots.txt unreachable ({exc}); not fetching from {host} this run"
        rp.parse(r.content.decode("utf-8", errors="replace").splitlines())
        return rp

    def allowed(self, url: str) -> tuple[bool, str]:
        rp = self.robots(url)
        if isinstance(rp, str):
            return False, rp
        if not rp.can_fetch(self.agent, url):
            return False, "disallowed by robots.txt"
        return True, ""

    # -- fetching
    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
            accept: str | None = None) -> Response:
        """GET a URL politely. Raises :class:`NotModified` (a 304) or :class:`FetchError`."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        for _hop in range(MAX_REDIRECTS + 1):
            if not url.startswith(("http://", "https://")):
                raise FetchError(f"not an http(s) URL: {url}")
            ok, why = self.allowed(url)
            if not ok:
                raise FetchError(why)
            r = self._request(url, headers, max_bytes=self.settings.fetch_max_bytes)
            if r.status in (301, 302, 303, 307, 308) and r.headers.get("location"):
                url = urljoin(url, r.headers["location"])
                continue
            return r
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, headers: dict, *, max_bytes: int) -> Response:
        host = host_key(url)
        attempts = max(0, self.settings.fetch_retries) + 1
        backoff = max(0.0, self.settings.fetch_backoff)
        last_error = "no attempt"
        retry_after = 0.0
        for attempt in range(attempts):
            if attempt:
                time.sleep(max(backoff * (2 ** (attempt - 1)), retry_after))
            with self._host_lock(host):
                self._wait_turn(host, self._delay(host) if not url.endswith("/robots.txt") else self.settings.fetch_delay)
                self.requests += 1
                try:
                    result = self._once(url, headers, max_bytes)
                except httpx.TimeoutException:
                    last_error = f"timed out after {self.settings.fetch_timeout:g}s"
                    continue
                except httpx.TransportError as exc:
                    last_error = f"connection failed ({type(exc).__name__}: {exc})"
                    continue
                except httpx.HTTPError as exc:  # e.g. too many redirects, invalid URL
                    raise FetchError(f"request failed ({type(exc).__name__}: {exc})") from exc
            if isinstance(result, Response):
                if result.status == 304:
                    raise NotModified(url)
                return result
            status, message, retry_after = result
            if status == 429 or status >= 500:
                last_error = message
                continue
            raise FetchError(message, status)
        status = None
        m = re.match(r"HTTP (\d{3})", last_error)
        if m:
            status = int(m.group(1))
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        raise FetchError(last_error + tries, status)

    def _once(self, url: str, headers: dict, max_bytes: int) -> Response | tuple[int, str, float]:
        with self.client.stream("GET", url, headers=headers) as r:
            if r.status_code == 304:
                return Response(str(r.url), 304, b"", headers=dict(r.headers))
            if r.is_redirect:
                return Response(str(r.url), r.status_code, b"", headers=dict(r.headers))
            if r.status_code >= 400:
                wait = r.headers.get("retry-after", "").strip()
                # a server asking for a pause (429/503) gets it, up to a minute; an HTTP date counts as a minute
                retry_after = min(float(wait), MAX_RETRY_AFTER) if wait.isdigit() else (MAX_RETRY_AFTER if wait else 0.0)
                return r.status_code, f"HTTP {r.status_code} {r.reason_phrase}".strip(), retry_after
            declared = r.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"too large: {int(declared):,} bytes (limit {max_bytes:,}, QA_FETCH_MAX_BYTES)", r.status_code)
            buf = bytearray()
            for part in r.iter_bytes():
                buf += part
                if len(buf) > max_bytes:
                    raise FetchError(f"too large: over {max_bytes:,} bytes (QA_FETCH_MAX_BYTES); download stopped", r.status_code)
            ctype = r.headers.get("content-type", "")
            mime = ctype.split(";")[0].strip().lower()
            m = re.search(r"charset=\"?([\w.:-]+)", ctype, re.IGNORECASE)
            return Response(str(r.url), r.status_code, bytes(buf), mime, m.group(1) if m else None,
                            r.headers.get("etag"), r.headers.get("last-modified"), dict(r.headers))


class UrlSource(Source):
    """An article page for the pipeline; after the run, the fetch outcome is on the object:
    ``status`` ("fetched", "not_modified" or "failed"), ``etag``, ``last_modified``, ``error``."""

    def __init__(self, url: str, doc_id: str, fetcher: Fetcher, *, etag: str | None = None,
                 last_modified: str | None = None) -> None:
        self.key = self.location = url
        self.doc_id = doc_id
        self.fetcher = fetcher
        self.etag, self.last_modified = etag, last_modified
        self.status: str | None = None
        self.error: str | None = None
        self.sha: str | None = None
        self._response: Response | None = None

    def _fetch(self, conditional: bool) -> Response:
        if self._response is None:
            try:
                r = self.fetcher.get(self.key, etag=self.etag if conditional else None,
                                     last_modified=self.last_modified if conditional else None,
                                     accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
            except NotModified:
                self.status = "not_modified"
                raise
            except DocumentError as exc:
                self.status, self.error = "failed", str(exc)
                raise
            if r.content_type and r.content_type not in HTML_TYPES:
                self.status, self.error = "failed", f"not an HTML page (Content-Type {r.content_type})"
                raise FetchError(self.error, r.status)
            self._response = r
            self.status = "fetched"
            self.etag, self.last_modified = r.etag, r.last_modified
            self.sha = hashlib.sha256(r.content).hexdigest()
        return self._response

    def sha256(self) -> str:
        """The page's sha256 (a conditional GET when validators were given: NotModified on a 304)."""
        self._fetch(conditional=True)
        return self.sha or ""

    def load(self) -> Document:
        r = self._fetch(conditional=False)  # the page is needed whatever the validators say
        try:
            return load_html_document(r.content, self.key, self.doc_id, r.charset)
        except DocumentError as exc:
            self.status, self.error = "failed", str(exc)
            raise
