"""A follow-up question made standalone without a model (the rules the chain falls back to).

A follow-up leans on the conversation in three ways, and each is carried into the query that
retrieval and the answer checks read:

- **a pronoun or a short question** ("What did he propose?", "Nó làm sập bao nhiêu nhà?"): the
  most recent name of the conversation is put in front (``Bão Noru: Nó làm sập …``);
- **a time that only the conversation fixes** ("the year before", "năm trước đó", "that
  quarter", "quý đó"): it is made absolute against the year or quarter the conversation last
  named ("năm trước đó" after a question on 2025 → "năm 2024"), never against today; a
  follow-up that names no time of its own and starts like one ("Còn …", "And …", "What
  about …"), or leans on the conversation for its subject (a pronoun, or a short question
  naming nothing: "Which teams took part?"), keeps the conversation's time;
- **an ellipsis** ("Thế năm trước đó thì có bao nhiêu?": nothing is said of *what* is counted):
  the previous question is asked again with the follow-up's time in place of its own;
- **another subject** ("Còn bão Yagi thì sao?", "What about Da Nang?": a continuation word and a
  name, nothing else): the previous question is asked again about it, the name put where that
  question named its subject (the name sharing a word with the new one, else its first) or its
  pronoun stood.

Nothing here knows an event or a name: only calendar words, pronouns and function words.
"""

from __future__ import annotations

import re
from functools import lru_cache

from qa.constraints import question_constraints
from qa.text import fold

PRONOUN = re.compile(r"\b(he|she|him|his|her|they|them|their|it|this|that|those|these|ông ấy|bà ấy|anh ấy|chị ấy|họ|"
                     r"ông|bà|nó|người này|điều đó|việc này)\b", re.IGNORECASE)
_ASK_WORDS = {"what", "who", "which", "when", "where", "why", "how", "the", "ai", "theo", "according", "did", "does", "is",
              "was", "and", "but", "in", "on", "at"}
_QUOTES = "\"'“”‘’"
_PUNCT = ".,;:!?()[]" + _QUOTES

# times fixed by the conversation, not by today: (pattern, unit, offset)
_ANCHORED: list[tuple[re.Pattern, str, int]] = [
    (re.compile(r"(?i)\bnăm\s+(?:liền\s+)?trước\s+(?:đó|nữa)\b|\bthe\s+(?:year|season)\s+before(?:\s+(?:that|it))?\b|"
                r"\bthe\s+(?:previous|prior|preceding)\s+(?:year|season)\b|\ba\s+year\s+(?:earlier|before)\b"), "year", -1),
    (re.compile(r"(?i)\bnăm\s+(?:sau\s+đó|kế\s+tiếp|tiếp\s+theo|liền\s+sau)\b|\bthe\s+(?:following|next|subsequent)\s+year\b|"
                r"\bthe\s+year\s+after(?:\s+(?:that|it))?\b|\ba\s+year\s+later\b"), "year", 1),
    (re.compile(r"(?i)\bnăm\s+(?:đó|ấy)\b|\bcùng\s+năm\b|\b(?:that|the\s+same)\s+year\b"), "year", 0),
    (re.compile(r"(?i)\bquý\s+(?:liền\s+)?trước\s+đó\b|\bthe\s+quarter\s+before(?:\s+(?:that|it))?\b|"
                r"\bthe\s+(?:previous|prior|preceding)\s+quarter\b"), "quarter", -1),
    (re.compile(r"(?i)\bquý\s+(?:sau\s+đó|kế\s+tiếp|tiếp\s+theo)\b|\bthe\s+(?:following|next)\s+quarter\b"), "quarter", 1),
    (re.compile(r"(?i)\bquý\s+(?:đó|ấy)\b|\bcùng\s+quý\b|\b(?:that|the\s+same)\s+quarter\b"), "quarter", 0),
]
# how a follow-up starts when it changes one thing of the previous question ("Còn xuất khẩu?")
_CONTINUES = re.compile(r"(?i)^\s*(còn|thế còn|thế|vậy còn|vậy|and|and what about|what about|how about|also|then)\b")
# words that say nothing of what is asked (besides the keyword index's stopwords)
_FILLER = {
    "the", "and", "what", "about", "how", "many", "much", "then", "that", "those", "these", "this", "it", "there",
    "year", "years", "quarter", "before", "after", "previous", "prior", "following", "next", "same", "earlier",
    "later", "also", "number", "figure", "one", "ones", "did", "does", "do", "was", "were", "is", "are", "be", "thi",
    "con", "co", "vay", "nay", "kia", "ay", "bao", "nhieu", "may", "nao", "gi", "sao", "ra", "nhu", "nam", "quy",
    "truoc", "sau", "nua", "lien", "ke", "tiep", "theo", "cung", "a", "ha", "nhi", "la", "duoc", "bi", "khi", "luc",
    "so", "luong",
}


