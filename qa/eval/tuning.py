"""Choosing the fusion's weights by cross-validation over articles (``qa eval tune``).

Each question is asked once: :meth:`NewsRetriever.candidates` gives every candidate with every
score (dense and sentence cosines, calibrated per passage language, BM25), and a label (does it
hold the answer). Every setting of the grid is then replayed offline with the retriever's own
fusion function (:func:`qa.answer.retrieval.fuse_scores`), so the chosen setting ranks exactly
as the retriever will.

Folds are by article (every question of an article in the same fold, never by question): the
setting is chosen on the other folds and scored on the held-out one, and the report gives the
held-out (fold) estimate next to the in-sample one. Weights fitted to one split of questions
look better than they are; the fold estimate is what a new archive can expect.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from qa.answer.retrieval import candidate_features, fuse_scores

KW_WEIGHTS = (0.0, 0.15, 0.3, 0.5, 0.8, 1.2, 1.6, 2.2, 3.0, 4.0)
SENTENCE_WEIGHTS = (0.0, 0.5, 1.0, 1.5)
CONSTRAINT_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
CROSS_BONUSES = (0.0, 0.01, 0.02, 0.03, 0.04)
CATEGORIES = ("vi", "vi_plain", "en")  # which keyword weight a question uses (retriever._weight)


@dataclass
class Sample:
    qid: str
    article: str  # the fold unit
    category: str  # "vi" | "vi_plain" | "en"
    slice: str  # "<question language>→<language of the gold passage>"
    dense: np.ndarray
    dense_raw: np.ndarray
    keyword: np.ndarray
    sentence: np.ndarray | None
    sentence_raw: np.ndarray | None
    language: np.ndarray
    gold: np.ndarray  # bool per candidate
    constraint: np.ndarray | None = None


@dataclass
class Setting:
    calibrate: bool
    kw_per_language: bool
    sentence_weight: float
    kw_weight: dict[str, float] = field(default_factory=dict)
    constraint_weight: float = 0.0
    cross_bonus: float = 0.0

    def as_dict(self) -> dict:
        return {"language_calibration": self.calibrate, "keyword_per_language": self.kw_per_language,
                "sentence_weight": self.sentence_weight, "constraint_weight": self.constraint_weight,
                "cross_language_bonus": self.cross_bonus,
                **{f"keyword_weight_{c}": w for c, w in self.kw_weight.items()}}


def category(language: str, query: str) -> str:
    from qa.text import has_diacritics

    if language == "en":
        return "en"
    return "vi" if has_diacritics(query) else "vi_plain"


def collect(retriever, questions: Iterable[tuple[str, str, str, str, Callable]], *,
            on_question: Callable[[], None] | None = None) -> list[Sample]:
    """questions: (qid, text, language, article, is_gold(passage) → bool). Questions whose answer
    is not among the candidates are kept (they count as misses whatever the weights)."""
    out: list[Sample] = []
    for qid, text, lang, article, is_gold in questions:
        ps = retriever.candidates(text, lang)
        if on_question:
            on_question()
        if not ps:
            continue
        f = candidate_features(ps)
        gold = np.array([bool(is_gold(p)) for p in ps])
        glang = next((p.trace.get("passage_language", "?") for p, g in zip(ps, gold) if g), None)
        raw_s = None
        if f["sentence"] is not None:
            raw_s = np.array([p.trace.get("sentence_score", p.trace.get("dense_score", 0.0)) for p in ps], dtype=np.float64)
        out.append(Sample(
            qid, article, category(lang, text), f"{lang}→{glang or '?'}",
            f["dense"], np.array([p.trace.get("dense_score", 0.0) for p in ps], dtype=np.float64),
            f["keyword"], f["sentence"], raw_s, f["language"], gold, f["constraint"],
        ))
    return out


def gold_rank(s: Sample, calibrate: bool, kw_per_language: bool, kw_weight: float, sentence_weight: float,
              constraint_weight: float = 0.0, cross_bonus: float = 0.0) -> int | None:
    if not s.gold.any():
        return None
    fused = fuse_scores(s.dense if calibrate else s.dense_raw, s.keyword,
                        s.sentence if calibrate else s.sentence_raw, s.language,
                        kw_weight, sentence_weight, kw_per_language=kw_per_language,
                        constraint=s.constraint, constraint_weight=constraint_weight,
                        query_language="en" if s.category == "en" else "vi", cross_language_bonus=cross_bonus)
    best = float(fused[s.gold].max())
    return int((fused > best).sum()) + 1


def metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    if not n:
        return {"n": 0, "recall@1": 0.0, "recall@5": 0.0, "mrr@10": 0.0}
    return {
        "n": n,
        "recall@1": round(sum(x == 1 for x in ranks if x) / n, 4),
        "recall@5": round(sum(x <= 5 for x in ranks if x) / n, 4),
        "mrr@10": round(sum(1.0 / x for x in ranks if x and x <= 10) / n, 4),
    }


class Grid:
    """All settings' gold ranks, computed once per sample."""

    def __init__(self, samples: list[Sample], kw_weights=KW_WEIGHTS, sentence_weights=SENTENCE_WEIGHTS,
                 calibrations=(False, True), kw_modes=(False, True), constraint_weights=CONSTRAINT_WEIGHTS,
                 cross_bonuses=CROSS_BONUSES) -> None:
        self.samples = samples
        self.kw_weights = tuple(kw_weights)
        self.shared = list(itertools.product(calibrations, kw_modes, sentence_weights, constraint_weights, cross_bonuses))
        # ranks[shared index][kw index] -> array over samples (0 for a miss)
        self.ranks = np.zeros((len(self.shared), len(self.kw_weights), len(samples)), dtype=np.int32)
        # a question naming no constraint ranks the same whatever the constraint weight, and one
        # whose candidates are all in one language the same whatever the cross-language bonus
        free = [s.constraint is None or not s.constraint.any() for s in samples]
        mono = [len(set(s.language.tolist())) < 2 for s in samples]
        done_c: dict[tuple, int] = {}
        done_b: dict[tuple, int] = {}
        for i, (cal, kwl, sw, cw, cb) in enumerate(self.shared):
            base_c = done_c.setdefault((cal, kwl, sw, cb), i)
            base_b = done_b.setdefault((cal, kwl, sw, cw), i)
            for j, kw in enumerate(self.kw_weights):
                for n, s in enumerate(samples):
                    if base_c != i and free[n]:
                        self.ranks[i, j, n] = self.ranks[base_c, j, n]
                    elif base_b != i and mono[n]:
                        self.ranks[i, j, n] = self.ranks[base_b, j, n]
                    else:
                        self.ranks[i, j, n] = gold_rank(s, cal, kwl, kw, sw, cw, cb) or 0

    def _score(self, ranks: np.ndarray) -> float:
        # MRR@10 with R@1 on top: smooth enough to choose by, and it rewards the first place
        ok = ranks > 0
        if not len(ranks):
            return 0.0
        rr = np.where(ok & (ranks <= 10), 1.0 / np.maximum(ranks, 1), 0.0)
        return float((rr + (ranks == 1)).sum() / len(ranks))

    def fit(self, idx: np.ndarray) -> Setting:
        """The best setting on the samples ``idx``: shared parameters jointly, the keyword weight per category."""
        cats = np.array([s.category for s in self.samples])
        best: tuple[float, Setting] | None = None
        for i, (cal, kwl, sw, cw, cb) in enumerate(self.shared):
            total, weights = 0.0, {}
            for c in CATEGORIES:
                sel = idx[cats[idx] == c]
                if not len(sel):
                    continue
                scores = [self._score(self.ranks[i, j, sel]) * len(sel) for j in range(len(self.kw_weights))]
                j = int(np.argmax(scores))
                weights[c] = self.kw_weights[j]
                total += scores[j]
            if best is None or total > best[0] + 1e-12:
                best = (total, Setting(cal, kwl, sw, weights, cw, cb))
        assert best is not None
        return best[1]

    def ranks_for(self, setting: Setting, idx: np.ndarray) -> list[int | None]:
        key = (setting.calibrate, setting.kw_per_language, setting.sentence_weight, setting.constraint_weight,
               setting.cross_bonus)
        i = self.shared.index(key) if key in self.shared else None
        out: list[int | None] = []
        for n in idx:
            c = self.samples[n].category
            w = setting.kw_weight.get(c, 0.3)
            j = self.kw_weights.index(w) if w in self.kw_weights else None
            if i is not None and j is not None:
                r = int(self.ranks[i, j, n])
            else:  # a setting outside the grid (the current one, say)
                r = gold_rank(self.samples[n], setting.calibrate, setting.kw_per_language, w, setting.sentence_weight,
                              setting.constraint_weight, setting.cross_bonus) or 0
            out.append(r or None)
        return out


