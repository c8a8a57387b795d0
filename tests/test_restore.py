"""Questions typed in haste (Vietnamese without diacritics, any without capitals): restored (qa.restore) and answered
as if typed with them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata

import pytest

from conftest import PROJECT_ROOT

EXAMPLE_VI = "Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?"
DEV_SET = PROJECT_ROOT / "eval" / "sets" / "seed_questions.dev.jsonl"


def strip(text: str) -> str:
    """What a user without a Vietnamese keyboard types."""
    from qa.text import strip_diacritics

    out = strip_diacritics(text)
    assert out == "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn").replace(
        "đ", "d").replace("Đ", "D")
    return out


@pytest.fixture(scope="module")
def engine(sample_index):
    from qa.answer.chain import Engine

    return Engine.open(sample_index.settings)


def test_the_word_list_restores_without_an_archive():
    from qa.restore import restore_diacritics as restore

    # "nhieu" alone is most often "nhiều", "gia" "gia", "viet" "Việt": the words decide
    assert restore("bao nhieu nguoi tham du hoi nghi?") == "bao nhiêu người tham dự hội nghị?"
    assert restore("Ai la tac gia bai viet?") == "Ai là tác giả bài viết?"
    assert restore("bai bao duoc dang ngay nao") == "bài báo được đăng ngày nào"


def test_the_archive_wording_decides_names_and_neighbours():
    from qa.restore import restore_diacritics as restore

    q = "bao noru lam bao nhieu nguoi chet o quang nam nam 2022?"
    plain = restore(q)
    assert "quảng năm" in plain.lower()  # without the archive "nam" is mostly "năm"
    archive = ["Bão Noru đổ bộ vào Quảng Nam năm 2022, làm 2 người chết ở Quảng Nam.",
               "Cơn bão Noru gây mưa lớn tại Quảng Nam."]
    restored = restore(q, archive)
    assert restored == "bão noru làm bao nhiêu người chết ở quảng nam năm 2022?", restored
    from qa.restore import restore_capitals

    assert restore_capitals(restored, archive) == "Bão Noru làm bao nhiêu người chết ở Quảng Nam năm 2022?"


def test_codes_numbers_acronyms_and_typed_capitals_are_kept():
    from qa.restore import restore_diacritics as restore

    out = restore("GDP quy III/2023 cua Viet Nam tang bao nhieu?", ["GDP quý III/2023 của Việt Nam tăng 5,33%."])
    assert out == "GDP quý III/2023 của Việt Nam tăng bao nhiêu?", out
    out = restore("Chuyen bay VN5001 ha canh o dau?", ["Chuyến bay VN5001 hạ cánh xuống sân bay."])
    assert out.startswith("Chuyến bay VN5001 hạ cánh ở đâu"), out


def test_the_archive_spelling_of_a_tone_mark_is_kept():
    from qa.restore import restore_diacritics as restore, tone_key

    assert tone_key("hoá") == tone_key("hóa") == "hóa"
    assert "hàng hoá" in restore("xuat khau hang hoa tang bao nhieu?", ["Xuất khẩu hàng hoá tăng mạnh; hàng hoá xuất khẩu."])
    assert "hàng hóa" in restore("xuat khau hang hoa tang bao nhieu?", ["Xuất khẩu hàng hóa tăng mạnh; hàng hóa xuất khẩu."])


def test_only_questions_without_any_diacritic_are_restored():
    from qa.restore import lacks_diacritics as needs_restoring

    assert needs_restoring("doi nao vo dich nam 2024")
    assert needs_restoring("Le Cong Thanh de xuat gi")
    assert not needs_restoring("Đội nào vô địch năm 2024?")  # typed with diacritics: as typed
    assert not needs_restoring("What is the GDP growth?")
    assert not needs_restoring("vaccine COVID-19")  # nothing to restore


def test_a_question_typed_without_diacritics_gets_the_same_answer(engine):
    """Every Vietnamese question of the seed set, typed without diacritics: read back as written
    (up to one syllable) and answered from the same passages."""
    items = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    vi = [it for it in items if it.get("lang") == "vi" and strip(it["question"]) != it["question"]]
    assert len(vi) >= 4
    for it in vi:
        typed = strip(it["question"])
        with_marks = engine.ask(it["question"])
        without = engine.ask(typed)
        assert without["question"] == typed  # the result echoes what the user typed
        restored = without["trace"]["read_as"]
        wrong = [(a, b) for a, b in zip(restored.split(), it["question"].split()) if a.lower() != b.lower()]
        assert len(restored.split()) == len(it["question"].split()) and len(wrong) <= 1, (restored, wrong)
        assert without["language"] == "vi"
        assert without["refused"] == with_marks["refused"], typed
        assert [c["chunk_id"] for c in without["citations"]] == [c["chunk_id"] for c in with_marks["citations"]], typed
    assert "read_as" not in engine.ask(EXAMPLE_VI)["trace"]
    assert "read_as" not in engine.ask("What did Le Cong Thanh recommend on climate diplomacy?")["trace"]


def test_restoring_can_be_turned_off(sample_index):
    from qa.answer.chain import Engine
    from conftest import make_settings

    off = Engine.open(make_settings(sample_index.dir, restore_questions=False))
    assert "read_as" not in off.ask(strip(EXAMPLE_VI))["trace"]


def test_cli_and_ui_say_how_the_question_was_read(sample_index, engine):
    from qa.app.ui import render_answer

    env = {**os.environ, "QA_INDEX_DIR": str(sample_index.dir)}
    proc = subprocess.run([sys.executable, "-m", "qa", "ask", strip(EXAMPLE_VI)], capture_output=True, text=True,
                          env=env, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"câu hỏi được hiểu là: {EXAMPLE_VI}" in " ".join((proc.stdout + proc.stderr).split())
    html = render_answer(engine.ask(strip(EXAMPLE_VI)))
    assert 'class="qa-read-as"' in html and "Câu hỏi được hiểu là" in html and EXAMPLE_VI in html


def test_the_stream_says_how_the_question_was_read_before_the_answer(sample_index, engine):
    # the reading comes first, so a user sees at once whether the bot understood the question
    events = list(engine.stream(strip(EXAMPLE_VI)))
    assert events[0] == {"type": "read_as", "question": EXAMPLE_VI, "language": "vi"}
    assert events[1]["type"] == "token" and events[-1]["type"] == "done"
    assert events[-1]["result"]["trace"]["read_as"] == EXAMPLE_VI
    assert all(ev["type"] != "read_as" for ev in engine.stream(EXAMPLE_VI))  # written with care: no such event
    env = {**os.environ, "QA_INDEX_DIR": str(sample_index.dir)}
    proc = subprocess.run([sys.executable, "-m", "qa", "ask", strip(EXAMPLE_VI), "--stream", "--json"], capture_output=True,
                          text=True, env=env, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    kinds = [json.loads(line)["type"] for line in proc.stdout.splitlines() if line.strip()]
    assert kinds[0] == "read_as" and kinds[1] == "token" and kinds[-1] == "done", kinds
    proc = subprocess.run([sys.executable, "-m", "qa", "ask", strip(EXAMPLE_VI), "--stream"], capture_output=True,
                          text=True, env=env, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert said.count(f"câu hỏi được hiểu là: {EXAMPLE_VI}") == 1  # printed once, before the answer


def test_eval_sets_can_be_asked_again_without_diacritics():
    from qa.eval.items import PLAIN_TAG, EvalItem, without_diacritics

    items = [
        EvalItem("a", EXAMPLE_VI, "vi", tags=["vi"]),
        EvalItem("b", "What did Le Cong Thanh recommend on climate diplomacy?", "en"),
        EvalItem("c", "vai tro cua ngoai giao la gi", "vi"),  # already typed without: not copied
        EvalItem("d", "Còn năm trước thì sao?", "vi",
                 history=[{"role": "user", "content": "Xuất khẩu năm 2023 đạt bao nhiêu?"},
                          {"role": "assistant", "content": "Đạt 355 tỷ USD [1]."}]),
    ]
    plain = without_diacritics(items)
    assert [p.id for p in plain] == ["a~plain", "d~plain"]
    assert plain[0].question == "Thu truong Le Cong Thanh de xuat gi ve ngoai giao khi hau?"
    assert plain[0].tags == ["vi", PLAIN_TAG] and items[0].tags == ["vi"]
    assert plain[1].history[0]["content"] == "Xuat khau nam 2023 dat bao nhieu?"
    assert plain[1].history[1]["content"] == "Đạt 355 tỷ USD [1]."  # the bot's turn is as it was


def test_capitals_come_from_the_archive_and_from_rarity():
    from qa.restore import lacks_capitals, restore_capitals

    archive = ["Thứ trưởng Lê Công Thành phát biểu. Ông Lê Công Thành cho biết SEA Games 31 thành công.",
               "Đoàn Việt Nam dự SEA Games 31; bà viết bài về Việt Nam."]
    assert lacks_capitals("what did le cong thanh say about sea games 31?")
    assert not lacks_capitals("What did Le Cong Thanh say?")
    assert lacks_capitals("What did le cong thanh say?")  # a capital first letter alone is no name
    out = restore_capitals("what did le cong thanh say about sea games 31?", archive)
    assert out == "What did Le Cong Thanh say about SEA Games 31?", out
    # a word typed with diacritics matches only itself: "viết" is not "Việt"
    assert restore_capitals("ai viết bài về việt nam?", archive) == "Ai viết bài về Việt Nam?"
    # "thành" alone is mostly a common word ("thành công"): only the whole name is capitalised
    assert restore_capitals("thành công ra sao", archive) == "Thành công ra sao"
    # rare in both languages: a name, found or not; English months (not "may")
    out = restore_capitals("how much did nvidia pay for zorvexa in october 2024, and may it?", [])
    assert out == "How much did nvidia pay for Zorvexa in October 2024, and may it?", out
    # an outlet is a name whatever its count
    assert restore_capitals("bài trên báo thanh niên do ai viết?", [], ["Thanh Niên"]) == "Bài trên báo Thanh Niên do ai viết?"


def test_a_question_typed_in_lower_case_gets_the_same_answer(engine):
    for q in (EXAMPLE_VI, "What did Le Cong Thanh recommend on climate diplomacy?"):
        written, lower = engine.ask(q), engine.ask(q.lower())
        assert lower["question"] == q.lower()
        assert lower["trace"]["read_as"] == q, lower["trace"]["read_as"]
        assert [c["chunk_id"] for c in lower["citations"]] == [c["chunk_id"] for c in written["citations"]], q


def test_the_other_languages_passages_name_only_runs_of_words():
    from qa.restore import restore_capitals

    vi = ["Sân bay Long Thành đón chuyến bay. Chuyến bay tới Long Thành và Long An."]
    # an English "long" is not the "Long" of "Long Thành"; the whole name still is
    assert restore_capitals("how long was the flight to long thanh?", [], (), vi) == "How long was the flight to Long Thanh?"
    assert restore_capitals("chuyến bay tới long thành mất bao lâu?", vi) == "Chuyến bay tới Long Thành mất bao lâu?"


def test_a_question_typed_partly_without_diacritics_is_restored_and_its_marks_kept():
    from qa.restore import lacks_diacritics, restore_diacritics

    partly = "Bao nhieu người chet trong bao Yagi nam 2024?"
    assert lacks_diacritics(partly)
    out = restore_diacritics(partly, ["Bão Yagi năm 2024 làm 300 người chết."])
    assert out == "Bao nhiêu người chết trong bão Yagi năm 2024?", out
    # written with care, a plain word or two on purpose ("thua", "mua"): left alone
    assert not lacks_diacritics("Đội Panthers đã thua bao nhiêu điểm?")
    assert not lacks_diacritics("Chương trình hỗ trợ có thể mua gì?")
    # words with capitals inside are kept as typed
    assert restore_diacritics("nvidia mua VinBrain bao nhieu tien?").split()[2] == "VinBrain"
