"""Refusal evaluation and the answerability model's training (``qa eval refusal``).

Samples, each a question with its label (answerable or not), its article (the fold unit), and
the features :func:`qa.answer.answerability.features` reads from what the chain retrieved:

- **XQuAD refusal set** (:func:`xquad_refusal`): the Vietnamese paragraphs at even positions of
  every article are indexed; questions on those are answerable, questions on the odd ones must
  be refused although the rest of their article is in the index (SQuAD 2.0's near-topic
  negatives). Every question is asked in Vietnamese and in English.
- **Eval sets** (``--set`` with its ``--corpus``): their answerable and unanswerable items, and
  a time-shifted copy of each answerable item that names a year (:func:`shift_years`: the same
  question about a year no article covers), a negative no archive can answer.

The model is a logistic regression (numpy, L2, balanced classes); the refusal threshold (one per
question language) is the probability that refuses the most unanswerable questions while
refusing at most ``MAX_FALSE_REFUSAL`` of the answerable ones.
Both are chosen on the training folds and scored on the held-out ones (folds by article). The
decision measured is the chain's: sentences of passages about another time are left out first
and those that cannot answer (:func:`qa.answer.answerability.fit_sentences`: no sum of money
when one is asked, part of a year when the whole is), and a question left with none is refused.

The mixed archive (``--mixed``, source ``xquad-en``) is measured, not fitted (fitting it lowers
the dev sets from 0.800 / 0.027 to 0.700 / 0.081 by folds). It chooses how close a refused
question must come for its refusal to suggest asking again in the closest article's language
(:func:`choose_hint_floor`): each of its questions is asked in both languages, so what the
suggestion leads to is known.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from qa.answer.answerability import FEATURES, Model, features, fit_sentences, quotable, unnamed

MAX_FALSE_REFUSAL = 0.05  # the threshold refuses as much as it can while wrongly refusing at most this share (training folds)
L2 = 10.0  # strong enough that no feature gets a sign it only has in one data set (cross-validated: 0.62 / 0.055 against 0.65 / 0.061 at 1.0)
SOURCE_WEIGHT = {"set": 4.0}  # the dev sets are few but closest to real archives
MEASURED_ONLY = {"xquad-en"}  # sources reported and used for the hint's floor, not fitted
WRONG_ANSWER_COST = 10.0  # one confident, cited, wrong answer costs more than ten refusals (the product's rule)


@dataclass
class Sample:
    qid: str
    source: str  # "xquad" | "set" | "set-shifted"
    article: str
    language: str
    answerable: bool
    x: dict[str, float]
    tags: list[str] = field(default_factory=list)
    baseline_refused: bool = False  # what the threshold decision does
    forced: bool = False  # refused whatever the model says (no sentence left that may answer)
    closest_language: str = ""  # the language of the first passage retrieved


def shift_years(question: str, by: int = 15) -> str | None:
    """The question about a year ``by`` years later (``2021`` → ``2036``, ``14/12/2021`` → ``14/12/2036``);
    None when it names no year."""
    if not re.search(r"(?<!\d)(19|20)\d{2}(?!\d)", question):
        return None
    return re.sub(r"(?<!\d)((?:19|20)\d{2})(?!\d)", lambda m: str(int(m[1]) + by), question)


def xquad_refusal(dir_) -> tuple[list, list]:
    """(paragraphs to index, questions with ``answerable``): even paragraphs indexed."""
    from qa.eval import xquad

    return _even_indexed(*xquad.load_pair(dir_))


def _even_indexed(paragraphs: list, questions: list) -> tuple[list, list]:
    """Each article's even paragraphs, and every question with ``answerable`` (its paragraph is one)."""
    keep = {p.doc_id for p in paragraphs if int(p.doc_id.rsplit("-", 1)[1]) % 2 == 0}
    return [p for p in paragraphs if p.doc_id in keep], [(q, q.doc_id in keep) for q in questions]


def xquad_refusal_mixed(dir_) -> tuple[list, list]:
    """The same set over a mixed archive (:func:`qa.eval.xquad.load_mixed`: every other article
    in English): even paragraphs indexed; the questions of the English articles, in Vietnamese
    and English (Vietnamese questions over English text, which the Vietnamese-only set lacks)."""
    from qa.eval import xquad

    paragraphs, questions = xquad.load_mixed(dir_)
    english = {p.doc_id.rsplit("-", 1)[0] for p in paragraphs if p.language == "en"}
    return _even_indexed(paragraphs, [q for q in questions if q.doc_id.rsplit("-", 1)[0] in english])


