"""Retrieval behind a LangChain ``BaseRetriever``: dense search in Chroma.

The retriever returns :class:`Passage` objects (and LangChain ``Document`` objects through
the standard interface). Each passage carries a trace of how it was ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from qa.index.embeddings import Embedder
from qa.index.store import Hit, Store


@dataclass
class Passage:
    chunk_id: str
    doc_id: str
    title: str
    source: str
    text: str
    score: float  # relevance used for refusal decisions (cosine similarity of the dense model)
    meta: dict = field(default_factory=dict)
    trace: dict = field(default_factory=dict)

    @classmethod
    def from_hit(cls, hit: Hit) -> "Passage":
        m = hit.meta
        return cls(hit.chunk_id, m.get("doc_id", ""), m.get("title", ""), m.get("source", ""), hit.text, hit.score, dict(m))

    @property
    def context_title(self) -> str:
        """The article's title as context of a body passage; "" for a header or caption passage."""
        return self.title if self.meta.get("kind", "body") == "body" else ""

    def stated(self, *, published: bool = True, always_published: bool = False):
        """What the passage states (:func:`qa.constraints.passage_context`): its stored facts, its
        article's title, and (``published``) its publication date."""
        from qa.constraints import passage_context

        return passage_context(self.text, self.context_title, self.meta.get("date") if published else None,
                               self.meta.get("facts"), always_published=always_published)

    def to_lc(self) -> LCDocument:
        return LCDocument(page_content=self.text, metadata={**self.meta, "chunk_id": self.chunk_id, "score": self.score, "trace": self.trace})


