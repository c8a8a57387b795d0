"""The chat UI in a real headless browser (Debian's chromium, driven by playwright).

The server is the real `python app.py` (see conftest.start_qa_server) on a copy of the
sample index; the intranet pages are the files of examples/ served from another origin.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from conftest import PROJECT_ROOT, copy_index, free_port, start_qa_server, stop_process
from test_api import EVIDENCE

playwright_api = pytest.importorskip("playwright.sync_api")

EN_Q = "What did Le Cong Thanh recommend on climate diplomacy?"
VI_Q = "Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
EXAMPLE_HOST = "http://qa.example.internal:7860"
ANSWER_TIMEOUT_MS = 240_000

XSS_ARTICLE = """Hợp tác xã cà phê Ea Tu <script>window.qaPwned='title';alert('t')</script> xuất khẩu kỷ lục

Hợp tác xã cà phê Ea Tu ở tỉnh Đắk Lắk vừa công bố kết quả kinh doanh năm 2023.

Giám đốc hợp tác xã Nguyễn Văn Bình cho biết hợp tác xã đã xuất khẩu 12.345 tấn cà phê sang châu Âu <script>window.qaPwned='script';alert('xss')</script> trong năm 2023 <img src=x onerror="window.qaPwned='img';alert('xss2')">, tăng gấp đôi so với năm trước.

Theo ông Bình, giá cà phê tăng cao giúp thu nhập của các xã viên cải thiện rõ rệt.
"""


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Debian's chromium is needed for the browser tests: apt-get install -y chromium (scripts/test.sh does it)")
    return found


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Site:
    """A static intranet site on its own origin: serves ``root`` on 127.0.0.1:<port>."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def intranet(tmp_path_factory):
    """Two static sites: an allowed one and another one; their pages are filled in later."""
    allowed, other = Site(tmp_path_factory.mktemp("site_ok")), Site(tmp_path_factory.mktemp("site_other"))
    yield allowed, other
    allowed.close()
    other.close()


@pytest.fixture(scope="module")
def ui_server(sample_index, tmp_path_factory, intranet):
    base = tmp_path_factory.mktemp("ui")
    srv = start_qa_server(copy_index(sample_index.dir, base / "idx"), base, QA_ALLOWED_ORIGINS=intranet[0].origin)
    yield srv
    stop_process(srv.proc)


def publish_examples(site: Site, server_url: str) -> None:
    """The README's example pages, pointed at the test server, on the intranet site."""
    for page in (PROJECT_ROOT / "examples").glob("*.html"):
        (site.root / page.name).write_text(page.read_text(encoding="utf-8").replace(EXAMPLE_HOST, server_url), encoding="utf-8")


def finished(scope) -> int:
    return scope.locator("#qa-chat .qa-msg:not(.qa-streaming)").count()


def ask_and_wait(scope, page, question: str):
    """Type a question, send it, wait for the finished answer; returns that message's locator."""
    before = finished(scope)
    scope.locator("#qa-input textarea").fill(question)
    scope.locator("#qa-send").click()
    return wait_answer(scope, page, before)


def wait_answer(scope, page, before: int):
    deadline_ms = ANSWER_TIMEOUT_MS
    step = 250
    while finished(scope) <= before:
        if deadline_ms <= 0:
            raise TimeoutError("no answer in time")
        page.wait_for_timeout(step)
        deadline_ms -= step
    return scope.locator("#qa-chat .qa-msg:not(.qa-streaming)").last


# ----------------------------------------------------------------------------- the chat page