def collect(engine, questions: Iterable[tuple[str, str, str, str, bool, list[str]]], source: str, *,
            on_question: Callable[[], None] | None = None) -> list[Sample]:
    """questions: (qid, text, language, article, answerable, tags). Asks the engine's retriever
    and sentence scorer (not the generator: the decision is what is learnt)."""
    from qa.answer.retrieval import passage_language

    out: list[Sample] = []
    ex = engine.extractive
    for qid, text, lang, article, answerable, tags in questions:
        text = engine.read_as(text, lang)  # typed without diacritics or capitals: restored, as the chain does
        passages = engine.retriever.search(text, language=lang)
        scored, vectors = ex.scored_with_vectors(text, lang, passages) if passages else ([], {})
        best = scored[0][0] if scored else 0.0  # the threshold decision reads all sentences
        scored, _, _ = fit_sentences(text, passages, scored, lang)
        x = features(text, lang, passages, scored, vectors=vectors, embedder=ex.embedder)
        # every sentence was about another time, or no article found names what the question
        # names (:func:`qa.answer.answerability.unnamed`), or none states the measurement, growth or
        # evacuation asked (:func:`qa.answer.answerability.quotable`): nothing to answer with
        forced = not scored or bool(unnamed(text, passages, scored)) or not quotable(text, scored)[0]
        out.append(Sample(qid, source, article, lang, answerable, x, list(tags), best < ex.thresholds()[lang], forced,
                          passage_language(passages[0]) if passages else ""))
        if on_question:
            on_question()
    return out


def _matrix(samples: list[Sample]) -> np.ndarray:
    return np.array([[s.x.get(f, 0.0) for f in FEATURES] for s in samples], dtype=np.float64)


def fit(samples: list[Sample], l2: float | None = None, iters: int = 300) -> Model:
    """Logistic regression by Newton's method on standardised features, classes balanced."""
    l2 = L2 if l2 is None else l2
    X = _matrix(samples)
    y = np.array([s.answerable for s in samples], dtype=np.float64)
    w_src = np.array([SOURCE_WEIGHT.get(s.source.split("-")[0], 1.0) for s in samples])
    pos, neg = (w_src * y).sum(), (w_src * (1 - y)).sum()
    sw = w_src * np.where(y == 1, 0.5 / max(pos, 1e-9), 0.5 / max(neg, 1e-9)) * len(samples)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = np.hstack([(X - mean) / scale, np.ones((len(X), 1))])
    beta = np.zeros(Z.shape[1])
    reg = np.full(Z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ beta, -40, 40)))
        g = Z.T @ (sw * (p - y)) + reg * beta
        H = (Z * (sw * p * (1 - p))[:, None]).T @ Z + np.diag(reg + 1e-9)
        step = np.linalg.solve(H, g)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    names = list(FEATURES)
    return Model({n: round(float(b), 6) for n, b in zip(names, beta[:-1])}, round(float(beta[-1]), 6),
                 {n: round(float(m), 6) for n, m in zip(names, mean)}, {n: round(float(v), 6) for n, v in zip(names, scale)},
                 0.5)


def rates(samples: list[Sample], refused: list[bool]) -> dict:
    ans = [r for s, r in zip(samples, refused) if s.answerable]
    una = [r for s, r in zip(samples, refused) if not s.answerable]
    return {
        "n": len(samples), "unanswerable": len(una),
        "refusal_accuracy": round(sum(una) / len(una), 4) if una else None,
        "false_refusal_rate": round(sum(ans) / len(ans), 4) if ans else None,
    }


def _objective(samples: list[Sample], probs: np.ndarray, t: float) -> float:
    y = np.array([s.answerable for s in samples])
    w = np.array([SOURCE_WEIGHT.get(s.source.split("-")[0], 1.0) for s in samples])
    refused = (probs < t) | np.array([s.forced for s in samples])
    una = (~y)
    tnr = (w * (refused & una)).sum() / max((w * una).sum(), 1e-9)
    fnr = (w * (refused & y)).sum() / max((w * y).sum(), 1e-9)
    return float(tnr - (10.0 * (fnr - MAX_FALSE_REFUSAL) if fnr > MAX_FALSE_REFUSAL else 0.0))


def choose_threshold(samples: list[Sample], model: Model) -> float:
    probs = np.array([model.probability(s.x) for s in samples])
    grid = np.unique(np.round(np.quantile(probs, np.linspace(0, 1, 201)), 4))
    return float(max(grid, key=lambda t: _objective(samples, probs, t)))