class NewsRetriever(BaseRetriever):
    """Hybrid retrieval: dense (Chroma) + keyword (FTS5 BM25), fused by query language.

    Candidates are the union of the dense and keyword top ``fetch_k``; every candidate
    gets both scores (cosine from its stored vector, BM25 from the keyword index). The
    default fusion standardises each score over the candidates (z-score) and adds the
    keyword side with a per-language weight, so the keyword side counts in proportion to
    how much it actually separates the candidates: a query whose terms match nothing or
    match everything equally adds nothing. English questions over Vietnamese articles
    only send their names, numbers and codes to the keyword side (the words that can
    match across languages), so exact matches of "Le Cong Thanh" or "52-NQ/TW" stay
    strong while ordinary English words cannot drown the dense ranking.
    ``fusion="rrf"`` gives weighted reciprocal-rank fusion instead.

    With sentence vectors computed at ingest (the default), a third signal joins the fusion:
    each candidate's best cosine between the question and one of its sentences (from the
    cache, no encoder work), weighted by ``sentence_weight`` (XQuAD: en R@1 0.850 → 0.861,
    vi 0.964 → 0.965).

    Then an optional reranker reorders the top candidates, a per-document cap keeps the
    list diverse, and each final passage gets its neighbouring chunks as context.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any
    embedder: Any
    k: int = 6
    fetch_k: int = 24
    max_per_doc: int = 6
    mode: str = "hybrid"  # hybrid | dense | keyword
    fusion: str = "zscore"  # zscore | rrf
    rrf_k: int = 60
    kw_weight_vi: float = 0.5
    kw_weight_en: float = 0.5
    kw_weight_vi_plain: float = 4.0
    reranker: Any = None
    rerank_top: int = 20
    neighbours: int = 1
    sentence_weight: float = 0.0
    sentvec: Any = None  # the sentence-vector cache (qa.index.sentvec), for the sentence signal
    language_calibration: bool = True
    kw_per_language: bool = True  # standardise keyword scores within each passage language
    calibration_prior: float = 5.0  # pseudo-count pulling a small language pool's background to the global one
    constraint_weight: float = 1.5  # weight of the question-constraint agreement (qa.constraints)
    headline_weight: float = 2.0  # lost by a passage whose headline is about another time (qa.constraints.headline_conflict)
    cross_language_bonus: float = 0.0  # added to other-language passages' dense/sentence scores before fusion
    recency_weight: float = 0.75  # "latest": newest article's lift, among candidates within recency_margin of the best
    recency_margin: float = 1.0
    preferred_outlets: tuple = ()  # a duplicate group is cited from one of these first (folded names)
    group_margin: float = 0.5  # members of a group within this fused margin of its best count as equally good

    @classmethod
    def from_settings(cls, settings, store, embedder) -> "NewsRetriever":
        from qa.answer.rerank import make_reranker

        return cls(
            store=store,
            embedder=embedder,
            k=settings.top_k,
            fetch_k=settings.fetch_k,
            max_per_doc=settings.max_per_doc,
            fusion=settings.fusion,
            kw_weight_vi=settings.keyword_weight_vi,
            kw_weight_en=settings.keyword_weight_en,
            kw_weight_vi_plain=settings.keyword_weight_vi_plain,
            reranker=make_reranker(settings, embedder),
            rerank_top=settings.rerank_top,
            neighbours=settings.neighbours,
            sentence_weight=settings.sentence_weight,
            language_calibration=settings.language_calibration,
            kw_per_language=settings.keyword_per_language,
            constraint_weight=settings.constraint_weight,
            headline_weight=settings.headline_weight,
            cross_language_bonus=settings.cross_language_bonus,
            preferred_outlets=tuple(o.strip() for o in settings.preferred_outlets.split(",") if o.strip()),
            # only with vectors for every sentence: a partly filled (lazy) cache would favour
            # the passages that happen to have been answered from before
            sentvec=_sentvec(settings, embedder) if settings.sentence_weight > 0 and settings.sentence_vectors == "ingest" else None,
        )

    def _weight(self, lang: str, query: str) -> float:
        if lang == "en":
            return self.kw_weight_en
        # Vietnamese typed without diacritics: the dense model barely understands it
        # (XQuAD vi questions folded: dense R@1 0.33 vs keyword 0.93), the folded keyword side does
        from qa.text import has_diacritics

        return self.kw_weight_vi if has_diacritics(query) else self.kw_weight_vi_plain

    def search(self, query: str, k: int | None = None, language: str | None = None, filters=None,
               recency: bool = False) -> list[Passage]:
        """The best ``k`` passages for ``query``; ``filters`` (:class:`qa.filters.Filters`) restrict
        both the dense and the keyword side at the index, before their top-k."""
        from qa.language import detect_language

        k = k or self.k
        lang = language or detect_language(query)
        ps = self.candidates(query, lang, k, filters)
        if not ps:
            return []
        fused = self._fuse(ps, self._weight(lang, query), lang)
        if self.headline_weight and self.mode == "hybrid":
            fused = fused - self.headline_weight * self._headline_conflicts(query, ps)
        if recency:
            fused = fused + self._recency(ps, fused)
        ordered = self.rank(ps, fused)
        if self.reranker is not None and self.mode == "hybrid":
            ordered = self._rerank(query, ordered)
        ordered = self.one_per_group(ordered, lang)
        out: list[Passage] = []
        per_doc: dict[str, int] = {}
        for p in ordered:
            if per_doc.get(p.doc_id, 0) >= self.max_per_doc:
                continue
            per_doc[p.doc_id] = per_doc.get(p.doc_id, 0) + 1
            out.append(p)
            if len(out) >= k:
                break
        for final, p in enumerate(out, 1):
            p.trace["final_rank"] = final
            p.trace["language"] = lang
        if self.neighbours > 0:
            self._expand(out)
        return out

    def candidates(self, query: str, lang: str, k: int | None = None, filters=None) -> list[Passage]:
        """Every candidate (dense pools + keyword hits), each traced with every score, before fusion."""
        from qa.index.keyword import query_terms

        store: Store = self.store
        embedder: Embedder = self.embedder
        fetch = max(self.fetch_k, k or self.k)
        qv = embedder.embed_query_vec(query) if self.mode != "keyword" else None
        pools = self._language_pools(qv, fetch, filters) if qv is not None else {}
        if pools:  # the overall top ``fetch`` is within the union of the per-language ones
            dense = sorted((h for hits in pools.values() for h in hits), key=lambda h: -h.score)[:fetch]
        else:
            dense = store.query(qv, fetch, filters=filters) if qv is not None else []
        kw: list[Hit] = []
        terms: list[str] = []
        if self.mode != "dense":
            strong = lang == "en" and self.mode != "keyword"
            terms = query_terms(query, strong_only=strong)
            if self.mode == "keyword" and not terms:
                terms = query_terms(query)
            kw = store.keyword_search(terms, fetch, filters)

        cands: dict[str, Passage] = {}
        for rank, h in enumerate(dense, 1):
            p = cands.setdefault(h.chunk_id, Passage.from_hit(h))
            p.trace.update(dense_score=round(h.score, 4), dense_rank=rank)
        for lang_hits in pools.values():
            for h in lang_hits:
                p = cands.setdefault(h.chunk_id, Passage.from_hit(h))
                p.trace.setdefault("dense_score", round(h.score, 4))
        for rank, h in enumerate(kw, 1):
            p = cands.setdefault(h.chunk_id, Passage.from_hit(h))
            p.trace.update(keyword_score=round(h.score, 4), keyword_rank=rank)
        if not cands:
            return []
        # every candidate gets every score
        if qv is not None:
            missing = [cid for cid, p in cands.items() if "dense_score" not in p.trace]
            if missing:
                got = store.chunks.get(ids=missing, include=["embeddings"])
                for cid, vec in zip(got["ids"], got["embeddings"]):
                    cands[cid].trace["dense_score"] = round(float(np.dot(np.asarray(vec, dtype=np.float32), qv)), 4)
        if terms and self.mode == "hybrid":
            missing = [cid for cid, p in cands.items() if "keyword_score" not in p.trace]
            for cid, sc in store.keyword_scores(terms, missing).items():
                cands[cid].trace["keyword_score"] = round(sc, 4)

        ps = list(cands.values())
        for p in ps:
            p.trace["passage_language"] = passage_language(p)
        if self.sentence_weight > 0 and qv is not None and self.mode == "hybrid" and self.sentvec is not None:
            self._sentence_scores(ps, qv)
        if pools:
            self._calibrate(ps, pools)
        if self.mode == "hybrid":
            self._constraints(query, ps)
        return ps

    def _recency(self, ps: list[Passage], fused: np.ndarray) -> np.ndarray:
        """The question asks for the latest ("latest", "mới nhất"): among the candidates within
        ``recency_margin`` of the best, newer articles gain up to ``recency_weight`` (by the rank
        of their publication date); undated ones and the less relevant gain nothing."""
        out = np.zeros(len(ps))
        if not len(ps):
            return out
        top = float(np.max(fused))
        near = [i for i, p in enumerate(ps) if fused[i] >= top - self.recency_margin and p.meta.get("date_to")]
        days = sorted({int(ps[i].meta["date_to"]) for i in near})
        if len(days) < 2:
            return out
        for i in near:
            r = days.index(int(ps[i].meta["date_to"])) / (len(days) - 1)
            out[i] = self.recency_weight * r
            ps[i].trace["recency"] = round(float(out[i]), 3)
        return out

    def one_per_group(self, ordered: list[Passage], language: str | None = None) -> list[Passage]:
        """One article per duplicate group (the same story from several outlets, or in both
        languages: :mod:`qa.ingest.duplicates`), so the top passages do not repeat a story.

        The article kept is, among the group's members whose best passage is within
        ``group_margin`` of the group's best: one in the question's language, then one from a
        preferred outlet, then the earliest published; its passages carry ``also_reported_by``
        (the other members: title, outlet, date, link).
        """
        groups = {p.meta.get("group") for p in ordered if p.meta.get("group")}
        if not groups:
            return ordered
        from qa.filters import outlet_key

        best: dict[str, dict[str, float]] = {}  # group → doc → its best fused score
        for p in ordered:
            g = p.meta.get("group")
            if g:
                docs = best.setdefault(g, {})
                docs.setdefault(p.doc_id, p.trace.get("fused", 0.0))
        meta_of = {p.doc_id: p.meta for p in ordered}
        prefer = {outlet_key(o) for o in self.preferred_outlets}
        chosen: dict[str, str] = {}
        for g, docs in best.items():
            top = max(docs.values())
            near = [d for d, f in docs.items() if f >= top - self.group_margin]

            def key(d: str) -> tuple:
                m = meta_of[d]
                return (m.get("doc_language") != language if language else False,
                        m.get("outlet_key") not in prefer if prefer else False,
                        int(m.get("date_from") or 99999999), -docs[d])

            chosen[g] = min(near, key=key)
        try:
            members = self.store.group_members(sorted(chosen))
        except Exception:  # an older store without groups: keep the ranking as it is
            members = {}
        out = []
        for p in ordered:
            g = p.meta.get("group")
            if g and p.doc_id != chosen.get(g):
                continue
            if g:
                p.meta["also_reported_by"] = [r.reference() for r in members.get(g, []) if r.id != p.doc_id]
                p.trace["group"] = g
            out.append(p)
        return out

    def _constraints(self, query: str, ps: list[Passage]) -> None:
        """Each candidate's agreement with the years, quarters, dates and numbers the question names."""
        from qa.constraints import agreement, question_constraints

        asked = question_constraints(query)
        if not asked:
            return
        for p in ps:
            p.trace["constraint"] = round(agreement(asked, p.stated(always_published=True)), 3)

    def _headline_conflicts(self, query: str, ps: list[Passage]) -> np.ndarray:
        """1 for each candidate whose article's headline is about another time than the question
        asks (:func:`qa.constraints.headline_conflict`): the 2023 nine-month report for "the first
        three quarters of 2024", a second-quarter story for "the whole of 2022". The passage's
        own text may name the asked year in passing (a forecast, a comparison): the headline
        says what the article reports."""
        from qa.constraints import asks_full_year, headline_conflict, names_part_of_year, question_constraints

        out = np.zeros(len(ps))
        asked = question_constraints(query)
        full = asks_full_year(query)
        if not (asked.years or asked.quarters or asked.periods or full):
            return out
        seen: dict[str, bool] = {}
        for i, p in enumerate(ps):
            if p.doc_id not in seen:
                seen[p.doc_id] = headline_conflict(asked, p.title, p.meta.get("date"), full,
                                                   full and names_part_of_year(p.title))
            if seen[p.doc_id]:
                out[i] = 1.0
                p.trace["headline_conflict"] = True
        return out

    def rank(self, ps: list[Passage], fused: np.ndarray) -> list[Passage]:
        """Candidates in fused order (ties by dense score), each traced with its fused score and rank."""
        for p, f in zip(ps, fused):
            p.trace["fused"] = round(float(f), 6)
            p.score = float(p.trace.get("dense_score", 0.0))
        ordered = sorted(ps, key=lambda p: -p.trace["fused"])
        for fused_rank, p in enumerate(ordered, 1):
            p.trace["fused_rank"] = fused_rank
        return ordered

    def _fuse(self, ps: list[Passage], w: float, language: str | None = None) -> np.ndarray:
        d = np.array([p.trace.get("dense_calibrated", p.trace.get("dense_score", 0.0)) for p in ps], dtype=np.float64)
        kw = np.array([p.trace.get("keyword_score", 0.0) for p in ps], dtype=np.float64)
        if self.mode == "dense":
            return d
        if self.mode == "keyword":
            return kw
        if self.fusion == "rrf":
            out = np.zeros(len(ps))
            for i, p in enumerate(ps):
                if "dense_rank" in p.trace:
                    out[i] += 1.0 / (self.rrf_k + p.trace["dense_rank"])
                if "keyword_rank" in p.trace:
                    out[i] += w / (self.rrf_k + p.trace["keyword_rank"])
            return out
        f = candidate_features(ps)
        return fuse_scores(f["dense"], f["keyword"], f["sentence"], f["language"], w, self.sentence_weight,
                           kw_per_language=self.kw_per_language, constraint=f["constraint"],
                           constraint_weight=self.constraint_weight, weights=f["weights"],
                           query_language=language, cross_language_bonus=self.cross_language_bonus)

    def _language_pools(self, qv: np.ndarray, fetch: int, filters=None) -> dict[str, list[Hit]]:
        """The dense top ``fetch`` of each passage language, when the index holds several.

        Multilingual embeddings score same-language text higher: an English question's
        Vietnamese answer can rank below English passages on other topics. Each language gets
        its own candidates (a filter at the store), and :meth:`_calibrate` puts the
        languages' scores on one scale.
        """
        if not self.language_calibration or self.mode == "keyword":
            return {}
        langs = self.store.languages()
        if None in langs or len(langs) < 2:
            return {}  # one language, or an index written before languages were recorded
        if filters and filters.languages:
            langs = [x for x in langs if x in filters.languages]
            if len(langs) < 2:
                return {}
        return self.store.language_pools(qv, fetch, sorted(langs), filters=filters)

    def _calibrate(self, ps: list[Passage], pools: dict[str, list[Hit]]) -> None:
        """Subtract each passage language's background from the dense and sentence scores.

        The background of a language is the median score of its own dense pool (the passages
        of that language nearest to the question, mostly not the answer), shrunk toward the
        median of all pools when the pool is small. What is left is how far a passage stands
        out from the other passages of its language: comparable across languages.

        A story republished by several outlets (a duplicate group) counts once: its copies
        would fill a pool with the same scores and lift that language's background.
        """
        by_id = {p.chunk_id: p for p in ps}
        pools = {lang: one_story_each(hits) for lang, hits in pools.items()}
        for key, calibrated in (("dense_score", "dense_calibrated"), ("sentence_score", "sentence_calibrated")):
            per_lang: dict[str, list[float]] = {}
            for lang, hits in pools.items():
                vals = [by_id[h.chunk_id].trace[key] for h in hits if h.chunk_id in by_id and key in by_id[h.chunk_id].trace]
                if vals:
                    per_lang[lang] = vals
            if len(per_lang) < 2:
                continue
            overall = float(np.median([v for vals in per_lang.values() for v in vals]))
            background = {
                lang: (len(vals) * float(np.median(vals)) + self.calibration_prior * overall) / (len(vals) + self.calibration_prior)
                for lang, vals in per_lang.items()
            }
            for p in ps:
                lang = p.trace["passage_language"]
                if key in p.trace and lang in background:
                    p.trace[calibrated] = round(p.trace[key] - background[lang] + overall, 4)

    def _sentence_scores(self, ps: list[Passage], qv: np.ndarray) -> None:
        """Best cosine between the question and one sentence of each candidate, from the cache only."""
        from qa.index.sentvec import answer_units

        units = {p.chunk_id: answer_units(p.text) for p in ps}
        vecs = self.sentvec.lookup([u for us in units.values() for u in us])
        for p in ps:
            got = [vecs[u] for u in units[p.chunk_id] if u in vecs]
            if got:
                p.trace["sentence_score"] = round(float(np.max(np.stack(got) @ qv)), 4)

    def _rerank(self, query: str, ordered: list[Passage]) -> list[Passage]:
        head, tail = ordered[: self.rerank_top], ordered[self.rerank_top :]
        scores = self.reranker.score(query, head)
        for p, s in zip(head, scores):
            p.trace["rerank_score"] = round(float(s), 4)
        head = sorted(head, key=lambda p: -p.trace["rerank_score"])
        return head + tail

    def _expand(self, passages: list[Passage]) -> None:
        """Attach the neighbouring chunks (same document version) as context."""
        want: dict[str, list[tuple[Passage, str]]] = {}
        for p in passages:
            pos, sha = p.meta.get("position"), p.meta.get("doc_sha256", "")
            if pos is None or not sha or p.meta.get("kind", "body") != "body":
                continue  # captions stand alone
            for off in range(1, self.neighbours + 1):
                for side, q in (("before", int(pos) - off), ("after", int(pos) + off)):
                    if q >= 0:
                        want.setdefault(f"{p.doc_id}:{sha[:12]}:{q}", []).append((p, side))
        for h in self.store.get_chunks(list(want)):
            for p, side in want[h.chunk_id]:
                if h.meta.get("kind", "body") != p.meta.get("kind", "body"):
                    continue
                key = "context_before" if side == "before" else "context_after"
                p.meta.setdefault(key, []).append((int(h.meta.get("position", 0)), h.text))
        for p in passages:
            for key in ("context_before", "context_after"):
                if key in p.meta:
                    p.meta[key] = "\n\n".join(t for _, t in sorted(p.meta[key]))

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, language: str | None = None,
        filters=None,
    ) -> list[LCDocument]:
        """LangChain's entry point: ``retriever.invoke(query, k=3, language="en", filters=Filters(...))``; all optional."""
        return [p.to_lc() for p in self.search(query, k=k, language=language, filters=filters)]


