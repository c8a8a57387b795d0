"""Cross-language checks of a model's cited sentences against the passages they cite.

The literal checks (:func:`qa.answer.llm.ground_numbers`, :func:`qa.answer.llm.ground_names`)
compare folded words, so they cannot see that "the World Bank" in an English answer is
"Ngân hàng Thế giới" in a Vietnamese passage, nor that a sentence says something its cited
passage does not. Two embedding checks close that gap (the embedder the index uses, a
multilingual one; vectors of passage sentences come from the sentence-vector cache when
``qa ingest`` filled it):

* **Names across languages** (:meth:`CrossChecker.name_aliases`): a name of the answer that no
  passage states literally is compared with the name phrases of every passage
  (:func:`name_phrases`); the passage of the closest one states it in its own language when
  that one reaches :func:`name_similarity`. The
  literal grounding then treats it like any other name: a sentence citing [1] for a name only
  [2] states (in translation) is re-cited to [2] or dropped, and the support score counts it.
* **Meaning** (:meth:`CrossChecker.meaning`): a cited sentence's closest sentence among its
  cited passages (cosine, either language). Below :data:`MEANING_SIMILARITY` the passage does
  not say it: the sentence is re-cited to a passage that does, or dropped. The score is shown
  as ``support.meaning`` on every citation.

* **Words, in the same language** (:func:`word_support`): cosines of a small encoder run high
  between any two sentences about the news ("The ministry received 2 million doses" scores 0.82
  against a report on a test flight), so a sentence in its passage's language must also reuse
  enough of that passage's words (:func:`word_share`, per language). Across languages only
  the meaning is compared.

The thresholds come from ``crosscheck.json``, written by ``qa eval crosscheck --xquad DIR``
(XQuAD's parallel paragraphs: an English sentence and its Vietnamese paragraph, and back, are
pairs that must pass; the other paragraphs of the same article are the near-topic ones that
should not; chosen on folds by article, see that command).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.answer.retrieval import Passage

THRESHOLDS = Path(__file__).with_name("crosscheck.json")


@lru_cache(maxsize=1)
def thresholds() -> dict:
    try:
        return json.loads(THRESHOLDS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def name_similarity() -> float:
    return float(thresholds().get("name_similarity", 0.9))


def meaning_similarity() -> float:
    return float(thresholds().get("meaning_similarity", 0.8))


_WORD_SHARE = {"vi": 0.667, "en": 0.545}  # used when crosscheck.json has no "word_share"


def word_share(language: str) -> float:
    """The least share of a sentence's words its passage must state, in that passage's language
    (:func:`word_support`); 0 for a language not calibrated."""
    return float((thresholds().get("word_share") or _WORD_SHARE).get(language, 0.0))


_CONTENT = re.compile(r"[^\W\d_]+")
_VI_LETTER = re.compile(r"[ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ]", re.IGNORECASE)
_FILLER = frozenset("also just only even still very more most less than then into over after before during between "
                    "under above such same own other another each every all both either neither yes no".split())


def content_words(text: str) -> list[str]:
    """A sentence's words (folded, lower case, without stopwords and numbers), names included."""
    from qa.index.keyword import STOPWORDS
    from qa.text import fold

    words = (fold(w).lower() for w in _CONTENT.findall(text or ""))
    return list(dict.fromkeys(w for w in words if len(w) >= 2 and w not in STOPWORDS and w not in _FILLER))


# how a model refers to its sources ("According to the articles", "Theo các bài báo"): not a claim
_META = re.compile(r"(?i)\b(?:the |these |this )?(?:articles?|passages?|reports?|excerpts?)\b|"
                   r"\b(?:các |những )?(?:bài báo|bài viết|đoạn trích|bản tin)\b")


def word_support(sentence: str, passage_text: str) -> float:
    """The share of ``sentence``'s words (:func:`content_words`) that ``passage_text`` states; an
    English word of five letters or more also matches by its first five ("received" =
    "receive"). How the sentence names its sources ("according to the articles", "theo bài
    báo") does not count. 1.0 for a sentence of names and numbers only."""
    words = content_words(_META.sub(" ", sentence or ""))
    if not words:
        return 1.0
    have, stems = _passage_words(passage_text)
    return sum(1 for w in words if w in have or (len(w) >= 5 and w[:5] in stems)) / len(words)