def _name_runs(text: str) -> list[str]:
    """Runs of capitalised words, a number may end one ("SEA Games 32"); punctuation ends a run."""
    runs: list[str] = []
    cur: list[str] = []
    for m in re.finditer(r"\S+", text):
        raw = m.group()
        tok = raw.strip(_PUNCT)
        if tok[:1].isupper() or (cur and tok.isdigit()):
            cur.append(tok)
        elif cur:
            runs.append(" ".join(cur))
            cur = []
        if cur and raw.rstrip(_QUOTES)[-1:] in ".,;:!?)":
            runs.append(" ".join(cur))
            cur = []
    if cur:
        runs.append(" ".join(cur))
    return runs


def _trim(run: str, pronouns: bool = False) -> list[str]:
    """A name run's words without the question words (and ``pronouns``) it starts with."""
    words = run.split()
    while words and (fold(words[0]).lower() in _ASK_WORDS or (pronouns and PRONOUN.fullmatch(words[0]))):
        words = words[1:]
    return words


def history_entities(history: list[dict]) -> list[str]:
    """Names (runs of ≥2 capitalised words) in the earlier turns, most recent first, the user's
    before the answers' (a follow-up's "it" is what the user asked about, not the last place an
    answer named)."""
    out: list[str] = []
    turns = list(reversed(history or []))
    # a name the answers spell as the user did but with its diacritics ("Dang Quang Tan" asked,
    # "Đặng Quang Tấn" answered) is given as the articles write it
    spelt = {fold(n).lower(): n for t in reversed(turns) if t.get("role") != "user"
             for n in _name_runs(str(t.get("content", "")))}
    for turn in [t for t in turns if t.get("role") == "user"] + [t for t in turns if t.get("role") != "user"]:
        for name in _name_runs(str(turn.get("content", ""))):
            words = _trim(name)
            name = spelt.get(fold(" ".join(words)).lower(), " ".join(words))
            if len(words) >= 2 and name not in out:
                out.append(name)
    return out


def keeps_referent(question: str, rewrite: str, history: list[dict]) -> bool:
    """A follow-up with a pronoun needs one of the conversation's names in its rewrite."""
    ents = history_entities(history)
    if not ents or not PRONOUN.search(question):
        return True
    folded = fold(rewrite)
    return any(fold(e) in folded for e in ents)


def _previous_questions(history: list[dict]) -> list[tuple[str, list[dict]]]:
    """The user's earlier turns, most recent first, each with the history before it."""
    return [(str(t.get("content", "")), history[:i]) for i, t in reversed(list(enumerate(history or [])))
            if t.get("role") == "user" and str(t.get("content", "")).strip()]


def _anchor(history: list[dict]) -> tuple[int | None, int | None]:
    """The year and quarter the conversation last named: the user's turns first (an answer also
    names the years it compares with), then the assistant's. One year only; else none."""
    turns = [t for t in reversed(history or []) if t.get("role") == "user"] + \
            [t for t in reversed(history or []) if t.get("role") != "user"]
    for t in turns:
        c = question_constraints(str(t.get("content", "")))
        if len(c.years) == 1:
            quarter = int(next(iter(c.quarters))[1]) if len(c.quarters) == 1 else None
            return int(next(iter(c.years))), quarter
    return None, None


def _render(unit: str, year: int, quarter: int | None, language: str) -> str:
    if unit == "quarter" and quarter:
        return f"quý {quarter}/{year}" if language == "vi" else f"Q{quarter} {year}"
    return f"năm {year}" if language == "vi" else f"{year}"


def anchor_times(question: str, history: list[dict], language: str) -> str:
    """The question with its conversation-relative times made absolute (see the module doc)."""
    year, quarter = _anchor(history)
    if year is None:
        return question
    out = question
    for pattern, unit, offset in _ANCHORED:
        def rep(m: re.Match, unit=unit, offset=offset) -> str:
            if unit == "year":
                return _render("year", year + offset, None, language)
            if quarter is None:  # "that quarter" with no quarter named: leave it
                return m.group(0)
            q, y = quarter + offset, year
            if q < 1:
                q, y = 4, y - 1
            elif q > 4:
                q, y = 1, y + 1
            return _render("quarter", y, q, language)
        out = pattern.sub(rep, out)
    return out


def says_what(question: str) -> bool:
    """Does the question name what it asks about (a word beyond question, function and time words)?"""
    from qa.index.keyword import STOPWORDS

    words = re.findall(r"[^\W\d_]+", fold(question).lower())
    return any(len(w) >= 2 and w not in STOPWORDS and w not in _FILLER for w in words)


def _times_of(text: str, language: str) -> str:
    """The year / quarter / period a question names, written out to carry it into a follow-up."""
    c = question_constraints(text)
    if len(c.years) != 1:
        return ""
    year = next(iter(c.years))
    if len(c.quarters) == 1:
        return _render("quarter", int(year), int(next(iter(c.quarters))[1]), language)
    return _render("year", int(year), None, language)


