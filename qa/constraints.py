"""What a question pins down (years, quarters, months, dates, editions and other numbers), and
how well a passage agrees with it, in either language.

News archives hold look-alike events: a GDP report every quarter, a SEA Games every two years, an
exam every summer. The question's constraints pick one of them, and a passage about another year
can be closer in wording than the right one. Both sides go through :func:`qa.canonical.canonicalise`
first, so ``31st`` = ``lần thứ 31`` = ``thứ XXXI``, ``Q3`` = ``quý III`` = ``third quarter`` and
``14/12/2021`` = ``December 14, 2021`` compare equal.

A passage's context is its own text, its article's title, and (when neither names a year) its
article's publication year: the year an undated "this quarter" refers to.

:func:`agreement` scores a passage in [-1, 1]: each constraint counts +1 when the passage states
it; a year, quarter or month counts -1 when the passage states others of its kind but not it (a
passage about 2023 when 2024 is asked); a number the passage does not state counts 0. The score
is the mean over the question's constraints, 0 when the question names none. The retriever adds
it to the fused score with a weight chosen by cross-validation (``qa eval tune``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from qa.canonical import canonicalise

_DATE = re.compile(r"(?<![\w/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/])")
_MONTH = re.compile(r"(?<![\w/])(\d{1,2})/(\d{4})(?![\d/])")
_PERIOD = re.compile(r"\b(\d{1,2})M\b")  # the first N months of a year (qa.canonical: "9 tháng đầu năm" = "first nine months")
_DAY = re.compile(r"(?<![\w/.,])(\d{1,2})/(\d{1,2})(?![\d/]|[.,]\d)")  # a date without its year: "15/5"
_QUARTER = re.compile(r"\bQ([1-4])(?:/((?:19|20)\d{2})(?!\d))?\b")
# "so với cùng kỳ 2018", "the same period of 2022": a year-on-year figure, about the year after
_SAME_PERIOD = re.compile(r"(?i)\b(?:cùng\s+kỳ|cùng\s+giai\s+đoạn|(?:the\s+)?same\s+period)\s+(?:năm\s+|of\s+|in\s+|last\s+year,?\s+)?((?:19|20)\d{2})(?![\d/]|[.,]\d)")
# "so với năm 2022", "cao hơn năm 2022", "compared with 2022", "than in 2022", "so với kỳ thi
# tốt nghiệp THPT 2021" (up to five words between): the year the text
# compares with is not the time it is about (a 2023 exam report "so với năm 2022" is no report of
# 2022); "so với cùng kỳ 2018" also states the year after (above)
_COMPARED = re.compile(r"(?i)(?:\bso\s+với|\bhơn|\bcompared\s+(?:with|to)|\bthan(?:\s+in)?)"
                       # up to five words between: "so với kỳ thi tốt nghiệp THPT 2021", "than the 2021 exam"
                       r"(?:\s+(?!(?:19|20)\d{2}\b)[^\W\d]+){0,5}?\s+((?:19|20)\d{2})(?![\d/]|[.,]\d)")
_YEAR = re.compile(r"(?<![\d.,/])((?:19|20)\d{2})(?![\d/]|[.,]\d)")
_NUMBER = re.compile(r"(?<![\d.,/])(\d{1,3})(?![\d]|[.,]\d)")


@dataclass
class Constraints:
    years: set[str] = field(default_factory=set)
    quarters: set[str] = field(default_factory=set)
    months: set[str] = field(default_factory=set)  # "m/yyyy"
    dates: set[str] = field(default_factory=set)  # "d/m/yyyy"
    days: set[str] = field(default_factory=set)  # "d/m": a date written without its year (and the day of each date)
    periods: set[str] = field(default_factory=set)  # "9M": the first nine months of a year
    numbers: set[str] = field(default_factory=set)  # editions, counts, other small numbers

    def __bool__(self) -> bool:
        return bool(self.years or self.quarters or self.months or self.dates or self.days or self.periods or self.numbers)

    def count(self) -> int:
        return (len(self.years) + len(self.quarters) + len(self.months) + len(self.dates) + len(self.days)
                + len(self.periods) + len(self.numbers))

    def as_dict(self) -> dict[str, list[str]]:
        return {k: sorted(v) for k, v in self.__dict__.items() if v}


def extract(text: str) -> Constraints:
    """The constraints a text states (a question, or a passage's context)."""
    c = Constraints()
    s = canonicalise(text or "")

    def take(pattern: re.Pattern, fn) -> None:
        nonlocal s

        def rep(m: re.Match) -> str:
            fn(m)
            return " "

        s = pattern.sub(rep, s)

    def on_date(m: re.Match) -> None:
        d, mo, y = int(m[1]), int(m[2]), m[3]
        if 1 <= d <= 31 and 1 <= mo <= 12:
            c.dates.add(f"{d}/{mo}/{y}")
            c.days.add(f"{d}/{mo}")
            c.months.add(f"{mo}/{y}")
            c.years.add(y)

    def on_month(m: re.Match) -> None:
        mo, y = int(m[1]), m[2]
        if 1 <= mo <= 12:
            c.months.add(f"{mo}/{y}")
            c.years.add(y)

    def on_day(m: re.Match) -> None:
        d, mo = int(m[1]), int(m[2])
        if 1 <= d <= 31 and 1 <= mo <= 12:
            c.days.add(f"{d}/{mo}")

    take(_DATE, on_date)
    take(_MONTH, on_month)
    take(_DAY, on_day)
    take(_PERIOD, lambda m: c.periods.add(f"{int(m[1])}M"))
    def on_quarter(m: re.Match) -> None:
        c.quarters.add(f"Q{m[1]}")
        if m[2]:
            c.years.add(m[2])  # "Q3/2024"

    take(_QUARTER, on_quarter)
    for m in _SAME_PERIOD.finditer(s):
        c.years.add(str(int(m[1]) + 1))  # "cùng kỳ 2018 tăng 6%" still names 2018 (below)
    take(_COMPARED, lambda m: None)  # the year compared with is not named as the text's own
    take(_YEAR, lambda m: c.years.add(m[1]))
    for m in _NUMBER.finditer(s):
        c.numbers.add(str(int(m[1])))
    return c


def question_constraints(question: str) -> Constraints:
    """The question's constraints. A month or date already implies its year: the year is not
    asked twice (a question about "12/2021" is not also scored on "2021" alone). Read once per
    question (the answer checks ask for them once per passage); each caller gets its own copy."""
    c = _question_constraints(question)
    return Constraints(**{k: set(v) for k, v in c.__dict__.items()})


@lru_cache(maxsize=1024)
def _question_constraints(question: str) -> Constraints:
    c = extract(question)
    implied = {m.split("/")[-1] for m in c.months}
    c.years -= implied
    c.months -= {d.split("/", 1)[1] for d in c.dates}
    c.days -= {d.rsplit("/", 1)[0] for d in c.dates}
    return c


_KINDS = ("years", "quarters", "months", "dates", "days", "periods", "numbers")


def encode(c: Constraints) -> str:
    """A compact form for chunk metadata (written at ingest): ``years=2023,2024;quarters=Q3``."""
    return ";".join(f"{k}={','.join(sorted(getattr(c, k)))}" for k in _KINDS if getattr(c, k))


def decode(s: str) -> Constraints:
    c = Constraints()
    for part in s.split(";"):
        k, _, v = part.partition("=")
        if k in _KINDS and v:
            getattr(c, k).update(v.split(","))
    return c


def stated(text: str, title: str = "") -> Constraints:
    """What a chunk states, with its article's title: stored at ingest (``facts`` in the chunk's
    metadata), so questions do not re-read every candidate."""
    return extract(f"{title}\n{text}" if title else text)


_PERIOD_SPAN = {f"Q{q}": (3 * q - 2, 3 * q) for q in range(1, 5)}  # first and last month


def undated_years(c: Constraints, published: str | None) -> set[str]:
    """The year a text's quarters and periods refer to when it names no year: the instance
    nearest its article's publication date. "The fourth quarter" in a September 2024 article is
    2024's (a forecast), in a January 2024 one 2023's (a report); "the first nine months" in
    October 2024 is 2024's; at equal distance, the past one. Empty when the text names a year,
    no quarter or period, or has no date."""
    if c.years or not (c.quarters or c.periods):
        return set()
    parts = str(published or "").split("-")
    if not (parts[0].isdigit() and len(parts[0]) == 4):
        return set()
    year = int(parts[0])
    month = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() and 1 <= int(parts[1]) <= 12 else 6
    at = year * 12 + month - 1
    spans = [_PERIOD_SPAN[q] for q in c.quarters if q in _PERIOD_SPAN]
    spans += [(1, int(p[:-1])) for p in c.periods if p[:-1].isdigit() and 1 <= int(p[:-1]) <= 12]
    out = set()
    for first, last in spans:
        def gap(y: int) -> int:
            lo, hi = y * 12 + first - 1, y * 12 + last - 1
            return 0 if lo <= at <= hi else min(abs(at - lo), abs(at - hi))

        out.add(str(min((year - 1, year, year + 1), key=lambda y: (gap(y), y))))  # a tie: the past one
    return out


def passage_context(text: str, title: str = "", published: str | None = None, facts: str | None = None, *,
                    always_published: bool = False) -> Constraints:
    """What a passage states, with its article's title as context; when neither names a year, the
    publication year stands in (a chunk saying "this quarter" is about its article's year; a
    quarter or period it names is the one nearest the publication date: :func:`undated_years`), and a
    date written without its year ("ngày 15.5", "Sept. 7") is taken in the publication year.
    ``facts``: the chunk's stored :func:`encode` form, when its index has one. ``always_published``:
    the publication year counts even when the passage names others (ranking: a 2024 report that
    compares with "cùng kỳ năm 2023" is still about 2024)."""
    c = decode(facts) if facts is not None else stated(text, title)
    year = (published or "").split("-")[0]
    if year.isdigit() and len(year) == 4:
        inferred = undated_years(c, published)  # "quý IV" in a January article: the year before
        if inferred:
            c.years |= inferred
        elif always_published or not c.years:
            c.years.add(year)
        known = {d.rsplit("/", 1)[0] for d in c.dates}
        for day in c.days - known:
            c.dates.add(f"{day}/{year}")
            c.months.add(f"{day.split('/')[1]}/{year}")
    return c


def agreement(asked: Constraints, passage: Constraints) -> float:
    """How well a passage agrees with the question's constraints, in [-1, 1] (0: nothing asked)."""
    n = asked.count()
    if not n:
        return 0.0
    total = 0.0
    for kind in ("years", "quarters", "months"):
        want, have = getattr(asked, kind), getattr(passage, kind)
        for v in want:
            total += 1.0 if v in have else (-1.0 if have else 0.0)
    for v in asked.dates:  # the day alone, when the passage gives no year for it, half counts
        total += 1.0 if v in passage.dates else (0.5 if v.rsplit("/", 1)[0] in passage.days else 0.0)
    for v in asked.days:  # "on September 7" (no year) against "7/9" or "7/9/2024"
        total += 1.0 if v in passage.days else 0.0
    for v in asked.periods:  # "the first nine months" against "9 tháng đầu năm"
        total += 1.0 if v in passage.periods else 0.0
    for v in asked.numbers:
        total += 1.0 if v in passage.numbers else 0.0
    return total / n


_MONTH_WORD = r"(january|february|march|april|may|june|july|august|september|october|november|december)"
# the question asks about a whole year; a quarter, some months or "so far this year" is not it
FULL_YEAR_Q = re.compile(r"(?i)\b(full[- ]year|whole (of|year)|entire year|(for )?the year as a whole|all of (19|20)\d\d|"
                          r"cả năm|toàn năm|trọn năm|suốt năm)\b")
PART_OF_YEAR = re.compile(
    r"(?i)\bQ[1-4]\b|\b\d{1,2}M\b|\b\d{1,2}\s*tháng\b|\btháng\s*\d{1,2}\b|\b\d{1,2}/(19|20)\d\d\b|\bH[12]\b|"
    r"\b(\d{1,2}|two|three|four|five|six|seven|eight|nine|ten|eleven)[- ]month\b|\bhalf[- ]year\b|"
    r"\b(first|last|past|previous|opening|final) (half|\w+ months|quarter|months)\b|\b(nửa đầu|nửa cuối|quý)\b|"
    r"\btừ đầu năm\b|\bđầu năm (đến|tới) nay\b|\bsince the (start|beginning) of\b|\bso far this year\b|"
    r"\byear[- ]to[- ]date\b|\bcùng (kỳ|kì)\b|\bsame period\b|"
    rf"\bin {_MONTH_WORD}\b|\b{_MONTH_WORD}\s*(-|–|—|to|through|until)\s*{_MONTH_WORD}\b|\btháng\s*\d{{1,2}}\s*(-|–|—|đến)\s*(tháng\s*)?\d{{1,2}}\b"
)


def asks_full_year(text: str) -> bool:
    """The text asks about (or states) a whole year ("the whole of 2022", "cả năm 2022")."""
    return bool(FULL_YEAR_Q.search(text))


@lru_cache(maxsize=1024)
def names_part_of_year(text: str) -> bool:
    """The text names part of a year (a quarter, "nine-month", "9 tháng đầu năm", "so far this
    year"); cached: a passage or title is read once, not once per sentence."""
    return bool(PART_OF_YEAR.search(canonicalise(text)))


def headline_conflict(asked: Constraints, title: str, published: str | None, full_year: bool = False,
                      part_of_year: bool = False) -> bool:
    """Does an article's headline (its title, and its publication date when the title names no
    year) say it is about another time than the question asks?

    - a year the question asks that the title does not name, when it names others; or, when
      it names none, a year after the article's publication (it cannot report on it) or more
      than one year before it (a year-old story is retold in January; an older one names its
      year);
    - a quarter or a period (the first nine months) the question asks, when the title names
      others of that kind;
    - ``full_year``: the question asks about a whole year, and (``part_of_year``) the title
      names part of one ("Q2", "nine-month", "9 tháng").

    Agreement is not rewarded: many articles of the asked year are about something else."""
    t = _title_constraints(title or "")
    pub = str(published or "")[:4]
    for kind in ("years", "quarters", "periods"):
        want, have = getattr(asked, kind), getattr(t, kind)
        if not want:
            continue
        if have:
            if not (want & have):
                return True
        elif kind == "years" and pub.isdigit():
            if all(int(y) > int(pub) or int(y) < int(pub) - 1 for y in want):
                return True
    return full_year and part_of_year


@lru_cache(maxsize=8192)
def _title_constraints(title: str) -> Constraints:
    """A title's constraints, read once (asked for every candidate of every question; not
    changed by the callers)."""
    return extract(title)