def fold_of(article: str, folds: int) -> int:
    return int(hashlib.blake2b(article.encode("utf-8"), digest_size=4).hexdigest(), 16) % folds


def sliced(samples: list[Sample], idx: Iterable[int], ranks: list[int | None]) -> dict[str, dict]:
    idx = list(idx)
    out = {"all": metrics(ranks)}
    for key in sorted({samples[n].slice for n in idx}):
        out[key] = metrics([r for n, r in zip(idx, ranks) if samples[n].slice == key])
    # per data set (the article ids are "<set>:<article>"), and per set × slice
    sets = sorted({samples[n].article.split(":", 1)[0] for n in idx if ":" in samples[n].article})
    if len(sets) > 1:
        for ds in sets:
            mine = [(n, r) for n, r in zip(idx, ranks) if samples[n].article.startswith(ds + ":")]
            out[ds] = metrics([r for _, r in mine])
            for key in sorted({samples[n].slice for n, _ in mine}):
                out[f"{ds} {key}"] = metrics([r for n, r in mine if samples[n].slice == key])
    return out


def cross_validate(samples: list[Sample], folds: int = 4, current: Setting | None = None, **grid_values) -> dict:
    """Fold estimate, in-sample figures and the setting chosen on all samples (and the current one's).
    ``grid_values``: the :class:`Grid`'s value lists, to narrow the search."""
    grid = Grid(samples, **grid_values)
    everything = np.arange(len(samples))
    chosen = grid.fit(everything)
    fold_ids = np.array([fold_of(s.article, folds) for s in samples])
    held: list[int | None] = [None] * len(samples)
    per_fold = []
    for k in range(folds):
        test = everything[fold_ids == k]
        train = everything[fold_ids != k]
        if not len(test) or not len(train):
            continue
        setting = grid.fit(train)
        for n, r in zip(test, grid.ranks_for(setting, test)):
            held[n] = r
        per_fold.append({"fold": k, "questions": int(len(test)), "setting": setting.as_dict()})
    report = {
        "samples": len(samples),
        "articles": len({s.article for s in samples}),
        "folds": folds,
        "chosen": chosen.as_dict(),
        "cross_validated": sliced(samples, everything, held),
        "in_sample": sliced(samples, everything, grid.ranks_for(chosen, everything)),
        "per_fold": per_fold,
    }
    if current is not None:
        report["current"] = {"setting": current.as_dict(), **sliced(samples, everything, grid.ranks_for(current, everything))}
    return report
