"""Feedback on answers: POST /api/feedback on the real server, the SQLite store next to the
index (restart, kill -9, 50 concurrent posts), `qa feedback list` and `qa eval from-feedback`.

Real parts only: `python app.py` in a subprocess on a copy of the sample index, real HTTP,
the real store file read back by the real store class and by the CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import MODERN_ID, PROJECT_ROOT, copy_index, start_qa_server, stop_process

TOKEN = "feedback-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EN_Q = "What did Le Cong Thanh recommend on climate diplomacy?"
VI_Q = "Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?"
EVIDENCE = "Bộ Tài nguyên và Môi trường"


def store_at(index_dir: Path):
    from qa.app.feedback import FILENAME, FeedbackStore

    return FeedbackStore(index_dir / FILENAME)


def post(url: str, payload: dict, headers: dict | None = AUTH) -> httpx.Response:
    return httpx.post(f"{url}/api/feedback", json=payload, headers=headers, timeout=60)


def qa_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def fb(sample_index, tmp_path_factory):
    """A token-protected server on its own copy of the sample index; yields (server, index dir)."""
    base = tmp_path_factory.mktemp("feedback")
    idx = copy_index(sample_index.dir, base / "idx")
    srv = start_qa_server(idx, base, QA_API_TOKEN=TOKEN)
    yield srv, idx
    stop_process(srv.proc)


# ----------------------------------------------------------------------------- the API


def test_feedback_on_an_answer_of_this_server_is_stored_with_its_trace(fb):
    srv, idx = fb
    r = httpx.post(f"{srv.url}/api/ask", json={"question": EN_Q}, headers=AUTH, timeout=300)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert "passages" not in answer["trace"]  # the client did not ask for the trace …
    history = [{"role": "user", "content": "Who is Le Cong Thanh?"}, {"role": "assistant", "content": "A deputy minister."}]
    r = post(srv.url, {"question": EN_Q, "history": history, "answer": answer["answer"], "citations": answer["citations"],
                       "rating": "down", "comment": "  it misses the  second recommendation "})
    assert r.status_code == 200, r.text
    saved = r.json()
    assert isinstance(saved["id"], int) and saved["trace_stored"] is True and saved["created_at"].endswith("Z")

    row = store_at(idx).get(saved["id"])
    assert row is not None
    assert (row["question"], row["rating"], row["channel"]) == (EN_Q, "down", "api")
    assert row["comment"] == "it misses the  second recommendation"
    assert row["history"] == history
    assert row["answer"] == answer["answer"]
    assert [c["chunk_id"] for c in row["citations"]] == [c["chunk_id"] for c in answer["citations"]]
    assert any(EVIDENCE in c["text"] for c in row["citations"])
    # … but the server kept the full trace of the answer it gave
    assert row["trace"]["passages"] and row["trace"]["answered_by"] == "extractive"
    assert (row["language"], row["refused"]) == ("en", False)

    # an answer this server did not give: stored with the trace sent (or none)
    r = post(srv.url, {"question": "Something else?", "answer": "made up", "rating": "up", "trace": {"mine": 1}})
    assert r.status_code == 200 and r.json()["trace_stored"] is True
    assert store_at(idx).get(r.json()["id"])["trace"] == {"mine": 1}
    r = post(srv.url, {"question": "Something else?", "answer": "made up too", "rating": "up"})
    assert r.status_code == 200 and r.json()["trace_stored"] is False
    assert store_at(idx).get(r.json()["id"])["trace"] is None
    assert r.json()["id"] > saved["id"]


@pytest.mark.parametrize("payload, problem", [
    ({"question": EN_Q, "rating": "meh"}, "rating"),
    ({"question": EN_Q, "rating": 1}, "rating"),
    ({"question": EN_Q}, "rating"),
    ({"rating": "up"}, "question"),
    ({"question": "   ", "rating": "up"}, "question is empty"),
    ({"question": EN_Q, "rating": "down", "comment": "x" * 4001}, "comment"),
    ({"question": EN_Q, "rating": "down", "citations": [{"n": 1, "text": "t"}] * 51}, "citations"),
    ({"question": EN_Q, "rating": "down", "history": [{"role": "robot", "content": "hi"}]}, "history"),
    ({"question": "x" * 20_001, "rating": "down"}, "question"),
])
def test_invalid_feedback_is_refused_with_422(fb, payload, problem):
    srv, idx = fb
    before = store_at(idx).count()
    r = post(srv.url, payload)
    assert r.status_code == 422, r.text
    assert problem in r.json()["detail"], r.json()
    assert store_at(idx).count() == before


def test_feedback_needs_the_token_like_ask(fb):
    srv, idx = fb
    before = store_at(idx).count()
    payload = {"question": EN_Q, "rating": "up"}
    assert post(srv.url, payload, headers=None).status_code == 401
    assert post(srv.url, payload, headers={"Authorization": "Bearer wrong"}).status_code == 401
    big = post(srv.url, {**payload, "comment": "x" * 1_100_000})
    assert big.status_code == 413
    assert store_at(idx).count() == before
    assert post(srv.url, payload).status_code == 200
    assert store_at(idx).count() == before + 1


def test_fifty_concurrent_posts_all_land(fb):
    srv, idx = fb
    marker = "concurrent feedback"
    with httpx.Client(headers=AUTH, timeout=60) as client, ThreadPoolExecutor(max_workers=25) as pool:
        def one(i: int) -> httpx.Response:
            return client.post(f"{srv.url}/api/feedback", json={
                "question": f"{marker} {i}?", "answer": f"answer {i}", "rating": "down" if i % 2 else "up",
                "comment": f"comment {i}", "history": [{"role": "user", "content": f"earlier {i}"}]})
        responses = list(pool.map(one, range(50)))
    assert [r.status_code for r in responses] == [200] * 50, [r.text for r in responses if r.status_code != 200]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 50
    rows = [r for r in store_at(idx).list() if r["question"].startswith(marker)]
    assert len(rows) == 50
    assert {r["id"] for r in rows} == ids
    assert sorted(r["comment"] for r in rows) == sorted(f"comment {i}" for i in range(50))
    assert sum(r["rating"] == "down" for r in rows) == 25


def test_feedback_survives_a_restart_and_a_kill_9(sample_index, tmp_path):
    idx = copy_index(sample_index.dir, tmp_path / "idx")
    srv = start_qa_server(idx, tmp_path / "a", QA_API_TOKEN=TOKEN)
    try:
        first = post(srv.url, {"question": "before the restart?", "rating": "up", "comment": "one"})
        assert first.status_code == 200
    finally:
        stop_process(srv.proc)  # a clean stop (SIGTERM)
    srv = start_qa_server(idx, tmp_path / "b", QA_API_TOKEN=TOKEN)
    try:
        second = post(srv.url, {"question": "before the kill?", "rating": "down", "comment": "two"})
        assert second.status_code == 200
        os.kill(srv.proc.pid, signal.SIGKILL)  # right after the 200: no shutdown code runs
        srv.proc.wait(timeout=10)
        assert srv.proc.returncode == -signal.SIGKILL
    finally:
        stop_process(srv.proc)
    srv = start_qa_server(idx, tmp_path / "c", QA_API_TOKEN=TOKEN)
    try:
        third = post(srv.url, {"question": "after the kill?", "rating": "down"})
        assert third.status_code == 200
        listed = qa_cli("feedback", "list", "--json", "--index-dir", str(idx))
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        assert [(r["id"], r["question"], r["comment"]) for r in rows] == [
            (first.json()["id"], "before the restart?", "one"),
            (second.json()["id"], "before the kill?", "two"),
            (third.json()["id"], "after the kill?", ""),
        ]
        assert len({first.json()["id"], second.json()["id"], third.json()["id"]}) == 3
    finally:
        stop_process(srv.proc)


# ----------------------------------------------------------------------------- the CLI and the review loop


@pytest.fixture
def rated_index(tmp_path) -> Path:
    """A folder with three ratings, written by the real store (as the server writes them)."""
    idx = tmp_path / "idx"
    store = store_at(idx)
    passage = {"n": 1, "doc_id": MODERN_ID, "title": "Xây dựng nền ngoại giao toàn diện", "source": "data/articles/x.txt",
               "chunk_id": f"{MODERN_ID}:abc:12", "text": f"… kết nối với {EVIDENCE} …", "quote": f"kết nối với {EVIDENCE}",
               "score": 0.8}
    store.add(question="Ai là Đặng Quang Tấn?", rating="up", answer="Ông là … [1]", citations=[passage], comment="good",
              language="vi", refused=False, channel="ui")
    store.add(question=VI_Q, rating="down", answer="Không có trong các bài báo.", citations=[], comment="nó có trong bài!",
              history=[{"role": "user", "content": "Lê Công Thành là ai?"}, {"role": "assistant", "content": "Thứ trưởng [1]"}],
              trace={"answered_by": "extractive", "passages": []}, refused=True, channel="embed")
    store.add(question=EN_Q, rating="down", answer="He said … [1]", citations=[passage], comment="", channel="api")
    return idx


def test_feedback_list_table_json_and_rating_filter(rated_index, tmp_path):
    table = qa_cli("feedback", "list", "--index-dir", str(rated_index))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "id" in lines[1] and "rating" in lines[1] and "comment" in lines[1]
    body = [ln for ln in lines if ln.startswith("│")]
    assert len(body) == 3
    assert "Ai là Đặng Quang Tấn?" in body[0] and " up " in body[0] and "good" in body[0]
    assert VI_Q in body[1] and " down " in body[1] and "nó có trong bài!" in body[1]
    assert body[2].startswith("│ 3 ") and EN_Q in body[2]
    assert "3 ratings (1 up, 2 down)" in table.stdout

    down = qa_cli("feedback", "list", "--json", "--rating", "down", "--index-dir", str(rated_index))
    assert down.returncode == 0, down.stderr
    rows = json.loads(down.stdout)
    assert [r["id"] for r in rows] == [2, 3] and {r["rating"] for r in rows} == {"down"}
    assert rows[0]["history"][0]["content"] == "Lê Công Thành là ai?" and rows[0]["refused"] is True

    bad = qa_cli("feedback", "list", "--rating", "meh", "--index-dir", str(rated_index))
    assert bad.returncode == 2 and "up, down" in bad.stderr
    empty = qa_cli("feedback", "list", "--json", "--index-dir", str(tmp_path / "nothing-here"))
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
    assert not (tmp_path / "nothing-here").exists()  # listing never creates the store


def test_from_feedback_items_await_review_then_run(rated_index, sample_index, tmp_path):
    from qa.eval.items import load_sets

    out = tmp_path / "review" / "feedback.dev.jsonl"
    made = qa_cli("eval", "from-feedback", str(out), "--index-dir", str(rated_index))
    assert made.returncode == 0, made.stderr
    assert "2 new item(s)" in made.stdout
    items = [json.loads(ln) for ln in out.read_text(encoding="utf-8").splitlines()]
    assert [it["id"] for it in items] == ["feedback-2", "feedback-3"]
    vi, en = items
    assert (vi["question"], vi["lang"], en["lang"]) == (VI_Q, "vi", "en")  # language: stored, else detected
    assert vi["history"] == [{"role": "user", "content": "Lê Công Thành là ai?"}, {"role": "assistant", "content": "Thứ trưởng [1]"}]
    assert vi["answer_given"] == "Không có trong các bài báo." and vi["refused"] is True and vi["passages_shown"] == []
    assert vi["feedback"] == {"id": 2, "created_at": vi["feedback"]["created_at"], "rating": "down",
                              "comment": "nó có trong bài!", "channel": "embed", "answered_by": "extractive"}
    shown = en["passages_shown"][0]
    assert shown["doc_id"] == MODERN_ID and EVIDENCE in shown["text"] and shown["source"] == "data/articles/x.txt"
    for it in items:
        assert it["review"] is True and it["expected_sources"] == [] and it["evidence"] == [] and it["expected_answer"] == ""

    # unreviewed items do not load: each is named with what to fill in
    loaded, problems = load_sets([out])
    assert loaded == [] and [p.line for p in problems] == [1, 2]
    assert all("awaiting review" in p.reason for p in problems)

    # run again: nothing repeated; a new rating is appended
    store_at(rated_index).add(question="Vaccine passports?", rating="down", answer="…")
    again = qa_cli("eval", "from-feedback", str(out), "--index-dir", str(rated_index))
    assert again.returncode == 0 and "1 new item(s)" in again.stdout and "2 already there" in again.stdout
    assert [json.loads(ln)["id"] for ln in out.read_text(encoding="utf-8").splitlines()] == ["feedback-2", "feedback-3", "feedback-4"]

    # the team reviews: fills in what the right answer needs and drops "review"
    reviewed = tmp_path / "reviewed.jsonl"
    vi.update(expected_sources=[MODERN_ID], evidence=[EVIDENCE], answer_keywords=[[EVIDENCE]])
    del vi["review"]
    reviewed.write_text(json.dumps(vi, ensure_ascii=False) + "\n", encoding="utf-8")
    loaded, problems = load_sets([reviewed])
    assert problems == [] and len(loaded) == 1
    assert loaded[0].id == "feedback-2" and loaded[0].history == vi["history"] and loaded[0].expected_sources == [MODERN_ID]

    # … and `qa eval run` takes it
    run = qa_cli("eval", "run", str(reviewed), "--index-dir", str(copy_index(sample_index.dir, tmp_path / "idx-run")),
                 "--no-warmup", "--strict", "--json", str(tmp_path / "report.json"))
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert json.dumps(report).count("feedback-2") >= 1
