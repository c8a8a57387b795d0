"""Questions typed in haste, read as meant: without diacritics ("doi nao vo dich nam 2024" →
"đội nào vô địch năm 2024") or without capitals ("what did le cong thanh say" → "what did Le
Cong Thanh say").

Many Vietnamese users type without diacritics (no input method at hand, a phone, haste), and
most users of a chat box type in lower case. The keyword index matches both (it folds
everything), but the multilingual encoder reads "doi nao vo dich" as another string, and the
checks on what a question asks ("bao nhiêu", "năm nào", "ai") and on the names it gives
(capitalised words: "None of the articles found mentions Noru") see nothing.

**Diacritics** (:func:`restore_diacritics`, a Vietnamese question with no diacritic at all).
Each syllable folds to several written ones ("nam": năm, nam, Nam, nằm; "nhieu": nhiều, nhiêu),
so the restoration reads words in context. The question is cut into words, each a compound of
a Vietnamese word list or a single syllable, and each word's written form is chosen, by dynamic
programming over the whole question, from three sources:

- **syllable frequencies** (wordfreq's Vietnamese list): what a syllable alone most often is;
- **a Vietnamese word list** (pyvi's ``words.txt``, 31k words, 25k of them compounds, with the
  question words of :data:`QUESTION_WORDS`): "bao nhiêu", "vô địch", "cơ trưởng", "tổng cộng";
- **the archive's own wording**: the Vietnamese passages the folded question finds (the keyword
  index folds too), their titles and outlets. Two words the archive writes side by side score
  together ("nam 2024" → "năm 2024", "da nang" → "đà nẵng"); its spelling of a tone mark wins
  ("hóa" / "hoá").

Numbers, codes and acronyms ("VN5001", "GDP", "III/2023") are kept as typed, and so are the
capitals the user typed.

**Capitals** (:func:`restore_capitals`, a question typed in lower case, or restored above): a
run of words the archive's passages nearly always write with capitals is a name, and gets them.

The weights were chosen by cross-validation over articles (README, "Questions typed in haste").
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from functools import lru_cache
from typing import Iterable

from qa.text import fold, has_diacritics

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
PLAIN_SHARE = 0.4  #: in a question typed partly with diacritics, the share of plain words that calls for restoring
# (at 0.25, 2 of 673 questions written with care were changed: "thua" → "thừa", "mua" → "mùa")
MAX_RUN = 4  #: the longest compound of the word list read
SYLLABLE_WEIGHT = 0.5  #: × a written syllable's Zipf frequency (about 1–7)
ARCHIVE_SYLLABLE = 0.0  #: × log(1 + times the archive's passages write it) (every fold chose 0 of 0, 0.2, 0.5)
COMPOUND = 1.5  #: per joint, a compound of the word list read as one word
ARCHIVE_PAIR = 2.0  #: × log(1 + times the archive's passages write the two side by side)
QUESTION_WORD = 3.0  #: per joint, on top of :data:`COMPOUND`, for one of :data:`QUESTION_WORDS`
RARE_ZIPF = 2.5  #: a lower-case word rarer than this in both languages is a name (as the refusal's rare-name check)
COMMON_ZIPF = 5.0  #: a word this common (either language) is not capitalised by the archive alone, only in a run
NAME_CASE = 0.9  #: a run typed in lower case is capitalised when the archive writes it so this often (a name)
# interrogatives, the time words of questions ("tính đến" = "as of") and the words of questions
# about an article itself, which news prose (the archive) writes less often; they win over
# another written form of the same syllables ("tác giả" over "tác gia")
QUESTION_WORDS = """bao nhiêu|bao giờ|bao lâu|khi nào|lúc nào|năm nào|ngày nào|tháng nào|ở đâu|đi đâu|là gì|
làm gì|vì sao|tại sao|thế nào|như thế nào|ra sao|là ai|do ai|của ai|ai là|thứ mấy|có mấy|mấy giờ|đã làm|
có phải|bằng cách nào|có bao nhiêu|là bao nhiêu|đội nào|người nào|nước nào|tỉnh nào|môn nào|nơi nào|
tính đến|tính tới|tính từ|đến nay|đến hết|cho đến|từ đầu năm|so với|cùng kỳ|hiện nay|hiện tại|
do ai viết|ai viết|người viết|tác giả|được đăng|đăng trên|đăng ngày|đăng vào|đăng tải|xuất bản|báo nào|
phóng viên nào|nhà báo nào|bài viết|bài báo|trên báo|do phóng viên|do nhà báo|nào viết""".replace("\n", "").split("|")
_QUESTION_FORMS = frozenset(QUESTION_WORDS)


def lacks_diacritics(question: str) -> bool:
    """A question typed without diacritics, wholly or in part (the caller has already judged it
    Vietnamese): two words or more written without the marks their syllable usually carries, and,
    when other words have theirs, :data:`PLAIN_SHARE` of its words or more ("doi nao vo dich", "Bản tin dự bao bao Yagi có the mạnh len cap
    14"); not one written with care that names "Việt Nam" or "Long Thành" (a plain "Nam", "Long"),
    nor an English question."""
    words = [w for w in _WORD.findall(question) if w.isalpha()]
    plain = 0
    for w in words:
        if has_diacritics(w):
            continue
        best = _syllables().get(w.lower())
        if best and best[0][0] != w.lower():
            plain += 1
    if not has_diacritics(question):
        return plain >= 2
    return plain >= 2 and plain >= PLAIN_SHARE * len(words)  # partly: a word or two may be plain on purpose


@lru_cache(maxsize=1)
def _syllables() -> dict[str, list[tuple[str, float]]]:
    """Folded syllable → its written forms with their Zipf frequency, most frequent first."""
    from wordfreq import get_frequency_dict

    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for word, freq in get_frequency_dict("vi").items():
        if " " in word or not word.isalpha():
            continue
        out[fold(word)].append((word, 9.0 + math.log10(freq)))
    for forms in out.values():
        forms.sort(key=lambda x: -x[1])
    return dict(out)


@lru_cache(maxsize=1)
def _compounds() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Folded compound (2–4 syllables) → its written forms, from pyvi's word list and
    :data:`QUESTION_WORDS` ("tac gia" → "tác gia", "tác giả"). Only the question words without pyvi."""
    try:
        from importlib.resources import files

        lines = files("pyvi").joinpath("models/words.txt").read_text(encoding="utf-8").splitlines()
    except Exception:  # pyvi missing: the archive and the syllable list still restore
        lines = []
    out: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for line in lines + QUESTION_WORDS:
        form = line.strip().lower()
        parts = form.split()
        if 2 <= len(parts) <= MAX_RUN and all(p.isalpha() for p in parts):
            out[tuple(fold(p) for p in parts)].add(form)
    return {k: tuple(sorted(v)) for k, v in out.items()}


_ALNUM = re.compile(r"[^\W_]")


def _wanted(text: str, wanted: set[str]) -> list[tuple[str, str, bool, bool]]:
    """The words of ``text`` whose folded form is in ``wanted``, in order, each as (word, folded
    word, follows the previous one found directly, starts a sentence). The text is folded once
    (folding keeps an NFC text's length) and searched for those words only."""
    if not text or not wanted:
        return []
    folded = fold(text)
    if len(folded) != len(text):  # not NFC: word by word
        folded = "".join(fold(ch) or " " for ch in text)
        if len(folded) != len(text):
            return []
    pattern = _wanted_pattern(frozenset(wanted))
    out = []
    last_end = None
    for m in pattern.finditer(folded):
        start, end = m.span()
        j = start - 1
        while j >= 0 and not text[j].isalnum():
            j -= 1
        gap = text[j + 1:start]
        starts = j < 0 or bool(_SENTENCE_END.search(gap))
        adjacent = last_end is not None and not _ALNUM.search(text, last_end, start)
        out.append((text[start:end], m.group(), adjacent, starts))
        last_end = end
    return out


@lru_cache(maxsize=256)
def _wanted_pattern(wanted: frozenset[str]) -> re.Pattern:
    words = sorted(wanted, key=len, reverse=True)
    return re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(w) for w in words) + r")(?![^\W_])")