def _swap_time(previous: str, time_text: str, language: str) -> str:
    """The previous question asked again for the follow-up's year (or quarter)."""
    asked = question_constraints(time_text)
    before = question_constraints(previous)
    if len(asked.years) != 1 or len(before.years) != 1:
        return f"{previous} {time_text}".strip()
    new_year = next(iter(asked.years))
    out = re.sub(rf"(?<![\d.,/]){next(iter(before.years))}(?![\d])", new_year, previous)
    if len(asked.quarters) == 1 and len(before.quarters) == 1:
        qa_, qb = next(iter(asked.quarters))[1], next(iter(before.quarters))[1]
        roman = {"1": "I", "2": "II", "3": "III", "4": "IV"}
        out = re.sub(rf"\b(quý|Q)\s*(?:{qb}|{roman[qb]})\b", lambda m: f"{m.group(1)} {qa_}" if m.group(1) == "quý" else f"Q{qa_}", out)
    return out


# what may close a subject-swap follow-up ("… thì sao?", "… then?", "… too?")
_SWAP_TAIL = re.compile(r"(?i)\s*(thì sao|thì thế nào|thì như thế nào|thế nào|ra sao|nữa|thì|then|too|as well)?\s*[?.!]*\s*$")


@lru_cache(maxsize=256)
def _own_names(question: str) -> tuple[str, ...]:
    """The names a question gives itself (its capitalised runs, question words aside); computed
    once per text (a follow-up's rewrite and :func:`condense` both read it)."""
    return tuple(" ".join(words) for words in (_trim(run, pronouns=True) for run in _name_runs(question)) if words)


def _new_subject(question: str) -> str | None:
    """The name a "Còn X thì sao?" / "What about X?" follow-up moves the question to, or None when
    it says more than a name (then it is a question of its own)."""
    m = _CONTINUES.match(question)
    if not m:
        return None
    rest = _SWAP_TAIL.sub("", question[m.end():]).strip(" ,:" + _QUOTES)
    words = rest.split()
    if not words or len(words) > 5 or question_constraints(rest).years:
        return None
    runs = _name_runs(rest)
    # a name, maybe after a lower-case kind word ("bão Yagi", "tỉnh Quảng Nam", "the SEA Games 32")
    if not runs or len(" ".join(runs).split()) < len(words) - 2:
        return None
    return rest


def _swap_subject(previous: str, subject: str) -> str | None:
    """The previous question about ``subject``: in place of the name it asked about (the one
    sharing a word with ``subject``, else its first) or of its pronoun; None when it has neither."""
    runs = _own_names(previous)
    new_words = {fold(w).lower() for w in subject.split()}
    if runs:
        target = next((r for r in runs if new_words & {fold(w).lower() for w in r.split()}), runs[0])
        at = previous.index(target)
        # a lower-case kind word before the name goes too ("bão Noru" → "bão Yagi", not "bão bão Yagi")
        kind = re.search(r"(\w+)\s+$", previous[:at])
        start = kind.start() if kind and fold(kind.group(1)).lower() in new_words else at
        return previous[:start] + subject + previous[at + len(target):]
    m = PRONOUN.search(previous)
    if m:
        return previous[:m.start()] + subject + previous[m.end():]
    return None


def _rewrite(question: str, history: list[dict], language: str) -> tuple[str, bool]:
    """The follow-up with the conversation's time, and whether it was an ellipsis (then the text
    is the previous question asked again)."""
    asked = anchor_times(question, history, language)
    previous = _previous_questions(history)
    if previous and not says_what(asked):
        prev_q, prev_history = previous[0]
        prev_q = standalone(prev_q, prev_history, language)
        own_time = _times_of(asked, language)
        return (_swap_time(prev_q, own_time, language) if own_time else prev_q), True
    subject = _new_subject(asked) if previous else None
    if subject:
        prev_q, prev_history = previous[0]
        swapped = _swap_subject(standalone(prev_q, prev_history, language), subject)
        if swapped:
            return swapped, True
    leans = _CONTINUES.search(question) or (not _own_names(question) and (PRONOUN.search(question) or len(question.split()) <= 6))
    if previous and leans and not question_constraints(asked).years:
        carried = _times_of(previous[0][0], language)
        if carried:
            asked = f"{asked} ({carried})"
    return asked, False


def standalone(question: str, history: list[dict], language: str = "en") -> str:
    """The follow-up as the question the answer addresses: its conversation-relative times made
    absolute, the conversation's time carried, an ellipsis replaced by the previous question
    (see the module doc). Names are not added: the answer is chosen on the user's own words."""
    if not history:
        return question
    return _rewrite(question, history, language)[0]


def condense(question: str, history: list[dict], language: str = "en") -> str:
    """Deterministic standalone query for retrieval: :func:`standalone`, and the conversation's
    most recent name in front of a follow-up with a pronoun or of a short one."""
    if not history:
        return question
    out, ellipsis = _rewrite(question, history, language)
    ents = history_entities(history)
    if not ellipsis and ents and (PRONOUN.search(question) or (len(question.split()) <= 6 and not _own_names(question))):
        return f"{ents[0]}: {out}"
    return out
