"""`qa chat`: an interactive terminal chat with history, driven through stdin (real process,
real sample index; the model is the scripted server of tests/fake_llm.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import PROJECT_ROOT, free_port


def _chat(lines: list[str], env_extra: dict, args: list[str] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "qa", "chat", *args], input="\n".join(lines) + "\n",
        capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=600,
    )


def test_chat_with_llm_uses_the_history_for_follow_ups(sample_index, fake_llm):
    # 1st request: answer (quote mode); 2nd: the rewrite of the follow-up; then quote mode again
    fake_llm.script({"quote": True}, "Ông Đặng Quang Tấn đề xuất gì về hộ chiếu vaccine?")
    p = _chat(
        ["Ông Đặng Quang Tấn là ai?", "", "Ông ấy đề xuất gì về hộ chiếu vaccine?", "/new", "Ông ấy đề xuất gì?", "/quit",
         "never asked"],
        {"QA_INDEX_DIR": str(sample_index.dir), "QA_LLM_BASE_URL": fake_llm.base_url},
        ["--llm", "openai:fake"],
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    reqs = [r["messages"][-1]["content"] for r in fake_llm.requests()]
    rewrites = [c for c in reqs if "<conversation>" in c]
    answers = [c for c in reqs if "<passage " in c]
    # three questions answered; only the follow-up inside a conversation was rewritten
    assert len(answers) == 3 and len(rewrites) == 1
    assert "user: Ông Đặng Quang Tấn là ai?" in rewrites[0] and "Follow-up question: Ông ấy đề xuất gì về hộ chiếu vaccine?" in rewrites[0]
    assert "assistant: Theo các bài báo" in rewrites[0]  # the previous answer is part of the history
    assert "In this conversation the question means: Ông Đặng Quang Tấn đề xuất gì về hộ chiếu vaccine?" in answers[1]
    assert "In this conversation the question means" not in answers[2]  # /new cleared the history
    # the first two answers cite their passages (the last question, without history, may be refused)
    assert p.stdout.count("Sources") >= 2 and "hộ chiếu vaccine" in p.stdout
    assert "never asked" not in "".join(reqs)


def test_chat_without_llm_and_with_llm_down(sample_index):
    env = {"QA_INDEX_DIR": str(sample_index.dir)}
    p = _chat(["Who is Dang Quang Tan?", "What did he propose about vaccine passports?"], env, ["--no-stream"])  # ends at EOF
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("Sources") == 2 and "hộ chiếu vaccine" in p.stdout  # the follow-up found its passage
    assert "note:" not in p.stderr and "extractive" in p.stderr  # the banner names the generator

    env["QA_LLM_BASE_URL"] = f"http://127.0.0.1:{free_port()}/v1"
    p = _chat(["What did Le Cong Thanh recommend on climate diplomacy?", "/quit"], env, ["--llm", "openai:fake"])
    assert p.returncode == 0 and "Traceback" not in p.stderr
    assert sum(line.startswith("note:") for line in p.stderr.splitlines()) == 1
    assert "Bộ Tài nguyên và Môi trường" in p.stdout and "Sources" in p.stdout