def _pairs(texts: Iterable[str], wanted: set[str]) -> tuple[Counter, dict[str, Counter]]:
    """Counts of adjacent written words in ``texts`` (lower case), and each folded word's written
    forms with their case (``{"da": {"Đà": 3, "đã": 40}}``); only words whose folded form is in
    ``wanted`` (the question's) are kept."""
    pairs: Counter = Counter()
    forms: dict[str, Counter] = defaultdict(Counter)
    for text in texts:
        prev = None
        for w, key, adjacent, _ in _wanted(text or "", wanted):
            forms[key][w] += 1
            low = w.lower()
            if prev is not None and adjacent:
                pairs[(prev, low)] += 1
            prev = low
    return pairs, forms


def restore_diacritics(question: str, texts: Iterable[str] = ()) -> str:
    """The question with its diacritics restored, using ``texts`` (passages found for it, their
    titles) as the archive's wording. Returns the question unchanged when nothing is restored.

    A written syllable scores :data:`SYLLABLE_WEIGHT` × its Zipf frequency, plus
    :data:`ARCHIVE_SYLLABLE` × log(1 + the archive's count); a compound of the word list
    :data:`COMPOUND` per joint on top of its syllables; two adjacent written words
    :data:`ARCHIVE_PAIR` × log(1 + times the archive writes them side by side). The best
    cut and forms of the whole question win (dynamic programming; the state is the last written
    syllable)."""
    spans = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(question)]
    if not spans:
        return question
    typed = [s[2] for s in spans]
    # a code, a number or an acronym stays as typed ("VN5001", "GDP", "THPT")
    # (and so is a word with capitals inside, "BSkyB", "VinBrain"; a word typed with its marks is
    # as the user wrote it)
    fixed = [not t.isalpha() or (len(t) > 1 and t.isupper()) or any(c.isupper() for c in t[1:]) for t in typed]
    marked = [has_diacritics(t) for t in typed]
    folded = [fold(t) for t in typed]
    pairs, forms = _pairs(texts, set(folded))
    syl = _syllables()
    compounds = _compounds()

    cands: list[list[tuple[str, float]]] = []
    for t, fx, key in zip(typed, fixed, folded):
        if fx or key != t.lower():
            cands.append([(t.lower(), 0.0)])
            continue
        scored = {w: SYLLABLE_WEIGHT * z for w, z in syl.get(key, [])}
        seen: Counter = Counter()
        for w, c in forms.get(key, Counter()).items():
            seen[w.lower()] += c
        for w, c in seen.items():
            scored[w] = scored.get(w, 0.0) + ARCHIVE_SYLLABLE * math.log1p(c)
        cands.append(sorted(scored.items(), key=lambda x: -x[1]) or [(t.lower(), 0.0)])

    cand_scores = [dict(c) for c in cands]

    def unigram(i: int, w: str) -> float:
        return cand_scores[i].get(w, SYLLABLE_WEIGHT * next((z for f, z in syl.get(folded[i], []) if f == w), 0.0))

    def pair(a: str, b: str) -> float:
        return ARCHIVE_PAIR * math.log1p(pairs.get((a, b), 0))

    # segmentation into words (a compound of the word list, or one syllable), each word's forms
    # chosen in context: state = the last written syllable
    n_tok = len(typed)
    best: list[dict[str, tuple[float, int, str | None, tuple[str, ...]]]] = [{"": (0.0, -1, None, ())}] + [{} for _ in typed]
    for i in range(n_tok):
        if not best[i]:
            continue
        options: list[tuple[int, tuple[str, ...], float]] = [(1, (w,), s) for w, s in cands[i]]
        for n in range(2, MAX_RUN + 1):
            if i + n > n_tok or any(fixed[i:i + n]):
                break
            for form in compounds.get(tuple(folded[i:i + n]), ()):
                words = tuple(form.split())
                if any(marked[i + k] and tone_key(w) != tone_key(typed[i + k]) for k, w in enumerate(words)):
                    continue  # the user wrote this word with other marks
                inner = sum(unigram(i + k, w) for k, w in enumerate(words))
                inner += sum(pair(x, y) for x, y in zip(words, words[1:]))
                bonus = COMPOUND + (QUESTION_WORD if form in _QUESTION_FORMS else 0.0)
                options.append((n, words, inner + bonus * (n - 1)))
        for prev, (sc, _, _, _) in best[i].items():
            for n, words, s in options:
                total = sc + s + (pair(prev, words[0]) if prev else 0.0)
                slot = best[i + n].get(words[-1])
                if slot is None or total > slot[0]:
                    best[i + n][words[-1]] = (total, i, prev, words)
    if not best[n_tok]:
        return question
    chosen: list[str] = []
    j, last_form = n_tok, max(best[n_tok], key=lambda f: best[n_tok][f][0])
    while j > 0:
        _, i, prev, words = best[j][last_form]
        chosen[:0] = list(words)
        j, last_form = i, prev

    out, last = [], 0
    for i, ((start, end, t), w) in enumerate(zip(spans, chosen)):
        w = _archive_spelling(w, forms.get(folded[i], Counter()))
        if fixed[i] or marked[i]:
            w = t
        elif t[:1].isupper():
            w = w[:1].upper() + w[1:]
        out.append(question[last:start])
        out.append(w)
        last = end
    out.append(question[last:])
    return "".join(out)