def one_story_each(hits: list) -> list:
    """``hits`` with one article per duplicate group (the first, i.e. best, met): copies of
    one story do not count twice in a pool's statistics."""
    seen: dict[str, str] = {}
    out = []
    for h in hits:
        g = (h.meta or {}).get("group")
        doc = (h.meta or {}).get("doc_id")
        if g:
            if seen.setdefault(g, doc) != doc:
                continue
        out.append(h)
    return out


def passage_language(p: Passage) -> str:
    """The passage's language: recorded at ingest, else detected from its text (older indexes)."""
    lang = p.meta.get("language")
    if not lang:
        from qa.language import detect_text_language

        lang = detect_text_language(p.text)
    return lang


def _sentvec(settings, embedder):
    from qa.index.sentvec import sentence_vectors

    return sentence_vectors(settings, embedder)


def candidate_features(ps: list[Passage]) -> dict[str, np.ndarray | None]:
    """The fusion's inputs as arrays: dense and sentence scores (language-calibrated where
    computed), keyword scores, passage languages, agreement with the question's constraints.
    ``sentence`` / ``constraint`` are None when no candidate has one."""
    def dense_of(p: Passage) -> float:
        return p.trace.get("dense_calibrated", p.trace.get("dense_score", 0.0))

    sentence = constraint = None
    if any("constraint" in p.trace for p in ps):
        constraint = np.array([p.trace.get("constraint", 0.0) for p in ps], dtype=np.float64)
    if any("sentence_score" in p.trace for p in ps):
        sentence = np.array([p.trace.get("sentence_calibrated", p.trace.get("sentence_score", dense_of(p))) for p in ps], dtype=np.float64)
    return {
        "dense": np.array([dense_of(p) for p in ps], dtype=np.float64),
        "keyword": np.array([p.trace.get("keyword_score", 0.0) for p in ps], dtype=np.float64),
        "sentence": sentence,
        "language": np.array([p.trace.get("passage_language", "") for p in ps]),
        "constraint": constraint,
        "weights": story_weights(ps),
    }


