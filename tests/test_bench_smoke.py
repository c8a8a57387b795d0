"""The benchmarks run and write their JSON (tiny sizes; no timing is asserted — see bench/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT

TINY_XQUAD = PROJECT_ROOT / "tests" / "data" / "xquad_tiny"


def _run(args: list[str], tmp_path, **env) -> dict:
    out = tmp_path / "out.json"
    full_env = dict(os.environ, QA_BENCH_XQUAD=str(TINY_XQUAD), XDG_CACHE_HOME=str(tmp_path / "cache"), **env)
    proc = subprocess.run([sys.executable, *args, "--work", str(tmp_path / "work"), "--json", str(out)],
                          cwd=PROJECT_ROOT, env=full_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "|" in proc.stdout  # the table
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _needs_tiny_xquad():
    if not (TINY_XQUAD / "xquad.vi.tiny.json").exists():
        pytest.skip("tests/data/xquad_tiny is missing")


@pytest.mark.parametrize("mode", ["lazy", "ingest"])
def test_ingest_bench_runs(tmp_path, mode):
    data = _run(["bench/ingest.py", "--articles", "3", "--no-samples", "--reingest-articles", "6"], tmp_path,
                QA_SENTENCE_VECTORS=mode)
    for key in ("articles", "chunks", "pipeline_chunks_per_s", "encoder_chunks_per_s", "ratio", "reingest_seconds",
                "reingest_embeddings", "peak_rss_mb"):
        assert key in data, key
    assert data["articles"] == 3 and data["chunks"] > 0
    assert data["pipeline_chunks_per_s"] > 0 and data["encoder_chunks_per_s"] > 0
    assert data["reingest_articles"] == 6 and data["reingest_embeddings"] == 0
    assert data["reingest_cli_chunks_embedded"] == 0
    if mode == "ingest":
        assert data["sentences_embedded"] > 0 and data["sentence_vectors_seconds"] > 0
        assert data["ratio_total"] < data["ratio"]
    else:
        assert data["sentences_embedded"] == 0


@pytest.mark.parametrize(
    "server,mode",
    [(False, "lazy"), (False, "ingest"), pytest.param(True, "ingest", marks=pytest.mark.server)],
    ids=["embedded-lazy", "embedded-ingest", "server-ingest"],
)
def test_query_bench_runs(tmp_path, server, mode):
    args = ["bench/query.py", "--sizes", "40,80", "--queries", "2", "--real-docs", "1", "--loop", "3", "--no-startup"]
    data = _run(args + (["--server"] if server else []), tmp_path, QA_SENTENCE_VECTORS=mode)
    assert set(data["sizes"]) == {"40", "80"}
    for n, row in data["sizes"].items():
        for key in ("retrieve_p50_ms", "retrieve_p95_ms", "answer_p50_ms", "answer_p95_ms", "rss_mb"):
            assert isinstance(row[key], (int, float)), (n, key)
        assert row["chunks"] == int(n) == row["keyword_rows"]
        if mode == "ingest":  # the benchmark's synthetic fill covers every sentence an answer scores
            assert row["sentences_embedded_per_question"] == 0, row
            assert row["passes"]["nocache"]["sentences_embedded_per_question"] > 0
        else:
            assert row["passes"]["cold"]["sentences_embedded_per_question"] > 0
    assert data["mode"] == ("server" if server else "embedded")
    assert data["loop"]["questions"] == 3


def test_sync_bench_runs(tmp_path):
    data = _run(["bench/sync.py", "--items", "4"], tmp_path)
    assert data["first_sync_added"] == 4 and data["first_sync_chunks"] == data["files_chunks"] > 0
    assert data["resync_embeddings"] == 0 and data["resync_not_modified"] == 4
    assert data["ratio_feed_vs_files"] > 0
