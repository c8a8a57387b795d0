"""Vietnamese questions typed without diacritics: restored (qa.diacritics) and answered as if typed with them."""

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
    from qa.diacritics import restore

    # "nhieu" alone is most often "nhiều", "gia" "gia", "viet" "Việt": the words decide
    assert restore("bao nhieu nguoi tham du hoi nghi?") == "bao nhiêu người tham dự hội nghị?"
    assert restore("Ai la tac gia bai viet?") == "Ai là tác giả bài viết?"
    assert restore("bai bao duoc dang ngay nao") == "bài báo được đăng ngày nào"


def test_the_archive_wording_decides_names_and_neighbours():
    from qa.diacritics import restore

    q = "bao noru lam bao nhieu nguoi chet o quang nam nam 2022?"
    plain = restore(q)
    assert "quảng năm" in plain.lower()  # without the archive "nam" is mostly "năm"
    archive = ["Bão Noru đổ bộ vào Quảng Nam năm 2022, làm 2 người chết ở Quảng Nam.",
               "Cơn bão Noru gây mưa lớn tại Quảng Nam."]
    restored = restore(q, archive)
    assert restored == "bão Noru làm bao nhiêu người chết ở Quảng Nam năm 2022?", restored


def test_codes_numbers_acronyms_and_typed_capitals_are_kept():
    from qa.diacritics import restore

    out = restore("GDP quy III/2023 cua Viet Nam tang bao nhieu?", ["GDP quý III/2023 của Việt Nam tăng 5,33%."])
    assert out == "GDP quý III/2023 của Việt Nam tăng bao nhiêu?", out
    out = restore("Chuyen bay VN5001 ha canh o dau?", ["Chuyến bay VN5001 hạ cánh xuống sân bay."])
    assert out.startswith("Chuyến bay VN5001 hạ cánh ở đâu"), out


def test_the_archive_spelling_of_a_tone_mark_is_kept():
    from qa.diacritics import restore, tone_key

    assert tone_key("hoá") == tone_key("hóa") == "hóa"
    assert "hàng hoá" in restore("xuat khau hang hoa tang bao nhieu?", ["Xuất khẩu hàng hoá tăng mạnh; hàng hoá xuất khẩu."])
    assert "hàng hóa" in restore("xuat khau hang hoa tang bao nhieu?", ["Xuất khẩu hàng hóa tăng mạnh; hàng hóa xuất khẩu."])


def test_only_questions_without_any_diacritic_are_restored():
    from qa.diacritics import needs_restoring

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
        restored = without["trace"]["diacritics_restored"]
        wrong = [(a, b) for a, b in zip(restored.split(), it["question"].split()) if a.lower() != b.lower()]
        assert len(restored.split()) == len(it["question"].split()) and len(wrong) <= 1, (restored, wrong)
        assert without["language"] == "vi"
        assert without["refused"] == with_marks["refused"], typed
        assert [c["chunk_id"] for c in without["citations"]] == [c["chunk_id"] for c in with_marks["citations"]], typed
    assert "diacritics_restored" not in engine.ask(EXAMPLE_VI)["trace"]
    assert "diacritics_restored" not in engine.ask("What did Le Cong Thanh recommend on climate diplomacy?")["trace"]


def test_restoring_can_be_turned_off(sample_index):
    from qa.answer.chain import Engine
    from conftest import make_settings

    off = Engine.open(make_settings(sample_index.dir, restore_diacritics=False))
    assert "diacritics_restored" not in off.ask(strip(EXAMPLE_VI))["trace"]


def test_cli_and_ui_say_how_the_question_was_read(sample_index, engine):
    from qa.app.ui import render_answer

    env = {**os.environ, "QA_INDEX_DIR": str(sample_index.dir)}
    proc = subprocess.run([sys.executable, "-m", "qa", "ask", strip(EXAMPLE_VI)], capture_output=True, text=True,
                          env=env, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"câu hỏi được hiểu là: {EXAMPLE_VI}" in " ".join((proc.stdout + proc.stderr).split())
    html = render_answer(engine.ask(strip(EXAMPLE_VI)))
    assert 'class="qa-read-as"' in html and "Câu hỏi được hiểu là" in html and EXAMPLE_VI in html


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
