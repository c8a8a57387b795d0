"""A small news site on 127.0.0.1 for the URL-ingest and feed tests: a real HTTP server.

``NewsSite`` runs :class:`http.server.ThreadingHTTPServer` in a thread. Pages are set per path
(``site.page(path, body, ...)``) and can change while it runs. Every 200 answer carries an
``ETag`` (the body's sha1) and a ``Last-Modified``; ``If-None-Match`` / ``If-Modified-Since``
are honoured with a 304. ``site.log`` records (method, path, status, headers) of every request.

Special pages: ``delay`` (seconds before answering), ``status`` (e.g. 404, 503),
``fail_times`` (answer 503 that many times first), ``chunked`` (no Content-Length),
``location`` (with ``status=301``: a redirect).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Page:
    body: bytes
    ctype: str = "text/html; charset=utf-8"
    status: int = 200
    delay: float = 0.0
    fail_times: int = 0
    chunked: bool = False
    validators: bool = True
    modified: float = 0.0
    location: str | None = None  # a redirect (with status 301/302)
    retry_after: str | None = None  # sent with the 503s of fail_times


class NewsSite:
    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.log: list[tuple[str, str, int, dict]] = []
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                site.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "NewsSite":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- content
    def page(self, path: str, body: str | bytes, **kw) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self.lock:
            self.pages[path] = Page(data, modified=kw.pop("modified", None) or time.time(), **kw)
        return self.url + path

    def requests(self, path: str | None = None) -> list[tuple[str, str, int, dict]]:
        with self.lock:
            return [r for r in self.log if path is None or r[1] == path]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    # -- serving
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("#")[0]
        with self.lock:
            p = self.pages.get(path)
            if p is not None and p.fail_times > 0:
                p.fail_times -= 1
                status = 503
            else:
                status = p.status if p is not None else 404
        if p is not None and p.delay:
            time.sleep(p.delay)
        headers = {k.lower(): v for k, v in h.headers.items()}
        body = b"not found" if p is None else p.body
        extra: dict[str, str] = {}
        if p is not None and status == 200 and p.validators:
            etag = '"' + hashlib.sha1(p.body).hexdigest()[:16] + '"'
            lm = formatdate(int(p.modified), usegmt=True)
            extra = {"ETag": etag, "Last-Modified": lm}
            inm, ims = headers.get("if-none-match"), headers.get("if-modified-since")
            if (inm and inm == etag) or (not inm and ims and ims == lm):
                status = 304
        with self.lock:
            self.log.append(("GET", path, status, headers))
        try:
            h.send_response(status)
            if p is not None and p.location:
                h.send_header("Location", p.location)
            if p is not None and p.retry_after and status == 503:
                h.send_header("Retry-After", p.retry_after)
            for k, v in extra.items():
                h.send_header(k, v)
            if status == 304:
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            if status >= 400:
                body = f"error {status}".encode()
            h.send_header("Content-Type", p.ctype if p is not None and status == 200 else "text/plain")
            if p is not None and p.chunked and status == 200:
                h.send_header("Transfer-Encoding", "chunked")
                h.end_headers()
                for k in range(0, len(body), 16384):
                    part = body[k : k + 16384]
                    h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                h.wfile.write(b"0\r\n\r\n")
            else:
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeouts, size limit)


def article_html(title: str, paragraphs: list[str], *, author: str | None = None, date: str | None = None,
                 site: str = "Tin Mẫu", lang: str = "vi") -> str:
    meta = [f'<meta property="og:title" content="{title}">', f'<meta property="og:site_name" content="{site}">']
    if author:
        meta.append(f'<meta name="author" content="{author}">')
    if date:
        meta.append(f'<meta property="article:published_time" content="{date}">')
    paras = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title} | {site}</title>
{chr(10).join(meta)}
</head><body>
<header><nav><a href="/">Trang chủ</a> <a href="/the-gioi">Thế giới</a></nav></header>
<main><article><h1>{title}</h1>
{paras}
</article></main>
<footer>© {site}</footer>
</body></html>
"""


def rss(title: str, links: list[str]) -> str:
    items = "\n".join(f"<item><title>Bài {k}</title><link>{u}</link><guid>{u}</guid></item>" for k, u in enumerate(links))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{title}</title><link>http://example.invalid/</link>
<description>test</description>
{items}
</channel></rss>
"""


def atom(title: str, links: list[str]) -> str:
    entries = "\n".join(
        f'<entry><title>Entry {k}</title><id>urn:x:{k}</id><link rel="alternate" href="{u}"/>'
        f"<updated>2024-05-0{k % 9 + 1}T00:00:00Z</updated></entry>" for k, u in enumerate(links))
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title><id>urn:x:feed</id>
<updated>2024-05-09T00:00:00Z</updated>
{entries}
</feed>
"""


def sitemap(links: list[str]) -> str:
    urls = "\n".join(f"<url><loc>{u}</loc></url>" for u in links)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{urls}
</urlset>
"""


def sitemap_index(links: list[str]) -> str:
    maps = "\n".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in links)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{maps}
</sitemapindex>
"""