@lru_cache(maxsize=512)
def _passage_words(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """A passage's words and the first five letters of its longer ones (read once per passage,
    not once per sentence checked against it)."""
    have = frozenset(content_words(text))
    return have, frozenset(w[:5] for w in have if len(w) >= 5)


def sentence_language(sentence: str) -> str | None:
    """The language a model's sentence is written in, or None (an English sentence keeping a
    Vietnamese name is neither). A sentence too short for :func:`qa.language.written_in` is
    English without any Vietnamese letter, Vietnamese with them in most of its words."""
    from qa.language import written_in

    lang = written_in(sentence)
    if lang is None:
        words = _CONTENT.findall(sentence)
        share = sum(1 for w in words if _VI_LETTER.search(w)) / len(words) if words else 0.0
        lang = "en" if words and share == 0 else "vi" if share >= 0.5 else None
    return lang


_POSSESSIVE = re.compile(r"['’]s\b")
_SYLLABLE = re.compile(r"[^\W\d_][\w'’-]*|\S")


_CONNECTORS = {"và", "của", "and", "of", "for"}
_DETERMINERS = {"the", "a", "an"}


def answer_names(text: str) -> list[str]:
    """The names a (model's) sentence states: runs of capitalised words
    (:func:`qa.answer.citations.name_runs`) without a possessive or a leading article
    ("The World Bank's" → "World Bank")."""
    from qa.answer.citations import name_runs

    out = []
    for run in name_runs(_POSSESSIVE.sub("", text)):
        words = run.split()
        while words and words[0].lower() in _DETERMINERS:
            words = words[1:]
        if words:
            out.append(" ".join(words))
    return list(dict.fromkeys(out))


_BREAK = {"và", "của", "với", "cho", "tại", "ở", "and", "of", "the", "for", "with", "at", "in", "on", "đã", "sẽ", "là"}


def name_phrases(text: str, longest: int = 7) -> list[str]:
    """Names a text states, as phrases to compare across languages. Vietnamese capitalises only
    the first syllable of each word of a name ("Ngân hàng Thế giới", "Quỹ Tiền tệ Quốc tế"),
    so a run may hold one lower-case syllable after each capitalised one; every span of a run
    that starts on a capitalised syllable is a candidate ("Ngân hàng Thế giới", "Ngân hàng
    Thế", "Thế giới"…): which lower-case syllable ends the name, only a dictionary could say.
    The text's first word alone is not a name."""
    words = [m.group() for m in _SYLLABLE.finditer(text)]
    runs: list[list[str]] = []
    cur: list[str] = []
    for i, w in enumerate(words):
        cap = w[:1].isupper() and w[:1].isalpha()
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if cap:
            cur.append(w)
        elif cur and w.lower() in _CONNECTORS and nxt[:1].isupper():
            cur.append(w)  # "Bộ Tài nguyên và Môi trường", "Bank of Vietnam"
        elif cur and w[:1].isalpha() and w.lower() not in _BREAK and cur[-1][:1].isupper():
            cur.append(w)
        else:
            if cur:
                runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    out: list[str] = []
    first = words[0] if words else ""
    for run in runs:
        for start in range(len(run)):
            if not run[start][:1].isupper():
                continue
            for end in range(start + 1, min(len(run), start + longest) + 1):
                span = run[start:end]
                if span[-1].lower() in _CONNECTORS:
                    continue
                if len(span) == 1 and (span[0] == first or len(run) > 1):
                    continue  # a syllable of a longer name is not a name
                out.append(" ".join(span))
    return list(dict.fromkeys(out))


class CrossChecker:
    """Embedding checks of a model answer (see the module docstring). ``embedder`` is the
    index's; ``sentvec`` the sentence-vector cache (optional)."""

    def __init__(self, embedder, sentvec=None, name_threshold: float | None = None,
                 meaning_threshold: float | None = None) -> None:
        self.embedder = embedder
        self.sentvec = sentvec
        self.name_threshold = name_similarity() if name_threshold is None else name_threshold
        self.meaning_threshold = meaning_similarity() if meaning_threshold is None else meaning_threshold
        self._cache: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ vectors
    def vectors(self, texts: list[str]) -> np.ndarray:
        """Passage-side vectors of short texts (names, sentences), cached in memory."""
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        have = {t: self._cache[t] for t in texts if t in self._cache}
        todo = list(dict.fromkeys(t for t in texts if t not in have))
        if todo:
            vecs = np.asarray(self.embedder.embed_passages(todo), dtype=np.float32)
            have.update(zip(todo, vecs))
            if len(self._cache) > 20000:
                self._cache.clear()
            self._cache.update(zip(todo, vecs))
        return np.stack([have[t] for t in texts])

    def unit_vectors(self, units: list[str]) -> np.ndarray:
        if self.sentvec is not None and units:
            return np.asarray(self.sentvec.embed(units, self.embedder), dtype=np.float32)
        return self.vectors(units)

    # ------------------------------------------------------------------ names
    def name_aliases(self, answer: str, passages: list[Passage], question: str = "") -> list[set[str]]:
        """For each passage, the folded words of the answer's names that it states in other
        words (another language or script): what the literal name check may count as held."""
        from qa.answer.citations import MARKER
        from qa.index.keyword import analyse

        out: list[set[str]] = [set() for _ in passages]
        if not passages:
            return out
        literal = set().union(*(set(analyse(f"{p.title}\n{p.text}")) for p in passages)) | set(analyse(question))
        names = []
        for run in answer_names(MARKER.sub(" ", answer)):
            words = {t for t in analyse(run) if "_" not in t and not any(ch.isdigit() for ch in t)}
            if words and not words <= literal:
                names.append((run, words))
        if not names:
            return out
        per_passage = [name_phrases(p.text) for p in passages]
        flat = [n for ns in per_passage for n in ns]
        if not flat:
            return out
        mine = self.vectors([run for run, _ in names])
        theirs = self.vectors(flat)
        sims = mine @ theirs.T
        owner = np.repeat(np.arange(len(passages)), [len(ns) for ns in per_passage])
        for (run, words), row in zip(names, sims):
            # the passage of its closest phrase states it, when that one is close enough
            j = int(np.argmax(row))
            if row[j] >= self.name_threshold:
                out[int(owner[j])] |= words
        return out

    # ------------------------------------------------------------------ meaning
    def meaning(self, sentences: list[str], passages: list[Passage]) -> np.ndarray:
        """``[i, k]``: how close sentence ``i`` comes to a sentence of passage ``k`` (cosine of
        the closest one)."""
        from qa.index.sentvec import answer_units

        out = np.zeros((len(sentences), len(passages)), dtype=np.float32)
        if not sentences or not passages:
            return out
        mine = self.vectors(sentences)
        for k, p in enumerate(passages):
            units = [u for u in answer_units(p.text) if u.strip()]
            if not units:
                continue
            out[:, k] = (mine @ self.unit_vectors(units).T).max(axis=1)
        return out

    def ground_meaning(self, answer: str, passages: list[Passage]) -> tuple[str, list[dict], dict[str, float]]:
        """Every cited sentence must be close in meaning to a sentence of a passage it cites and,
        when that passage is in the sentence's language, reuse enough of its words
        (:func:`word_support`). One that is not is re-cited to the closest passage that passes,
        else dropped. Returns (answer, report, chunk id → lowest meaning score of the
        sentences that cite its passage after the checks)."""
        from qa.answer.citations import MARKER
        from qa.answer.llm import cited_spans
        from qa.answer.retrieval import passage_language

        spans = cited_spans(answer, len(passages))
        if not spans:
            return answer, [], {}
        texts = [s["text"] for s in spans]
        sims = self.meaning(texts, passages)
        ok = sims >= self.meaning_threshold
        words = np.ones_like(sims)  # the word share, where the sentence and passage share a language
        written = [passage_language(p) for p in passages]
        for i, text in enumerate(texts):
            lang = sentence_language(text)
            for k, p in enumerate(passages):
                if lang is not None and ok[i, k] and written[k] == lang:
                    words[i, k] = word_support(text, f"{p.title}\n{p.text}")
                    ok[i, k] = words[i, k] >= word_share(lang)
        edits: list[tuple[int, int, str]] = []
        report: list[dict] = []
        lowest: dict[str, float] = {}

        def note(n: int, score: float) -> None:
            cid = passages[n - 1].chunk_id
            lowest[cid] = min(lowest.get(cid, 1.0), score)

        for i, s in enumerate(spans):
            cites = s["cites"]
            own = max(float(sims[i, n - 1]) for n in cites)
            if any(ok[i, n - 1] for n in cites):
                for n in cites:
                    note(n, float(sims[i, n - 1]))
                continue
            why = {"meaning": round(own, 3), "cited": sorted(set(cites))}
            if any(words[i, n - 1] < 1.0 for n in cites):
                why["words"] = round(float(max(words[i, n - 1] for n in cites)), 3)
            passing = np.where(ok[i], sims[i], -np.inf)
            best = int(np.argmax(passing)) + 1
            if ok[i, best - 1] and s["inner"] and not s["trailing"]:
                body = answer[s["body_start"] : s["end"]]
                first = MARKER.search(body)
                edits.append((s["body_start"], s["end"], body[: first.start()] + f"[{best}]" + MARKER.sub("", body[first.end():])))
                note(best, float(sims[i, best - 1]))
                report.append({"sentence": s["text"], **why, "action": f"cited [{best}]"})
                continue
            edits.append((s["body_start"], s["drop_end"], ""))
            report.append({"sentence": s["text"], **why, "action": "dropped"})
        out = answer
        for a, b, text in sorted(edits, reverse=True):
            out = out[:a] + text + out[b:]
        return re.sub(r"[ \t]{2,}", " ", out).strip(), report, lowest
