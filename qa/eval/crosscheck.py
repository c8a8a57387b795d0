"""Calibrating the cross-language claim checks (:mod:`qa.answer.crosscheck`) on XQuAD.

XQuAD's Vietnamese and English files are translations of one another, paragraph by paragraph.
That gives, without any labelling:

* **meaning**: each question with its answer ("Who … ? Luther"), the shape of a sentence a
  model writes, in both languages, against its paragraph in both languages (the closest
  sentence there is what a faithful cited sentence scores: a *pass*), and against the other
  paragraphs of the same article (near-topic text that does not say it: should *fail*);
* **words** (per language): the same claims against their paragraph in their own language, the
  share of their words it states (*pass*), and against the article's other paragraphs in that
  language (*fail*);
* **names**: every name (run of capitalised words) of a paragraph that the other language's
  version does not state literally, against the names of that version (*pass*: its
  translation is usually there) and against the names of another article's paragraph
  (*fail*).

A threshold is chosen on folds by article (see :func:`calibrate` for which error each one
bounds) and reported on the held-out articles: the share of passes kept and of fails let
through. The shipped value is the one chosen on all articles.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PASS_SHARE = 0.95  # meaning: faithful cited sentences kept
FAIL_SHARE = 0.99  # names: unrelated names rejected (a false translation can move a marker)
FOLDS = 4


@dataclass
class Scores:
    article: list[int]
    positive: list[float]
    negative: list[float]
    neg_article: list[int]


def parallel_articles(xquad_dir: Path) -> list[list[dict]]:
    """Articles → their paragraphs: ``{"vi", "en"}`` texts and ``"claims"``: for each question,
    the question with its answer in each language (``{"vi": "… ? answer", "en": …}``), the
    shape of a sentence a model writes from that paragraph."""
    from qa.eval import xquad

    vi = json.loads(xquad.find_file(Path(xquad_dir), "vi").read_text(encoding="utf-8"))["data"]
    en = json.loads(xquad.find_file(Path(xquad_dir), "en").read_text(encoding="utf-8"))["data"]
    if len(vi) != len(en):
        raise ValueError("the vi and en files are not a parallel pair")
    out = []
    for a, b in zip(vi, en):
        pa, pb = a.get("paragraphs", []), b.get("paragraphs", [])
        if len(pa) != len(pb):
            raise ValueError(f"article {a.get('title')}: {len(pa)} vi and {len(pb)} en paragraphs")
        paras = []
        for x, y in zip(pa, pb):
            en_qa = {q["id"]: q for q in y.get("qas", [])}
            claims = []
            for q in x.get("qas", []):
                e = en_qa.get(q["id"])
                if e and q.get("answers") and e.get("answers"):
                    claims.append({"vi": f"{q['question']} {q['answers'][0]['text']}",
                                   "en": f"{e['question']} {e['answers'][0]['text']}"})
            paras.append({"vi": x["context"], "en": y["context"], "claims": claims})
        out.append(paras)
    return out


def _threshold(pos: np.ndarray, neg: np.ndarray, mode: str) -> float:
    if mode == "keep":  # keep PASS_SHARE of the pairs that must pass
        return float(np.quantile(pos, 1 - PASS_SHARE)) if len(pos) else 0.0
    return float(np.quantile(neg, FAIL_SHARE)) if len(neg) else 1.0  # let through at most 1 - FAIL_SHARE of the fails


def calibrate(scores: Scores, mode: str = "keep", folds: int = FOLDS, seed: int = 0) -> dict:
    """The threshold on all articles, and its fold estimate (folds by article). ``mode`` "keep":
    the highest that keeps :data:`PASS_SHARE` of the passes (meaning: dropping a faithful
    sentence is the costly error); "reject": the lowest that lets through at most
    1 − :data:`FAIL_SHARE` of the fails (names: a false translation would verify a blended
    sentence, a missed one only leaves it to the support score)."""
    arts = sorted(set(scores.article) | set(scores.neg_article))
    random.Random(seed).shuffle(arts)
    fold_of = {a: i % folds for i, a in enumerate(arts)}
    pa, pos = np.array([fold_of[a] for a in scores.article]), np.array(scores.positive)
    na, neg = np.array([fold_of[a] for a in scores.neg_article]), np.array(scores.negative)
    kept, let = [], []
    for f in range(folds):
        t = _threshold(pos[pa != f], neg[na != f], mode)
        kept.append(float(np.mean(pos[pa == f] >= t)) if np.any(pa == f) else np.nan)
        let.append(float(np.mean(neg[na == f] >= t)) if np.any(na == f) else np.nan)
    t = _threshold(pos, neg, mode)
    return {
        "mode": mode,
        "threshold": round(t, 4),
        "in_sample": {"pass_kept": round(float(np.mean(pos >= t)), 3), "fail_let_through": round(float(np.mean(neg >= t)), 3)},
        "fold_estimate": {"pass_kept": round(float(np.nanmean(kept)), 3), "fail_let_through": round(float(np.nanmean(let)), 3)},
        "pairs": {"pass": int(len(pos)), "fail": int(len(neg))},
    }


def meaning_scores(articles: list[list[dict]], checker, on_article=None) -> Scores:
    """Each question-with-its-answer (a claim, both languages) against its paragraph in both
    languages (its closest sentence: a *pass*), and against the article's other paragraphs in
    both languages (*fail*: near-topic text that does not say it)."""
    from qa.index.sentvec import answer_units

    out = Scores([], [], [], [])
    for ai, paras in enumerate(articles):
        units = {(pi, lang): [u for u in answer_units(p[lang]) if u.strip()] for pi, p in enumerate(paras) for lang in ("vi", "en")}
        vecs = {key: checker.vectors(u) for key, u in units.items() if u}
        for pi, p in enumerate(paras):
            for lang in ("vi", "en"):
                claims = [c[lang] for c in p["claims"]]
                if not claims:
                    continue
                mine = checker.vectors(claims)
                for there in ("vi", "en"):
                    own = vecs.get((pi, there))
                    others = [v for (pj, l), v in vecs.items() if pj != pi and l == there]
                    if own is None or not others:
                        continue
                    out.positive += (mine @ own.T).max(axis=1).tolist()
                    out.article += [ai] * len(claims)
                    out.negative += (mine @ np.concatenate(others).T).max(axis=1).tolist()
                    out.neg_article += [ai] * len(claims)
        if on_article:
            on_article()
    return out


def word_scores(articles: list[list[dict]], language: str) -> Scores:
    """Each claim in ``language`` against its paragraph in that language (the share of its
    words the paragraph states, :func:`qa.answer.crosscheck.word_support`: a *pass*) and the
    highest share among the article's other paragraphs (*fail*)."""
    from qa.answer.crosscheck import word_support

    out = Scores([], [], [], [])
    for ai, paras in enumerate(articles):
        for pi, p in enumerate(paras):
            others = [q[language] for pj, q in enumerate(paras) if pj != pi]
            if not others:
                continue
            for c in p["claims"]:
                out.positive.append(word_support(c[language], p[language]))
                out.negative.append(max(word_support(c[language], o) for o in others))
                out.article.append(ai)
                out.neg_article.append(ai)
    return out


def name_scores(articles: list[list[dict]], checker, seed: int = 0, on_article=None) -> Scores:
    """Names of a paragraph the other version does not state literally, against that version's
    names (its translation is usually there) and another article's paragraph's names."""
    from qa.answer.crosscheck import answer_names, name_phrases
    from qa.index.keyword import analyse

    rng = random.Random(seed)
    out = Scores([], [], [], [])
    for ai, paras in enumerate(articles):
        for pi, p in enumerate(paras):
            for src, dst in (("vi", "en"), ("en", "vi")):
                there = set(analyse(p[dst]))
                mine = [r for r in answer_names(p[src])
                        if (w := {t for t in analyse(r) if "_" not in t}) and not w <= there]
                theirs = name_phrases(p[dst])
                oa = rng.choice([j for j in range(len(articles)) if j != ai])
                other = name_phrases(rng.choice(articles[oa])[dst])
                if not mine or not theirs or not other:
                    continue
                v = checker.vectors(mine)
                out.positive += (v @ checker.vectors(theirs).T).max(axis=1).tolist()
                out.article += [ai] * len(mine)
                out.negative += (v @ checker.vectors(other).T).max(axis=1).tolist()
                out.neg_article += [ai] * len(mine)
        if on_article:
            on_article()
    return out
