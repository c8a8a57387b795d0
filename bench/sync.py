"""Feed-sync benchmark: `qa sync` over a local feed of N articles, then a re-sync, vs ingesting files.

    python bench/sync.py [--items N] [--work DIR] [--json OUT]

1. Writes N synthetic short HTML articles (Vietnamese and English, alternately; generated
   here, deterministic) into a folder, and an RSS feed listing them all.
2. Serves that folder on 127.0.0.1 (``python -m http.server`` in its own process, HTTP/1.1:
   Last-Modified on every page, If-Modified-Since answered with 304).
3. Files: ``ingest_paths`` over the folder into a fresh index (the same pages, read from disk).
4. First sync: the feed registered in another fresh index, ``sync_feeds`` (fetch the feed, fetch
   every page through the polite fetcher with ``QA_FETCH_DELAY=0``, ingest).
5. Re-sync of the unchanged feed: a conditional GET for the feed and for every page; target 0
   embeddings and ≤ 5 s for 1,000 items.

Reported: seconds and chunks/s of steps 3–5, the throughput ratio feed / files (target ≥ 0.9),
the embeddings computed by the re-sync, HTTP requests and 304s. The sentence-vector phase
is off (``QA_SENTENCE_VECTORS=lazy`` unless set): it is the same work for both sources.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import subprocess
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, quiet_logs, setup_env, table, write_json  # noqa: E402

VI_PLACES = ["Hà Nội", "Đà Nẵng", "Huế", "Cần Thơ", "Hải Phòng", "Nha Trang", "Vinh", "Quy Nhơn", "Đà Lạt", "Hạ Long"]
VI_TOPICS = ["tuyến xe buýt điện", "chợ đêm", "công viên ven sông", "bệnh viện nhi", "thư viện số", "cầu đi bộ",
             "trường nghề", "bến cảng", "lễ hội ẩm thực", "khu công nghệ"]
EN_PLACES = ["Hanoi", "Da Nang", "Hue", "Can Tho", "Hai Phong", "Nha Trang", "Vinh", "Quy Nhon", "Da Lat", "Ha Long"]
EN_TOPICS = ["electric bus route", "night market", "riverside park", "children's hospital", "digital library",
             "footbridge", "vocational school", "container port", "food festival", "technology park"]


def article(k: int, rng: random.Random) -> tuple[str, str]:
    """(title, html) of synthetic article k: three short paragraphs, numbers that differ per article."""
    p = rng.randrange(len(VI_PLACES))
    t = rng.randrange(len(VI_TOPICS))
    n1, n2, year, month = rng.randint(2, 900), rng.randint(10, 5000), rng.randint(2019, 2026), rng.randint(1, 12)
    if k % 2 == 0:
        title = f"{VI_PLACES[p]} khởi công {VI_TOPICS[t]} số {k + 1}"
        paras = [
            f"Ngày {rng.randint(1, 28)} tháng {month} năm {year}, {VI_PLACES[p]} khởi công {VI_TOPICS[t]} số {k + 1} "
            f"với tổng vốn {n1} tỷ đồng, theo Sở Kế hoạch và Đầu tư thành phố.",
            f"Dự án dự kiến phục vụ khoảng {n2} người mỗi ngày và hoàn thành sau {rng.randint(6, 36)} tháng thi công.",
            f"Lãnh đạo địa phương cho biết {VI_TOPICS[t]} sẽ kết nối với {VI_PLACES[(p + 1) % len(VI_PLACES)]} "
            f"và tạo thêm {rng.randint(50, 900)} việc làm.",
        ]
        lang, date = "vi", f"{year}-{month:02d}-{rng.randint(1, 28):02d}T08:00:00+07:00"
    else:
        title = f"{EN_PLACES[p]} opens {EN_TOPICS[t]} number {k + 1}"
        paras = [
            f"{EN_PLACES[p]} opened {EN_TOPICS[t]} number {k + 1} in {year}, at a cost of {n1} billion dong, "
            "the city's planning department said.",
            f"The project is expected to serve about {n2} people a day after {rng.randint(6, 36)} months of work.",
            f"Officials said the {EN_TOPICS[t]} will link the city with {EN_PLACES[(p + 1) % len(EN_PLACES)]} "
            f"and create {rng.randint(50, 900)} jobs.",
        ]
        lang, date = "en", f"{year}-{month:02d}-{rng.randint(1, 28):02d}T08:00:00+07:00"
    body = "\n".join(f"<p>{x}</p>" for x in paras)
    html = f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title} | Bench News</title>
<meta property="og:title" content="{title}"><meta property="og:site_name" content="Bench News">
<meta property="article:published_time" content="{date}">
</head><body><header><nav><a href="/">Home</a></nav></header>
<main><article><h1>{title}</h1>
{body}
</article></main><footer>Bench News</footer></body></html>
"""
    return title, html


def write_site(root: Path, n: int, seed: int = 3) -> list[str]:
    """The pages and feed.xml under root; returns the page paths (relative)."""
    rng = random.Random(seed)
    pages = root / "news"
    pages.mkdir(parents=True, exist_ok=True)
    rel = []
    for k in range(n):
        _, html = article(k, rng)
        name = f"news/item-{k + 1:05d}.html"
        (root / name).write_text(html, encoding="utf-8")
        rel.append(name)
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    return rel


