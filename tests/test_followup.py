"""Follow-up questions made standalone by rules (qa.answer.followup): the conversation's names,
times and an ellipsis carried into the query; nothing is anchored to today that the conversation
fixes."""

from __future__ import annotations

from qa.answer.followup import condense, history_entities, standalone


def _h(*turns: str) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


def test_an_ellipsis_asks_the_previous_question_for_the_year_it_names():
    h = _h("Kỳ thi tốt nghiệp năm 2025 có bao nhiêu bài thi đạt điểm 10?",
           "Theo Bộ Giáo dục và Đào tạo, năm 2025 có hơn 15.300 bài thi đạt điểm tuyệt đối.")
    assert condense("Thế năm trước đó thì có bao nhiêu?", h, "vi") == "Kỳ thi tốt nghiệp năm 2024 có bao nhiêu bài thi đạt điểm 10?"
    assert condense("Còn năm sau đó?", h, "vi") == "Kỳ thi tốt nghiệp năm 2026 có bao nhiêu bài thi đạt điểm 10?"
    en = _h("What was GDP growth in Q1 2024?", "5.66% [1]")
    assert condense("And in the previous quarter?", en) == "What was GDP growth in Q4 2023?"
    assert condense("What about 2022?", en) == "What was GDP growth in Q1 2022?"
    # an ellipsis of an ellipsis: the first question, made standalone each time
    assert condense("And the year before that?", en + _h("What about 2022?", "x")) == "What was GDP growth in Q1 2021?"


def test_a_follow_up_keeps_the_conversations_time_and_its_own_topic():
    h = _h("GDP quý I/2024 của Việt Nam tăng bao nhiêu?", "GDP quý I/2024 tăng 5,66% [1]")
    assert standalone("Còn cán cân thương mại hàng hóa trong quý đó thì sao?", h, "vi") == \
        "Còn cán cân thương mại hàng hóa trong quý 1/2024 thì sao?"
    assert standalone("Còn xuất khẩu thì sao?", h, "vi") == "Còn xuất khẩu thì sao? (quý 1/2024)"
    # a follow-up with its own year keeps it; one that does not continue carries nothing
    assert standalone("Còn xuất khẩu năm 2023 thì sao?", h, "vi") == "Còn xuất khẩu năm 2023 thì sao?"
    assert standalone("Lạm phát của Mỹ là bao nhiêu?", h, "vi") == "Lạm phát của Mỹ là bao nhiêu?"


def test_a_pronoun_gets_the_name_the_user_asked_about():
    h = _h("Bão Noru đổ bộ vào đâu?", "Rạng sáng 28/9/2022, bão Noru đổ bộ vào các tỉnh từ Thừa Thiên Huế đến Bình Định.")
    assert history_entities(h)[0] == "Bão Noru"  # the user's subject before the places the answer lists
    assert condense("Nó làm sập bao nhiêu ngôi nhà?", h, "vi") == "Bão Noru: Nó làm sập bao nhiêu ngôi nhà?"
    # the answer addresses the user's words: names are for retrieval only
    assert standalone("Nó làm sập bao nhiêu ngôi nhà?", h, "vi") == "Nó làm sập bao nhiêu ngôi nhà?"
    assert history_entities(_h("Who is Dang Quang Tan?")) == ["Dang Quang Tan"]  # the "?" ends the name
    assert history_entities(_h("How many gold medals did Vietnam win at SEA Games 32?")) == ["SEA Games 32"]
    assert history_entities(_h("Theo các bài báo, ông Lê Công Thành của Bộ Tài nguyên nói gì?"))[0] == "Lê Công Thành"
    # a name the answer writes with its diacritics is carried as the articles write it
    assert history_entities(_h("Who is Dang Quang Tan?", "Đặng Quang Tấn is a director [1]."))[0] == "Đặng Quang Tấn"


def test_another_subject_asks_the_previous_question_about_it():
    # "Còn X thì sao?" / "What about X?": the previous question, with X where its subject or pronoun stood
    noru = _h("Bão Noru đổ bộ vào đâu?", "x", "Nó làm bị thương bao nhiêu người?", "y")
    assert standalone("Còn bão Yagi thì sao?", noru, "vi") == "bão Yagi làm bị thương bao nhiêu người?"
    assert standalone("Còn bão Yagi thì sao?", _h("Bão Noru làm bị thương bao nhiêu người?", "x"), "vi") == \
        "bão Yagi làm bị thương bao nhiêu người?"
    en = _h("How many people did Typhoon Noru injure in Quang Nam?", "x")
    assert standalone("What about Typhoon Yagi?", en) == "How many people did Typhoon Yagi injure in Quang Nam?"
    assert condense("What about Typhoon Yagi?", en) == "How many people did Typhoon Yagi injure in Quang Nam?"
    assert standalone("What about SEA Games 32?", _h("How many gold medals did Vietnam win at SEA Games 31?", "x")) == \
        "How many gold medals did Vietnam win at SEA Games 32?"
    assert standalone("What about Thailand?", _h("How many gold medals did Vietnam win at SEA Games 31?", "x")) == \
        "How many gold medals did Thailand win at SEA Games 31?"
    assert standalone("Còn Hà Nội?", _h("TP.HCM có bao nhiêu nhà hàng được gắn sao Michelin năm 2024?", "x"), "vi") == \
        "Hà Nội có bao nhiêu nhà hàng được gắn sao Michelin năm 2024?"
    # not a subject: a topic word, a time, a question of its own, or nothing to put it in place of
    gdp = _h("GDP quý I/2024 tăng bao nhiêu?", "x")
    assert standalone("Còn xuất khẩu thì sao?", gdp, "vi") == "Còn xuất khẩu thì sao? (quý 1/2024)"
    assert standalone("And in 2022?", _h("What was Vietnam's GDP growth in 2023?", "x")) == "What was Vietnam's GDP growth in 2022?"
    assert standalone("What about Hanoi's dengue cases in July?", en) == "What about Hanoi's dengue cases in July?"
    assert standalone("What about Da Nang?", _h("Who won?", "x")) == "What about Da Nang?"


def test_a_follow_up_leaning_on_the_conversation_keeps_its_time_and_a_new_question_its_own_words():
    fest = _h("Who won the Da Nang fireworks festival in 2025?", "x")
    assert standalone("Which teams took part?", fest) == "Which teams took part? (2025)"  # short, naming nothing
    gdp = _h("What was Vietnam's GDP growth in 2023?", "x")
    assert standalone("What drove it?", gdp) == "What drove it? (2023)"  # a pronoun
    assert standalone("Nó làm sập bao nhiêu ngôi nhà?", _h("Bão Noru đổ bộ vào đâu năm 2022?", "x"), "vi") == \
        "Nó làm sập bao nhiêu ngôi nhà? (năm 2022)"
    # a question that names its own subject is its own: no time carried, no old name put in front
    assert condense("Who is Nguyen Chi Dung?", gdp) == "Who is Nguyen Chi Dung?"
    assert condense("How many dengue cases did Hanoi record?", gdp) == "How many dengue cases did Hanoi record?"
    assert condense("What did he say about Typhoon Yagi?", _h("Who is Nguyen Chi Dung?", "x")) == \
        "Nguyen Chi Dung: What did he say about Typhoon Yagi?"
