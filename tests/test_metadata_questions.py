"""Questions about the articles themselves, answered from the header and cited to it."""

from __future__ import annotations

import pytest

from qa.answer.metadata import asked_fields


@pytest.fixture(scope="module")
def engine(sample_index):
    from qa.answer.chain import Engine

    return Engine.open(sample_index.settings)


@pytest.mark.parametrize("question, fields", [
    ("Who wrote the article about digital diplomacy?", ["author"]),
    ("Ai là tác giả bài viết về ngoại giao số?", ["author"]),
    ("Bài báo về ngoại giao số do ai viết?", ["author"]),
    ("Bản tin về bão được đăng trên báo nào và vào ngày nào?", ["outlet", "published"]),
    ("Which outlet reported the launch, and on what date?", ["outlet", "published"]),
    ("When was the article on the plenary session published?", ["published"]),
    ("Who wrote VnExpress's report on the medal tally?", ["author"]),
    # not about an article
    ("Who recommended climate diplomacy?", []),
    ("On what date did the typhoon make landfall?", []),
    ("Bão đổ bộ vào ngày nào?", []),
    ("According to the July 2024 report, how many cases were recorded?", []),
    ("Bài thi Ngữ văn nào đạt điểm 10?", []),
])
def test_what_the_question_asks_about_the_article(question, fields):
    assert asked_fields(question) == fields


def test_author_is_answered_from_the_header_and_cited(engine):
    for q in ("Ai là tác giả bài viết về ngoại giao số đưa sản phẩm số ra toàn cầu?",
              "Who wrote the article about bringing Vietnam's digital products to the world through digital diplomacy?"):
        r = engine.ask(q)
        assert not r["refused"], r["answer"]
        assert "Khánh Minh" in r["answer"]
        assert r["citations"] and r["citations"][0]["chunk_id"].endswith(":header")
        assert "Khánh Minh" in r["citations"][0]["text"]
        assert r["trace"]["answered_by"] == "header"
        assert "[1]" in r["answer"]


def test_a_field_the_article_does_not_state_is_not_guessed(engine):
    r = engine.ask("Bài viết về việc xây dựng nền ngoại giao toàn diện, hiện đại trong kỷ nguyên số được đăng ngày nào?")
    assert r["refused"] and not r["citations"]
    assert "không ghi ngày đăng" in r["answer"]
    r = engine.ask("When was the article on building a comprehensive, modern diplomacy in the digital era published?")
    assert r["refused"] and not r["citations"]  # no date is given either way
    assert "does not give its publication date" in r["answer"] or "do not contain the answer" in r["answer"]


def test_a_quoted_title_names_the_article(engine):
    r = engine.ask("Bài “Ngoại giao số đưa các sản phẩm số của Việt Nam đến với toàn cầu” do ai viết?")
    assert not r["refused"] and "Khánh Minh" in r["answer"]
    assert r["trace"]["answered_by"] == "header"


def test_the_story_must_be_in_the_articles(engine):
    r = engine.ask("Who wrote the article about the opening of the Hanoi metro's underground section?")
    assert r["refused"] and not r["citations"] and "Khánh Minh" not in r["answer"]


def test_the_story_check_reads_the_story_without_the_header_ask():
    """"do ai viết", "who wrote the article" and the outlet ("trên báo Thanh Niên": matched against
    the headers) are no words of the story the question describes."""
    from qa.answer.metadata import story_question

    assert story_question("Bài thống kê điểm 10 của kỳ thi năm 2019 trên báo Thanh Niên do ai viết?") == "điểm 10 của kỳ thi năm 2019"
    assert story_question("Ai là tác giả bài viết về ngoại giao số đưa sản phẩm số ra toàn cầu?") == \
        "ngoại giao số đưa sản phẩm số ra toàn cầu"
    assert story_question("Who wrote the article about bringing Vietnam's digital products to the world?") == \
        "bringing Vietnam's digital products to the world"
    assert story_question("Ai viết?") == "Ai viết?"  # nothing left: the question as it is