def story_weights(ps: list[Passage]) -> np.ndarray | None:
    """Each candidate's weight in the fusion's statistics: 1, or 1 / n for a passage of a story
    that n articles of the candidates carry (a duplicate group): copies of the best story would
    otherwise crowd the mean and spread, and lower the very passages they repeat. None when no
    candidate belongs to a group."""
    members: dict[str, set[str]] = {}
    for p in ps:
        g = p.meta.get("group")
        if g:
            members.setdefault(g, set()).add(p.doc_id)
    if not members:
        return None
    return np.array([1.0 / len(members[p.meta["group"]]) if p.meta.get("group") else 1.0 for p in ps], dtype=np.float64)


def fuse_scores(dense: np.ndarray, keyword: np.ndarray, sentence: np.ndarray | None, languages: np.ndarray,
                kw_weight: float, sentence_weight: float, *, kw_per_language: bool = False,
                constraint: np.ndarray | None = None, constraint_weight: float = 0.0,
                weights: np.ndarray | None = None, query_language: str | None = None,
                cross_language_bonus: float = 0.0) -> np.ndarray:
    """The z-score fusion: standardised dense + weighted standardised keyword (+ sentence) scores.

    With ``kw_per_language`` the keyword scores are standardised within each passage language:
    ordinary words only match passages of the question's language, so over a mixed index the
    raw keyword side favours them; per language, each side counts by how well it separates its
    own passages. ``constraint`` (in [-1, 1], :func:`qa.constraints.agreement`) is added
    as it is, not standardised: a passage that states the asked year gains the same whatever the
    other candidates. ``weights`` (:func:`story_weights`) count copies of one story once in the
    means and spreads. ``cross_language_bonus`` is added to the dense and sentence scores of
    passages not in ``query_language`` before they are standardised: a relevant passage in the
    other language scores lower than its translation would (the per-language calibration moves
    each language's background, not that loss). The tuner (:mod:`qa.eval.tuning`) calls this
    same function.
    """
    if cross_language_bonus and query_language:
        other = (languages != query_language).astype(np.float64) * cross_language_bonus
        if other.any():
            dense = dense + other
            sentence = sentence + other if sentence is not None else None
    if kw_per_language and len(set(languages.tolist())) > 1:
        kw = np.zeros_like(keyword)
        for lang in set(languages.tolist()):
            mask = languages == lang
            kw[mask] = _standardise(keyword[mask], None if weights is None else weights[mask])
    else:
        kw = _standardise(keyword, weights)
    out = _standardise(dense, weights) + kw_weight * kw
    if sentence is not None and sentence_weight:
        out = out + sentence_weight * _standardise(sentence, weights)
    if constraint is not None and constraint_weight:
        out = out + constraint_weight * constraint
    return out


def _standardise(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """z-scores over the candidates (weighted: :func:`story_weights`); all-equal scores carry no
    information and give zeros."""
    if weights is None or not len(x):
        mean, sd = float(x.mean()) if len(x) else 0.0, float(x.std()) if len(x) else 0.0
    else:
        mean = float(np.average(x, weights=weights))
        sd = float(np.sqrt(np.average((x - mean) ** 2, weights=weights)))
    if sd < 1e-9:
        return np.zeros_like(x)
    return (x - mean) / sd