def test_chat_answers_with_sources_follow_ups_and_refusals(browser, ui_server):
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    try:
        page.goto(ui_server.url + "/")
        page.wait_for_selector("#qa-input textarea", timeout=60_000)
        assert "2 documents" in page.locator(".qa-status").inner_text()
        assert "extractive" in page.locator(".qa-status").inner_text()

        # an example question, in English, asked with one click
        page.get_by_role("button", name=EN_Q).click()
        msg = wait_answer(page, page, 0)
        sources = msg.locator(".qa-source")
        assert sources.count() >= 1
        assert EVIDENCE in msg.locator(".qa-sources").inner_text()
        assert msg.locator("mark.qa-quote").count() >= 1
        # every source shows its check (extractive quotes are verified)
        assert msg.locator(".qa-support-verified").count() == sources.count()
        assert "verified" in msg.locator(".qa-support").first.inner_text()
        # hovering a marker shows its source; clicking it opens and flashes the source card
        marker = msg.locator("a.qa-cite").last
        n = marker.inner_text().strip("[]")
        assert f"qa-cite-{n}" in marker.get_attribute("class")
        title = msg.locator(f".qa-src-{n} .qa-title").inner_text()
        assert title and title in marker.get_attribute("title")
        marker.click()
        page.wait_for_selector(f"#qa-chat .qa-src-{n}.qa-flash", timeout=5_000)
        # the source link opens the article text
        href = msg.locator(".qa-link").first.get_attribute("href")
        art = httpx.get(ui_server.url + href, timeout=60)
        assert art.status_code == 200 and art.text.startswith(title)

        # the same in Vietnamese
        msg = ask_and_wait(page, page, VI_Q)
        assert EVIDENCE in msg.locator(".qa-sources").inner_text()
        assert "nguồn" in msg.locator(".qa-sources-h").inner_text().lower()

        # a follow-up that only makes sense with the history
        ask_and_wait(page, page, "Who is Dang Quang Tan?")
        msg = ask_and_wait(page, page, "What did he propose about vaccine passports?")
        assert "qa-refused" not in msg.get_attribute("class"), msg.inner_text()
        assert "hộ chiếu vaccine" in msg.locator(".qa-sources").inner_text()

        # not in the articles: a clear refusal, no sources
        msg = ask_and_wait(page, page, "Giá vàng hôm nay là bao nhiêu?")
        assert "qa-refused" in msg.get_attribute("class"), msg.inner_text()
        assert "Không có trong các bài báo" in msg.inner_text()
        assert msg.locator(".qa-source").count() == 0
        # not a dead end: the closest articles, as links, without [n] markers
        related = msg.locator(".qa-related")
        assert "các bài gần nhất" in related.inner_text().lower()
        assert related.locator("a.qa-link").count() >= 1
        assert "[1]" not in related.inner_text()
        assert page.locator("#qa-chat .qa-user").count() == 5 and finished(page) == 5
    finally:
        page.close()


# ----------------------------------------------------------------------------- embedding


def test_embed_page_in_iframe_and_web_component_from_allowed_origin(browser, ui_server, intranet):
    allowed, other = intranet
    publish_examples(allowed, ui_server.url)
    publish_examples(other, ui_server.url)

    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.goto(f"{allowed.origin}/embed.html")
        frame_el = page.wait_for_selector("#qa-frame")
        frame = frame_el.content_frame()
        frame.wait_for_selector("#qa-input textarea", timeout=60_000)
        assert frame.url.startswith(ui_server.url + "/embed")
        # compact: no header, examples or upload in the embed view
        assert frame.locator("#qa-header").count() == 0 and frame.locator("#qa-examples").count() == 0
        msg = ask_and_wait(frame, page, EN_Q)
        assert EVIDENCE in msg.locator(".qa-sources").inner_text()

        # the web component variant talks to the server from the page's origin (CORS)
        page.goto(f"{allowed.origin}/embed-web-component.html")
        page.wait_for_selector("gradio-app #qa-input textarea", timeout=60_000)
        msg = ask_and_wait(page.locator("gradio-app"), page, VI_Q)
        assert EVIDENCE in msg.locator(".qa-sources").inner_text()
    finally:
        page.close()

    # another site may not frame it: the browser refuses (CSP frame-ancestors)
    page = browser.new_page()
    try:
        page.goto(f"{other.origin}/embed.html", wait_until="load")  # "load" waits for the iframe too
        frame = page.wait_for_selector("#qa-frame").content_frame()
        assert frame is not None
        assert not frame.url.startswith(ui_server.url), frame.url  # chromium shows its error page instead
        assert frame.locator("gradio-app").count() == 0
    finally:
        page.close()


# ----------------------------------------------------------------------------- XSS