def train(samples: list[Sample]) -> Model:
    """The model on ``samples``, with a threshold per question language (each language's false
    refusals held under the cap: English questions over Vietnamese articles score lower)."""
    model = fit(samples)
    model.threshold = round(choose_threshold(samples, model), 4)
    for lang in sorted({s.language for s in samples}):
        mine = [s for s in samples if s.language == lang]
        if any(s.answerable for s in mine) and any(not s.answerable for s in mine):
            model.thresholds[lang] = round(choose_threshold(mine, model), 4)
    return model


def hinted_language() -> str:
    """The question language whose refusals may suggest asking again in another: the one pair of
    :data:`qa.answer.extractive.ASK_AGAIN_IN` (vi → en). A model's ``hint_floor`` is keyed by it."""
    from qa.answer.extractive import ASK_AGAIN_IN

    return next(iter(ASK_AGAIN_IN))[0]


def twins(samples: list[Sample]) -> list[tuple[Sample, Sample]]:
    """(question, the same question asked in the language the hint suggests): pairs of samples of
    the mixed archive (:data:`MEASURED_ONLY`: the Vietnamese-only one has no English article to
    suggest) of one article whose ids differ only by their language suffix (``…vi`` / ``…en``, as
    the XQuAD sets name them) and whose languages the hint joins
    (:data:`qa.answer.extractive.ASK_AGAIN_IN`)."""
    from qa.answer.extractive import ASK_AGAIN_IN

    samples = [s for s in samples if s.source in MEASURED_ONLY]
    by_id = {(s.source, s.article, s.qid): s for s in samples}
    out = []
    for s in samples:
        for (asked, other) in ASK_AGAIN_IN:
            if s.language == asked and s.qid.endswith(asked):
                twin = by_id.get((s.source, s.article, s.qid[: -len(asked)] + other))
                if twin is not None and twin.language == other:
                    out.append((s, twin))
    return out


def _hint_cases(pairs: list[tuple[Sample, Sample]], model: Model) -> list[tuple[float, bool, bool]]:
    """(probability, answerable, answered when asked again) of each refusal that may suggest asking
    again: refused by ``model`` (not forced) and its closest article in the twin's language."""
    out = []
    for s, twin in pairs:
        if s.forced or s.closest_language != twin.language:
            continue
        p = model.probability(s.x)
        if p < model.threshold_for(s.language):
            out.append((p, s.answerable, not (twin.forced or model.refuses(twin.x, twin.language))))
    return out


def _outcomes(cases: list[tuple[float, bool, bool]], floor: float | None) -> dict:
    shown = [c for c in cases if floor is not None and c[0] >= floor]
    right = sum(1 for _, answerable, answered in shown if answered and answerable)
    wrong = sum(1 for _, answerable, answered in shown if answered and not answerable)
    return {"hinted": len(shown), "right": right, "wrong": wrong, "net": round(right - WRONG_ANSWER_COST * wrong, 1)}


def hint_outcomes(pairs: list[tuple[Sample, Sample]], model: Model, floor: float | None) -> dict:
    """What following the suggestion gives: of the refused questions whose closest article is in
    the other language and whose probability reaches ``floor`` (the hint is shown), how many are
    answered when asked again, rightly (``right``) and wrongly (``wrong``)."""
    return _outcomes(_hint_cases(pairs, model), floor)


def choose_hint_floor(pairs: list[tuple[Sample, Sample]], model: Model, language: str | None = None) -> float | None:
    """The least probability at which a refusal suggests asking again (questions in ``language``,
    default :func:`hinted_language`): the one at which following the suggestions gains the most,
    a wrong answer costing :data:`WRONG_ANSWER_COST` right ones (ties: the higher floor, fewer
    suggestions). None when no floor gains anything."""
    language = language or hinted_language()
    mine = [(s, t) for s, t in pairs if s.language == language]
    cases = _hint_cases(mine, model)  # each probability and outcome once, whatever the floor
    best, best_net = None, 0.0
    for f in sorted({round(model.probability(s.x), 4) for s, _ in mine}):
        net = _outcomes(cases, f)["net"]
        if net > best_net or (net == best_net and best is not None and f > best):
            best, best_net = f, net
    return best


def _sum_outcomes(parts: list[dict]) -> dict:
    out = {key: sum(p[key] for p in parts) for key in ("hinted", "right", "wrong")}
    out["net"] = round(out["right"] - WRONG_ANSWER_COST * out["wrong"], 1)
    return out