# two spellings of one syllable: the tone mark on the first or the second vowel ("hóa" / "hoá",
# "thủy" / "thuỷ"); the archive's own spelling is kept
_TONE_PLACES = {a: b for a, b in zip(
    "oà oá oả oã oạ oè oé oẻ oẽ oẹ uỳ uý uỷ uỹ uỵ".split(), "òa óa ỏa õa ọa òe óe ỏe õe ọe ùy úy ủy ũy ụy".split())}
_TONE_PLACE = re.compile("|".join(_TONE_PLACES))


def tone_key(word: str) -> str:
    """One spelling for the two places of a tone mark ("hoá" → "hóa"), lower case."""
    return _TONE_PLACE.sub(lambda m: _TONE_PLACES[m.group()], word.lower())


def _archive_spelling(word: str, forms: Counter) -> str:
    """``word`` spelt as the archive spells it most often, when it spells it otherwise ("hoá" → "hóa")."""
    key = tone_key(word)
    same = Counter()
    for f, c in forms.items():
        if tone_key(f) == key:
            same[f.lower()] += c
    return max(same, key=lambda f: same[f]) if same and word not in same else word


# written with a capital in English whatever the archive says ("may" is left: "how many may …")
_ENGLISH_PROPER = frozenset("""january february march april june july august september october november december
monday tuesday wednesday thursday friday saturday sunday""".split())