def test_uploaded_article_with_script_is_shown_as_text(browser, sample_index, tmp_path):
    srv = start_qa_server(copy_index(sample_index.dir, tmp_path / "idx"), tmp_path, QA_ALLOW_UPLOAD="true")
    article = tmp_path / "ca-phe-ea-tu.txt"
    article.write_text(XSS_ARTICLE, encoding="utf-8")
    other = tmp_path / "le-hoi-hoa.txt"  # an outlet the index did not have when the page was built
    other.write_text("Lễ hội hoa xuân khai mạc tại công viên thành phố\nBáo Hoa Xuân Thử Nghiệm | 2024-02-03\n\n"
                     "Lễ hội hoa xuân năm 2024 khai mạc sáng nay với hơn 200 loài hoa từ khắp các tỉnh.\n", encoding="utf-8")
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(srv.url + "/")
        page.wait_for_selector("#qa-input textarea", timeout=60_000)
        # upload through the UI: indexed by the same ingest code
        page.get_by_text("Add articles · Thêm bài báo").click()
        page.locator("#qa-upload input[type=file]").set_input_files([str(article), str(other)])
        page.get_by_role("button", name="Index uploaded articles").click()
        page.wait_for_function("() => document.body.innerText.includes('added 2')", timeout=ANSWER_TIMEOUT_MS)
        page.wait_for_function("() => document.querySelector('.qa-status').innerText.includes('4 documents')", timeout=60_000)
        assert {"ca-phe-ea-tu", "le-hoi-hoa"} <= {d["id"] for d in httpx.get(srv.url + "/api/documents", timeout=60).json()}
        # the outlet picker offers the new outlet without a restart
        page.get_by_text("Filters · Bộ lọc").click()
        page.locator("#qa-outlets input").click()
        page.wait_for_function("() => document.body.innerText.includes('Báo Hoa Xuân Thử Nghiệm')", timeout=60_000)
        page.keyboard.press("Escape")

        msg = ask_and_wait(page, page, "Hợp tác xã cà phê Ea Tu đã xuất khẩu bao nhiêu tấn cà phê?")
        text = msg.inner_text()
        assert "12.345 tấn" in text
        # the markup of the article is shown as text …
        assert "<script>window.qaPwned=" in text
        assert "<img src=x onerror=" in text
        assert "<script>window.qaPwned='title'" in msg.locator(".qa-title").first.inner_text()
        # … and nothing of it became an element or ran
        assert page.locator("#qa-chat script").count() == 0
        assert page.locator("#qa-chat img[src='x']").count() == 0
        page.wait_for_timeout(500)
        assert page.evaluate("() => window.qaPwned") is None
        assert dialogs == []
    finally:
        page.close()
        stop_process(srv.proc)


# ----------------------------------------------------------------------------- feedback


def test_thumbs_down_with_a_comment_is_stored(browser, ui_server):
    from qa.app.feedback import FILENAME, FeedbackStore

    store = FeedbackStore(ui_server.log.parent / "idx" / FILENAME)  # the ui_server fixture's copy of the index
    known = {r["id"] for r in store.list()}

    def new_rows() -> list[dict]:
        return [r for r in store.list() if r["id"] not in known]

    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    try:
        page.goto(ui_server.url + "/")
        page.wait_for_selector("#qa-input textarea", timeout=60_000)
        ask_and_wait(page, page, EN_Q)
        # thumbs under the answer, visible without hovering; no comment box yet
        down = page.locator("#qa-chat button[aria-label=Dislike]").last
        assert down.is_visible() and page.locator("#qa-chat button[aria-label=Like]").last.is_visible()
        assert page.locator("#qa-feedback").count() == 0
        down.click()
        page.wait_for_selector("#qa-feedback-comment textarea", state="visible", timeout=30_000)
        assert "What was wrong" in page.locator("#qa-feedback-label").inner_text()
        assert page.locator("#qa-chat button[aria-label=Disliked]").count() == 1
        page.locator("#qa-feedback-comment textarea").fill("the second recommendation is missing")
        page.locator("#qa-feedback-send").click()
        page.wait_for_function(
            "() => (document.querySelector('#qa-feedback-status') || {innerText: ''}).innerText.includes('thanks')",
            timeout=30_000)
        assert page.locator("#qa-feedback").count() == 0  # the box closes once sent
        rows = new_rows()
        assert len(rows) == 1, rows
        row = rows[0]
        assert (row["question"], row["rating"], row["channel"]) == (EN_Q, "down", "ui")
        assert row["comment"] == "the second recommendation is missing"
        assert row["history"] == [] and row["language"] == "en" and row["refused"] is False
        assert any(EVIDENCE in c["text"] for c in row["citations"]) and "[1]" in row["answer"]
        assert row["trace"]["passages"], "the UI stores the answer's full trace"
        assert f"#{row['id']}" in page.locator("#qa-feedback-status").inner_text()

        # the embed view has the thumbs too
        known |= {row["id"]}
        page.goto(ui_server.url + "/embed/")
        page.wait_for_selector("#qa-input textarea", timeout=60_000)
        ask_and_wait(page, page, VI_Q)
        page.locator("#qa-chat button[aria-label=Like]").last.click()
        page.wait_for_function(
            "() => (document.querySelector('#qa-feedback-status') || {innerText: ''}).innerText.includes('saved')",
            timeout=30_000)
        rows = new_rows()
        assert [(r["question"], r["rating"], r["channel"], r["comment"]) for r in rows] == [(VI_Q, "up", "embed", "")]
    finally:
        page.close()
