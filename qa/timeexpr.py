"""Time words in a question, resolved against a date (today, or ``--as-of``).

A question about "last year", "tuần trước" or "the latest figures" means a period or an order
that only the date it is asked on fixes. :func:`resolve` finds such words (English and
Vietnamese) and says what they mean:

* **a year, quarter or month** ("last year", "năm ngoái", "this quarter", "tháng trước",
  "2 years ago") is rewritten into the absolute form ("in 2025", "năm 2025", "Q3 2026",
  "tháng 11/2026") in the query retrieval uses: the question's constraints
  (:mod:`qa.constraints`) then weigh it against each passage and its article's date, as they
  do for a year the question names itself ("năm 2021", "in 2023", "tháng 12/2021": those need no
  rewrite and are reported as they are);
* **days and weeks** ("yesterday", "hôm qua", "last week", "tuần trước", "past 10 days")
  become a publication-date filter (the period, plus a few days for the reports that follow
  it): news about last week is published last week, and no passage says "last week" in a way
  a constraint could match;
* **recency** ("latest", "most recent", "mới nhất", "gần đây") becomes a preference for newer
  articles among the relevant passages (:class:`qa.answer.retrieval.NewsRetriever`).

Nothing here knows any event: only calendar words.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field

_NUM_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
              "a": 1, "an": 1, "một": 1, "hai": 2, "ba": 3, "bốn": 4, "năm": 5, "sáu": 6, "bảy": 7, "tám": 8, "chín": 9, "mười": 10}
_N = r"(?P<n>\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|an?|một|hai|ba|bốn|sáu|bảy|tám|chín|mười)"
_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December"]


@dataclass
class TimeRef:
    """What a time expression of the question means."""

    expression: str  #: the words as written in the question
    unit: str  #: year | quarter | month | week | day | recent
    mode: str  #: constraint (rewritten into the query) | filter (publication dates) | recency
    start: dt.date | None = None
    end: dt.date | None = None
    absolute: str = ""  #: the rewrite ("năm 2025"), for constraint mode
    stated: bool = False  #: the question names the period itself (no rewrite needed)

    def as_json(self) -> dict:
        return {"expression": self.expression, "unit": self.unit, "mode": self.mode,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                **({"rewrite": self.absolute} if self.absolute else {}), "stated": self.stated}


@dataclass
class Resolution:
    query: str  #: the query with relative years/quarters/months made absolute
    refs: list[TimeRef] = field(default_factory=list)

    @property
    def since(self) -> dt.date | None:
        starts = [r.start for r in self.refs if r.mode == "filter" and r.start]
        return min(starts) if starts else None

    @property
    def until(self) -> dt.date | None:
        ends = [r.end for r in self.refs if r.mode == "filter" and r.end]
        return max(ends) if ends else None

    @property
    def recency(self) -> bool:
        return any(r.mode == "recency" for r in self.refs)

    def as_json(self) -> dict:
        return {"query": self.query, "refs": [r.as_json() for r in self.refs]}


def _n(s: str | None) -> int:
    if not s:
        return 1
    s = s.lower()
    return int(s) if s.isdigit() else _NUM_WORDS.get(s, 1)


def _year_span(y: int) -> tuple[dt.date, dt.date]:
    return dt.date(y, 1, 1), dt.date(y, 12, 31)


def _month_shift(d: dt.date, months: int) -> tuple[int, int]:
    k = d.year * 12 + (d.month - 1) + months
    return k // 12, k % 12 + 1


def _month_span(y: int, m: int) -> tuple[dt.date, dt.date]:
    return dt.date(y, m, 1), dt.date(y, m, calendar.monthrange(y, m)[1])


def _quarter_span(y: int, q: int) -> tuple[dt.date, dt.date]:
    return dt.date(y, 3 * q - 2, 1), _month_span(y, 3 * q)[1]


# (pattern, unit, offset sign or fixed offset): the offset is in units back from the as-of date
_RULES: list[tuple[re.Pattern, str, int | None]] = [
    # years
    (re.compile(rf"\b{_N}\s+years?\s+ago\b", re.I), "year", None),
    (re.compile(rf"(?:cách\s+đây\s+)?\b{_N}\s+năm\s+(?:trước|về\s+trước)\b", re.I), "year", None),
    (re.compile(r"\b(?:last|previous|past)\s+year(?:'s)?\b", re.I), "year", 1),
    # not "những năm qua" / "5 năm qua" (over the past years): a span, not last year
    (re.compile(r"(?<!những )(?<!nhiều )(?<!mấy )(?<!các )(?<!\d )\bnăm\s+(?:ngoái|trước(?!\s+(?:đó|nữa))|rồi|qua)\b", re.I), "year", 1),
    (re.compile(r"\bthis\s+year(?:'s)?\b|\bcurrent\s+year\b", re.I), "year", 0),
    (re.compile(r"\bnăm\s+nay\b", re.I), "year", 0),
    # quarters
    (re.compile(r"\b(?:last|previous|past)\s+quarter(?:'s)?\b", re.I), "quarter", 1),
    (re.compile(r"\bquý\s+(?:trước|vừa\s+qua|qua)\b", re.I), "quarter", 1),
    (re.compile(r"\bthis\s+quarter(?:'s)?\b|\bcurrent\s+quarter\b", re.I), "quarter", 0),
    (re.compile(r"\bquý\s+này\b", re.I), "quarter", 0),
    # months
    (re.compile(rf"\b{_N}\s+months?\s+ago\b", re.I), "month", None),
    (re.compile(rf"\b{_N}\s+tháng\s+(?:trước|về\s+trước)\b", re.I), "month", None),
    (re.compile(r"\b(?:last|previous|past)\s+month(?:'s)?\b", re.I), "month", 1),
    (re.compile(r"\btháng\s+(?:trước|vừa\s+qua|qua)\b", re.I), "month", 1),
    (re.compile(r"\bthis\s+month(?:'s)?\b", re.I), "month", 0),
    (re.compile(r"\btháng\s+này\b", re.I), "month", 0),
    # weeks (a filter)
    (re.compile(rf"\b(?:the\s+)?(?:last|past)\s+{_N}\s+weeks\b", re.I), "weeks", None),
    (re.compile(rf"\b{_N}\s+tuần\s+(?:qua|gần\s+đây|vừa\s+qua)\b", re.I), "weeks", None),
    (re.compile(r"\b(?:last|previous|past)\s+week(?:'s)?\b", re.I), "week", 1),
    (re.compile(r"\btuần\s+(?:trước|qua|vừa\s+qua|rồi)\b", re.I), "week", 1),
    (re.compile(r"\bthis\s+week(?:'s)?\b", re.I), "week", 0),
    (re.compile(r"\btuần\s+này\b", re.I), "week", 0),
    # days (a filter)
    (re.compile(rf"\b(?:the\s+)?(?:last|past)\s+{_N}\s+days\b", re.I), "days", None),
    (re.compile(rf"\b{_N}\s+ngày\s+(?:qua|gần\s+đây|vừa\s+qua)\b", re.I), "days", None),
    (re.compile(r"\byesterday(?:'s)?\b", re.I), "day", 1),
    (re.compile(r"\bhôm\s+qua\b", re.I), "day", 1),
    (re.compile(r"\btoday(?:'s)?\b", re.I), "day", 0),
    (re.compile(r"\bhôm\s+nay\b", re.I), "day", 0),
]
_RECENT = re.compile(
    r"\b(?:latest|most\s+recent(?:ly)?|newest|recent(?:ly)?|(?:the\s+)?last\s+time)\b|"
    r"\b(?:mới\s+nhất|gần\s+(?:đây|nhất)|mới\s+đây|vừa\s+qua|lần\s+gần\s+nhất)\b",
    re.I,
)
_STATED_YEAR = re.compile(r"(?<![\d/.,])(?:19|20)\d{2}(?![\d/]|[.,]\d)")
GRACE_DAYS = {"day": 2, "week": 7}  # reports that follow the period are still about it


def _absolute(unit: str, span: tuple[dt.date, dt.date], language: str) -> str:
    start = span[0]
    if unit == "year":
        return f"năm {start.year}" if language == "vi" else f"in {start.year}"
    if unit == "quarter":
        q = (start.month - 1) // 3 + 1
        return f"quý {q}/{start.year}" if language == "vi" else f"Q{q} {start.year}"
    return f"tháng {start.month}/{start.year}" if language == "vi" else f"{_MONTH_NAMES[start.month - 1]} {start.year}"


def resolve(question: str, as_of: dt.date | None = None, language: str = "en") -> Resolution:
    """The time expressions of ``question`` resolved against ``as_of`` (default: today)."""
    as_of = as_of or dt.date.today()
    refs: list[TimeRef] = []
    query = question
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    for pattern, unit, fixed in _RULES:
        for m in list(pattern.finditer(query)):
            if not free(m.start(), m.end()):
                continue
            n = fixed if fixed is not None else _n(m.groupdict().get("n"))
            expr = m.group(0)
            if unit in ("year", "quarter", "month"):
                if unit == "year":
                    span = _year_span(as_of.year - n)
                elif unit == "quarter":
                    y, mo = _month_shift(as_of, -3 * n)
                    span = _quarter_span(y, (mo - 1) // 3 + 1)
                else:
                    span = _month_span(*_month_shift(as_of, -n))
                absolute = _absolute(unit, span, language)
                before = query[max(0, m.start() - 6):m.start()].lower()
                if absolute.startswith("in ") and (expr.endswith("'s") or re.search(r"\b(?:in|at|the|of|for|during|since)\s+$", before)):
                    absolute = absolute[3:]  # "last year's conference" → "2025 conference", "in last year" → "in 2025"
                refs.append(TimeRef(expr.strip(), unit, "constraint", span[0], span[1], absolute))
                taken.append((m.start(), m.end()))
                continue
            if unit in ("weeks", "days"):
                days = n * (7 if unit == "weeks" else 1)
                start, end, base = as_of - dt.timedelta(days=days), as_of, unit[:-1]
            elif unit == "week":
                monday = as_of - dt.timedelta(days=as_of.weekday()) - dt.timedelta(weeks=n)
                start, end, base = monday, min(monday + dt.timedelta(days=6), as_of), "week"
            else:
                start = end = as_of - dt.timedelta(days=n)
                base = "day"
            until = min(end + dt.timedelta(days=GRACE_DAYS[base]), as_of) if n else as_of
            refs.append(TimeRef(expr.strip(), base, "filter", start, max(until, start)))
            taken.append((m.start(), m.end()))
    # rewrite right to left so offsets stay valid
    for ref, (a, b) in sorted(((r, span) for r, span in zip(refs, taken)), key=lambda x: -x[1][0]):
        if ref.mode == "constraint":
            query = query[:a] + ref.absolute + query[b:]
    for m in _RECENT.finditer(question):
        if all(m.end() <= x or m.start() >= y for x, y in taken):
            refs.append(TimeRef(m.group(0).strip(), "recent", "recency"))
            break
    for m in _STATED_YEAR.finditer(question):
        y = int(m.group(0))
        refs.append(TimeRef(m.group(0), "year", "constraint", *_year_span(y), stated=True))
    return Resolution(query=query, refs=refs)