def _held_out_hint(pairs: list[tuple[Sample, Sample]], model: Model, k: int, folds: int) -> dict:
    """The suggestion's outcomes on fold ``k``, its floor chosen on the other folds."""
    def fold(pair: tuple[Sample, Sample]) -> int:
        return fold_of(f"{pair[0].source.split('-')[0]}:{pair[0].article}", folds)

    floor = choose_hint_floor([p for p in pairs if fold(p) != k], model)
    return hint_outcomes([p for p in pairs if fold(p) == k], model, floor)


def held_out_hint(pairs: list[tuple[Sample, Sample]], model: Model, folds: int = 4) -> dict:
    """The suggestion's outcomes for ``model`` as it is, each fold's floor chosen on the others."""
    return _sum_outcomes([_held_out_hint(pairs, model, k, folds) for k in range(folds)])


def fold_of(article: str, folds: int) -> int:
    return int(hashlib.blake2b(article.encode("utf-8"), digest_size=4).hexdigest(), 16) % folds


def sliced(samples: list[Sample], refused: list[bool]) -> dict[str, dict]:
    out = {"all": rates(samples, refused)}
    keys: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        for key in (s.source, f"{s.source} {s.language}", *[f"{s.source} #{t}" for t in s.tags
                                                            if t in ("near-topic", "wrong-time", "absent", "metadata")]):
            keys.setdefault(key, []).append(i)
    for key in sorted(keys):
        idx = keys[key]
        out[key] = rates([samples[i] for i in idx], [refused[i] for i in idx])
    return out


def cross_validate(samples: list[Sample], folds: int = 4, model_path: Path | None = None) -> dict:
    """Fold estimate (model and threshold fitted on the other folds), in-sample, the current
    decision's rates, and the model trained on everything. ``model_path``: the model users get
    (``QA_ANSWERABILITY_MODEL``; default the shipped one), scored on the samples as it is."""
    fold_ids = [fold_of(f"{s.source.split('-')[0]}:{s.article}", folds) for s in samples]
    held: list[bool] = [False] * len(samples)
    pairs = twins(samples)
    hint_parts: list[dict] = []
    for k in range(folds):
        train_idx = [i for i, f in enumerate(fold_ids) if f != k and samples[i].source not in MEASURED_ONLY]
        test_idx = [i for i, f in enumerate(fold_ids) if f == k]
        if not train_idx or not test_idx:
            continue
        m = train([samples[i] for i in train_idx])
        for i in test_idx:
            held[i] = samples[i].forced or m.refuses(samples[i].x, samples[i].language)
        if pairs:
            hint_parts.append(_held_out_hint(pairs, m, k, folds))
    hint_held = _sum_outcomes(hint_parts)
    fitted = [s for s in samples if s.source not in MEASURED_ONLY]
    final = train(fitted)
    if pairs:
        floor = choose_hint_floor(pairs, final)
        if floor is not None:
            final.hint_floor = {hinted_language(): floor}
    in_sample = [s.forced or final.refuses(s.x, s.language) for s in samples]
    fitted_held = [r for s, r in zip(samples, held) if s.source not in MEASURED_ONLY]
    fitted_in = [r for s, r in zip(samples, in_sample) if s.source not in MEASURED_ONLY]
    final.meta = {"samples": len(fitted), "articles": len({(s.source.split('-')[0], s.article) for s in fitted}),
                  "folds": folds, "cross_validated": rates(fitted, fitted_held), "in_sample": rates(fitted, fitted_in)}
    if pairs:
        final.meta["hint"] = {"pairs": len(pairs), "cross_validated": hint_held,
                              "in_sample": hint_outcomes(pairs, final, final.hint_floor.get(hinted_language()))}
    from qa.answer.answerability import load_model

    shipped = load_model(model_path)
    out_shipped = (sliced(samples, [s.forced or shipped.refuses(s.x, s.language) for s in samples])
                   if shipped is not None else None)
    return {
        "cross_validated": sliced(samples, held),
        "in_sample": sliced(samples, in_sample),
        "shipped": out_shipped,  # the model users get (qa/answer/answerability.json), on these samples
        "baseline": sliced(samples, [s.baseline_refused for s in samples]),
        "forced": sum(s.forced for s in samples),
        # the ask-again suggestion: its floor chosen on the training folds, outcomes on the held-out ones
        # (shipped_folds: the shipped model's weights, its floor chosen on the training folds)
        "hint": ({"cross_validated": hint_held, "in_sample": final.meta["hint"]["in_sample"],
                  "shipped": hint_outcomes(pairs, shipped, shipped.hint_floor.get(hinted_language())) if shipped is not None else None,
                  "shipped_folds": held_out_hint(pairs, shipped, folds) if shipped is not None else None}
                 if pairs else None),
        "model": final,
    }
