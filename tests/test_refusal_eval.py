"""`qa eval refusal`: the SQuAD-2.0-style set from XQuAD, the eval sets, the model it trains."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT

TINY_XQUAD = Path(__file__).resolve().parent / "data" / "xquad_tiny"


def test_shift_years_and_the_xquad_split():
    from qa.eval import refusal as rf

    assert rf.shift_years("GDP quý III/2023 tăng bao nhiêu?") == "GDP quý III/2038 tăng bao nhiêu?"
    assert rf.shift_years("As of 14/12/2021, how many doses?") == "As of 14/12/2036, how many doses?"
    assert rf.shift_years("Who is the minister?") is None
    paragraphs, questions = rf.xquad_refusal(TINY_XQUAD)
    assert paragraphs and all(int(p.doc_id.rsplit("-", 1)[1]) % 2 == 0 for p in paragraphs)
    indexed = {p.doc_id for p in paragraphs}
    assert {a for _, a in questions} == {True, False}
    assert all(a == (q.doc_id in indexed) for q, a in questions)
    # the mixed archive: the second article's English paragraphs, its questions in both languages
    paragraphs, questions = rf.xquad_refusal_mixed(TINY_XQUAD)
    english = {p.doc_id.rsplit("-", 1)[0] for p in paragraphs if p.language == "en"}
    assert english and {p.language for p in paragraphs} == {"vi", "en"}
    assert all(int(p.doc_id.rsplit("-", 1)[1]) % 2 == 0 for p in paragraphs)
    assert questions and all(q.doc_id.rsplit("-", 1)[0] in english for q, _ in questions)
    assert {q.language for q, _ in questions} == {"vi", "en"} and {a for _, a in questions} == {True, False}
    indexed = {p.doc_id for p in paragraphs}
    assert all(a == (q.doc_id in indexed) for q, a in questions)


def test_training_separates_what_the_features_separate():
    from qa.eval import refusal as rf

    samples = [rf.Sample(f"q{i}", "xquad", f"a{i % 7}", "vi" if i % 2 else "en", i % 3 != 0,
                         {"best": (0.9 if i % 3 else 0.7) + 0.01 * (i % 5)}) for i in range(120)]
    model = rf.train(samples)
    assert all(model.refuses(s.x, s.language) != s.answerable for s in samples)
    assert set(model.thresholds) == {"vi", "en"}
    rep = rf.cross_validate(samples, folds=3)
    assert rep["cross_validated"]["all"]["refusal_accuracy"] == 1.0
    assert rep["cross_validated"]["all"]["false_refusal_rate"] == 0.0


def test_cli_refusal_reports_and_trains(tmp_path):
    out, model = tmp_path / "refusal.json", tmp_path / "model.json"
    proc = subprocess.run(
        [sys.executable, "-m", "qa", "eval", "refusal", "--xquad", str(TINY_XQUAD), "--mixed",
         "--set", str(PROJECT_ROOT / "eval" / "sets" / "seed_questions.dev.jsonl"), "--corpus", str(PROJECT_ROOT / "data" / "articles"),
         "--folds", "2", "--json", str(out), "--train", str(model)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rep = json.loads(out.read_text(encoding="utf-8"))
    for part in ("cross_validated", "in_sample", "baseline", "shipped"):
        assert rep[part]["all"]["n"] > 0, part
    assert {"xquad vi", "xquad en", "set"} <= set(rep["cross_validated"])
    assert {"xquad-en vi", "xquad-en en"} <= set(rep["shipped"])  # --mixed: the mixed archive's slices
    from qa.answer.answerability import FEATURES, load_model

    m = load_model(model)
    assert m is not None and set(m.weights) == set(FEATURES) and 0.0 < m.threshold < 1.0
    assert "Refusals by 2-fold cross-validation" in proc.stdout