@lru_cache(maxsize=4096)
def _common(word: str) -> bool:
    """A common word in English or Vietnamese ("long", "tốt", "pháp"): alone, no sign of a name."""
    from wordfreq import zipf_frequency

    return max(zipf_frequency(word, "en"), zipf_frequency(word, "vi")) >= COMMON_ZIPF


@lru_cache(maxsize=4096)
def _rare(word: str) -> bool:
    """Rare in English and in Vietnamese alike (a name, a brand, a code)."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en") < RARE_ZIPF and zipf_frequency(word, "vi") < RARE_ZIPF


# a sentence's first word is capitalised whatever it is: not counted for case (what lies between
# two words ends a sentence)
_SENTENCE_END = re.compile(r"[.!?…:\n]")


def _case_runs(texts: Iterable[str], wanted: set[str]) -> dict[tuple[str, ...], Counter]:
    """Folded run of 1–3 words → Counter of (its words in lower case, their case pattern: "T"
    capitalised, "U" all capitals, "l" otherwise) in ``texts``; runs that start a sentence are
    left out, and so are runs of words whose folded form is not in ``wanted`` (the question's)."""
    runs: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for text in texts:
        found = _wanted(text or "", wanted)
        for i, (_, _, _, starts) in enumerate(found):
            if starts:
                continue
            for n in range(1, 4):
                if i + n > len(found) or (n > 1 and not found[i + n - 1][2]):
                    break
                part = found[i:i + n]
                runs[tuple(f for _, f, _, _ in part)][(tuple(w.lower() for w, _, _, _ in part),
                                                       tuple(_pattern(w) for w, _, _, _ in part))] += 1
    return runs


def _pattern(word: str) -> str:
    if len(word) > 1 and word.isupper():
        return "U"
    return "T" if word[:1].isupper() else "l"


def lacks_capitals(question: str) -> bool:
    """Typed without capitals (beyond its first letter): "what did le cong thanh say", "bão yagi"."""
    words = _WORD.findall(question)
    return len(words) >= 2 and not any(c.isupper() for w in words[1:] for c in w)


def restore_capitals(question: str, texts: Iterable[str] = (), names: Iterable[str] = (),
                     other_texts: Iterable[str] = (), *, rare_names: bool = True) -> str:
    """The names of a question typed in lower case, capitalised:

    - as the archive writes them: a run of one to three words (longest first) that ``texts`` (the
      passages found) write with capitals at least :data:`NAME_CASE` of the time (twice or more,
      not counting a sentence's first word), or one of ``names`` (outlets: names whatever their
      count): "le cong thanh" → "Le Cong Thanh", "sea games" → "SEA Games", "thanh nien" → "Thanh Nien";
      passages in the other language (``other_texts``) count for runs of two words or more only
      (an English "long" or "an" is not the "Long" of "Long Thành" or the "An" of "Long An");
    - a single word counts only when it is not a common word (Zipf below :data:`COMMON_ZIPF` in
      both languages: "Nẵng", "Amazon", not "tốt" or "pháp"), and a longer run the archive writes
      in lower case keeps its words so ("giải pháp" is not "Pháp");
    - with ``rare_names``, a word of four letters or more that is rare in English and in
      Vietnamese alike (wordfreq Zipf below :data:`RARE_ZIPF`) is a name too, found or not
      ("vinbrain" → "Vinbrain"), so the check that refuses a question naming what no article
      mentions sees it. The caller turns it off when no passage in the question's language was
      found: an English "stators" over Vietnamese text ("xtato") is a word, not a name;
    - English month and weekday names ("october 2020", "september 7": read as dates then),
      but "may".

    The question's first letter is capitalised too, as in a question typed with care (the
    encoder tells them apart). Only words typed in lower case change; the letters are the user's."""
    wanted = {fold(w) for w in _WORD.findall(question)}
    runs = _case_runs(texts, wanted)
    for key, found in _case_runs(other_texts, wanted).items():
        if len(key) >= 2:
            runs[key].update(found)
    for name in names:  # a known name counts as written twice
        words = _WORD.findall(name or "")
        for i in range(len(words)):
            for n in range(1, 4):
                if i + n <= len(words):
                    part = words[i:i + n]
                    if any(_pattern(w) != "l" for w in part):
                        runs[tuple(fold(w) for w in part)][(tuple(w.lower() for w in part), tuple(_pattern(w) for w in part))] += 2
    spans = list(_WORD.finditer(question))
    typed = [m.group() for m in spans]
    folded = [fold(w) for w in typed]
    out = list(typed)
    decided = [0] * len(typed)  # the length of the run that decided a word's case (0: none)
    # runs of the question, longest first: a run the archive writes with capitals gives them to its
    # words ("sân bay long thành" → "sân bay Long Thành"); a longer run the archive writes in lower
    # case keeps its words so ("giải pháp" is not "Pháp"); a common word alone says nothing
    for n in (3, 2, 1):
        caps: dict[int, str] = {}
        lower: set[int] = set()
        for i in range(len(typed) - n + 1):
            found = runs.get(tuple(folded[i:i + n]))
            if not found or (n == 1 and _common(typed[i].lower())):
                continue
            # a word typed with diacritics matches only itself ("viết" is not "Việt")
            same: Counter = Counter()
            for (words, pattern), c in found.items():
                if all(words[k] == typed[i + k].lower() or not has_diacritics(typed[i + k]) for k in range(n)):
                    same[pattern] += c
            total = sum(same.values())
            if not total:
                continue
            top, count = same.most_common(1)[0]
            if total >= 2 and count / total >= NAME_CASE and any(p != "l" for p in top):
                for k, p in enumerate(top):
                    if p == "l":
                        lower.add(i + k)
                    else:
                        caps.setdefault(i + k, p)
            elif n >= 2:
                lower.update(i + k for k in range(n) if any(p[k] == "l" for p in same))
        # runs of one length decide together; lower case wins a tie ("giải pháp" over "Pháp có")
        for i in range(len(typed)):
            if decided[i]:
                continue
            if i in lower:
                decided[i] = n
            elif i in caps:
                decided[i] = n
                w = out[i]
                if w.islower():
                    out[i] = w.upper() if caps[i] == "U" else w[:1].upper() + w[1:]
    for i, w in enumerate(out):
        if w.islower() and (w in _ENGLISH_PROPER or (rare_names and not decided[i] and w.isalpha() and len(w) >= 4
                                                     and _rare(w))):
            out[i] = w[:1].upper() + w[1:]
    if out and out[0][:1].islower() and question[:spans[0].start()].strip() == "":
        out[0] = out[0][:1].upper() + out[0][1:]  # a question starts with a capital, as written ones do
    pieces, last = [], 0
    for m, w in zip(spans, out):
        pieces.append(question[last:m.start()])
        pieces.append(w)
        last = m.end()
    pieces.append(question[last:])
    return "".join(pieces)