def write_feed(root: Path, base: str, rel: list[str]) -> None:
    items = "\n".join(f"<item><title>{r}</title><link>{base}/{r}</link><guid>{base}/{r}</guid></item>" for r in rel)
    (root / "feed.xml").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Bench News</title>'
        f"<link>{base}/</link><description>bench</description>\n{items}\n</channel></rss>\n", encoding="utf-8")


class Site:
    """The folder served by ``python -m http.server`` in its own process (so serving does not
    take CPU from the ingesting process): HTTP/1.1, Last-Modified / If-Modified-Since."""

    def __init__(self, root: Path) -> None:
        from _common import free_port

        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Site":
        import httpx

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--protocol", "HTTP/1.1",
             "--directory", str(self.root), str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/robots.txt", timeout=1.0)
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("the local HTTP server did not start")
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1000, help="articles in the feed (default 1000)")
    ap.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    ap.add_argument("--json", type=Path, dest="json_out", help="write the results here")
    args = ap.parse_args(argv)
    os.environ.setdefault("QA_SENTENCE_VECTORS", "lazy")
    quiet_logs()

    from qa.config import load_settings
    from qa.index.embeddings import make_embedder
    from qa.index.store import Store
    from qa.ingest.feeds import FeedRegistry, sync_feeds
    from qa.ingest.pipeline import ingest_paths

    work = args.work or Path(tempfile.mkdtemp(prefix="qa-bench-sync-"))
    if work.exists():
        shutil.rmtree(work)
    root = work / "site"
    rel = write_site(root, args.items)
    fetch = dict(fetch_delay=0.0, fetch_retries=0, fetch_timeout=10.0)
    base = load_settings(index_dir=work / "index-files", **fetch)
    embedder = make_embedder(base)
    embedder.embed_passages(["warm up", "khởi động"])  # model load outside the timings

    with Site(root) as site:
        write_feed(root, site.url, rel)

        # files
        store_f = Store(base, embedder.describe())
        e0 = embedder.texts_embedded
        files = ingest_paths([root / "news"], base, embedder, store_f)
        if files.failed:
            raise SystemExit(f"file ingest failed: {files.failed[:3]}")
        files_emb = embedder.texts_embedded - e0

        # first sync
        settings = load_settings(index_dir=work / "index-feed", **fetch)
        store = Store(settings, embedder.describe())
        with FeedRegistry.open(settings) as reg:
            reg.add(f"{site.url}/feed.xml")
            e0 = embedder.texts_embedded
            first = sync_feeds(settings, embedder, store, registry=reg)
            first_emb = embedder.texts_embedded - e0
            if first.failed_items:
                raise SystemExit(f"sync failed for {first.failed_items[:3]}")
            e0 = embedder.texts_embedded
            t0 = time.perf_counter()
            again = sync_feeds(settings, embedder, store, registry=reg)
            resync_s = time.perf_counter() - t0
            resync_emb = embedder.texts_embedded - e0

    files_cps = files.chunks_embedded / files.searchable_seconds
    feed_cps = first.ingest.chunks_embedded / first.seconds
    result = {
        "items": args.items,
        "embeddings": base.embeddings,
        "sentence_vectors": base.sentence_vectors,
        "files_seconds": round(files.searchable_seconds, 3),
        "files_chunks": files.chunks_embedded,
        "files_embeddings": files_emb,
        "files_chunks_per_s": round(files_cps, 3),
        "first_sync_seconds": round(first.seconds, 3),
        "first_sync_added": len(first.ingest.added),
        "first_sync_chunks": first.ingest.chunks_embedded,
        "first_sync_embeddings": first_emb,
        "first_sync_chunks_per_s": round(feed_cps, 3),
        "first_sync_requests": first.requests,
        "ratio_feed_vs_files": round(feed_cps / files_cps, 3),
        "resync_seconds": round(resync_s, 3),
        "resync_embeddings": resync_emb,
        "resync_checked": again.checked,
        "resync_not_modified": again.not_modified,
        "resync_feeds_not_modified": sum(f.status == "not_modified" for f in again.feeds),
        "resync_requests": again.requests,
        "resync_timings": again.ingest.timings,
        "machine": machine(),
    }
    print()
    print(f"sync benchmark ({result['embeddings']}, {args.items} items, sentence vectors {result['sentence_vectors']}, "
          f"load {result['machine']['loadavg_1m']})")
    print(table(["measure", "value"], [
        ["ingest from files s (until searchable)", result["files_seconds"]],
        ["files chunks/s", result["files_chunks_per_s"]],
        ["first sync s (feed + pages fetched + ingest)", result["first_sync_seconds"]],
        ["first sync chunks/s", result["first_sync_chunks_per_s"]],
        ["ratio feed / files (target ≥ 0.9)", result["ratio_feed_vs_files"]],
        ["first sync articles added", result["first_sync_added"]],
        ["re-sync of the unchanged feed s (target ≤ 5 at 1000)", result["resync_seconds"]],
        ["re-sync embeddings (target 0)", result["resync_embeddings"]],
        ["re-sync pages checked / 304", f"{result['resync_checked']} / {result['resync_not_modified']}"],
        ["re-sync feed not modified; HTTP requests", f"{result['resync_feeds_not_modified']}/1; {result['resync_requests']}"],
    ]))
    write_json(args.json_out, result)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    setup_env()
    main()
