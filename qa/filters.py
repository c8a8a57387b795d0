"""What a question may be restricted to: a publication period, outlets, article languages.

One :class:`Filters` value travels from the faces (``--since``/``--until``/``--outlet``/
``--language``, the API's ``"filters"``, the UI's controls) to the index, where both the dense
side (a Chroma ``where``) and the keyword side (a join in SQLite) apply it *before* their top-k,
so a filtered question still gets its best k passages.

Every chunk carries the fields the filters read (:func:`filter_fields`):

* ``date_from`` / ``date_to``: the first and last day its article's publication date can be,
  as ``YYYYMMDD`` integers (``2024-10`` → 20241001…20241031); absent when the date is unknown,
  so a date filter leaves such articles out;
* ``year``: the year of that date (a date is a day, a month or a year: it never spans two).
  Chroma evaluates each clause of a ``where`` over the whole collection, so its cost grows with
  the number of chunks a clause matches: ``date_to >= …`` matches half an archive, ``year $in
  [2020]`` only that year. The index is asked with the year clause
  (:meth:`Filters.index_where`); the exact day bounds are checked on what it returns
  (:meth:`Filters.matches`), widening the search when too few pass;
* ``outlet_key``: the outlet folded (no diacritics, lower case): ``--outlet "thanh nien"``
  matches "Thanh Niên";
* ``doc_language``: the article's language (a filter is about articles, not single chunks).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field


class FilterError(ValueError):
    """A filter the user gave cannot be read (a bad date, an unknown language)."""


LANGUAGES = ("vi", "en")
YEARS_IN = 50  # a closed range of fewer years is asked as ``year $in [...]``


def outlet_key(outlet: str | None) -> str:
    from qa.text import fold

    return " ".join(fold(outlet or "").lower().split())


# the words that make an outlet named in a question its source: "theo VnExpress", "according to
# Thanh Niên", "trên báo Tuổi Trẻ", "VnExpress reported"; written without diacritics (matched on
# the question with its diacritics stripped, case kept)
_SOURCE_BEFORE = re.compile(r"(?i)\b(?:theo|according to|tren|cua|reported by|by|from|in|on|per)\s+"
                            r"(?:(?:bao|trang|to|tap chi|bao dien tu|the|newspaper|site)\s+)?$|"
                            r"\b(?:bao|trang|tap chi)\s+$")
_SOURCE_AFTER = re.compile(r"(?i)^\s*(?:['’]s\b|(?:da |vua |has |had )?(?:reported|reports|report|said|says|say|wrote|"
                           r"writes|write|dua tin|cho biet|dan tin|viet)\b)")


def named_outlets(question: str, outlets) -> list[str]:
    """The archive's outlets (``outlets``: their names as stored) that the question names as its
    source: written with a capital, after "theo", "according to", "trên báo", "in" …, or before
    "reported", "đưa tin" …; the longest when one name holds another ("VnExpress International",
    not "VnExpress"). Diacritics and case of the rest are ignored. "thanh niên" (the young) in a
    question is no outlet."""
    from qa.text import strip_diacritics

    plain = strip_diacritics(" ".join(question.split()))
    low = plain.lower()
    found: list[tuple[int, int, str]] = []
    for name in {o for o in outlets if o and o.strip()}:
        key = strip_diacritics(" ".join(name.split()))
        if len(key) < 3 or key.lower() not in low:  # most outlets: a substring test, no regex
            continue
        for m in re.finditer(rf"(?i)(?<![\w]){re.escape(key)}(?![\w])", plain):
            if not plain[m.start()].isupper():
                continue
            if _SOURCE_BEFORE.search(plain[:m.start()]) or _SOURCE_AFTER.match(plain[m.end():]):
                found.append((m.start(), m.end(), name))
    # a name inside a longer one found at the same place is not named
    kept = [f for f in found if not any(o[0] <= f[0] and f[1] <= o[1] and (o[1] - o[0]) > (f[1] - f[0]) for o in found)]
    return list(dict.fromkeys(name for _, _, name in sorted(kept)))


def date_span(date: str | None) -> tuple[int, int] | None:
    """``YYYY-MM-DD`` / ``YYYY-MM`` / ``YYYY`` → (first day, last day) as YYYYMMDD integers."""
    parts = (date or "").strip().split("-")
    try:
        year = int(parts[0])
        if len(parts) == 1:
            return year * 10000 + 101, year * 10000 + 1231
        month = int(parts[1])
        if not 1 <= month <= 12:
            return None
        if len(parts) == 2:
            last = calendar.monthrange(year, month)[1]
            return year * 10000 + month * 100 + 1, year * 10000 + month * 100 + last
        day = int(parts[2])
        dt.date(year, month, day)
        return (year * 10000 + month * 100 + day,) * 2
    except (ValueError, IndexError):
        return None


def day_int(d: dt.date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def parse_day(value: str | dt.date | None, what: str = "date") -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise FilterError(f"{what} must be a date written YYYY-MM-DD (got {value!r})") from None


def filter_fields(date: str | None, outlet: str | None, language: str | None) -> dict:
    """The metadata fields a chunk (and the keyword index) stores for the filters."""
    out: dict = {"dated": False}
    span = date_span(date)
    if span:
        out["date_from"], out["date_to"] = span
        out["year"] = span[0] // 10000
        out["dated"] = True
    key = outlet_key(outlet)
    if key:
        out["outlet_key"] = key
    if language:
        out["doc_language"] = language
    return out


@dataclass(frozen=True)
class Filters:
    since: dt.date | None = None
    until: dt.date | None = None
    outlets: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    #: where the filter came from: "user" (flags, API, UI) or "question" (resolved from its wording)
    origin: str = field(default="user", compare=False)

    @property
    def keep_undated(self) -> bool:
        """A period the question names ("last week") cannot rule out an article whose date is
        unknown; a date filter the user sets does."""
        return self.origin == "question"

    @classmethod
    def make(cls, since=None, until=None, outlets=None, languages=None, *, origin: str = "user") -> "Filters":
        """Checked construction from what a user typed: raises :class:`FilterError` on bad input."""
        s, u = parse_day(since, "since"), parse_day(until, "until")
        if s and u and s > u:
            raise FilterError(f"since ({s}) is after until ({u})")
        if isinstance(outlets, str):
            outlets = [outlets]
        if isinstance(languages, str):
            languages = [languages]
        outs = tuple(dict.fromkeys(o.strip() for o in (outlets or []) if o and o.strip()))
        langs = tuple(dict.fromkeys(str(x).strip().lower() for x in (languages or []) if x and str(x).strip()))
        bad = [x for x in langs if x not in LANGUAGES]
        if bad:
            raise FilterError(f"unknown language {bad[0]!r}: use one of {', '.join(LANGUAGES)}")
        return cls(s, u, outs, langs, origin=origin)

    @classmethod
    def from_json(cls, data: dict | None) -> "Filters":
        data = data or {}
        return cls.make(data.get("since"), data.get("until"), data.get("outlets") or data.get("outlet"),
                        data.get("languages") or data.get("language"))

    def __bool__(self) -> bool:
        return bool(self.since or self.until or self.outlets or self.languages)

    @property
    def outlet_keys(self) -> tuple[str, ...]:
        return tuple(k for k in (outlet_key(o) for o in self.outlets) if k)

    def as_json(self) -> dict:
        return {"since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "outlets": list(self.outlets), "languages": list(self.languages), "origin": self.origin}

    def merged(self, other: "Filters") -> "Filters":
        """``other`` fills what this one leaves open (an explicit filter wins over the question's)."""
        dates_from_other = not (self.since or self.until) and bool(other.since or other.until)
        return Filters(self.since or other.since, self.until or other.until, self.outlets or other.outlets,
                       self.languages or other.languages, origin=other.origin if dates_from_other or not self else self.origin)

    def clauses(self) -> list[dict]:
        out: list[dict] = []
        dates = []
        if self.since:
            dates.append({"date_to": {"$gte": day_int(self.since)}})
        if self.until:
            dates.append({"date_from": {"$lte": day_int(self.until)}})
        if dates and self.keep_undated:
            dated = dates[0] if len(dates) == 1 else {"$and": dates}
            out.append({"$or": [dated, {"dated": False}]})
        else:
            out += dates
        keys = self.outlet_keys
        if keys:
            out.append({"outlet_key": {"$in": list(keys)}} if len(keys) > 1 else {"outlet_key": keys[0]})
        if self.languages:
            langs = list(self.languages)
            out.append({"doc_language": {"$in": langs}} if len(langs) > 1 else {"doc_language": langs[0]})
        return out

    def where(self, *extra: dict | None) -> dict | None:
        """A Chroma ``where`` for these filters (exact day bounds), and-ed with ``extra`` clauses."""
        return _and([*self.clauses(), *(e for e in extra if e)])

    def index_where(self, *extra: dict | None) -> dict | None:
        """The ``where`` the dense index is asked with: the dates as whole years (one cheap
        clause, see the module docstring), the rest as in :meth:`where`. Everything it lets
        through that :meth:`matches` rejects lies in the first or last year of the range."""
        return _and([*self.index_clauses(), *(e for e in extra if e)])

    @property
    def exact_years(self) -> bool:
        """Is :meth:`index_where` exact (no day bound inside a year)?"""
        return (not self.since or (self.since.month, self.since.day) == (1, 1)) and \
               (not self.until or (self.until.month, self.until.day) == (12, 31))

    def index_clauses(self) -> list[dict]:
        out: list[dict] = []
        lo, hi = (self.since.year if self.since else None), (self.until.year if self.until else None)
        year: dict | None = None
        if lo is not None and hi is not None:
            year = {"year": {"$in": list(range(lo, hi + 1))}} if hi - lo < YEARS_IN else \
                   {"$and": [{"year": {"$gte": lo}}, {"year": {"$lte": hi}}]}
        elif lo is not None:
            year = {"year": {"$gte": lo}}
        elif hi is not None:
            year = {"year": {"$lte": hi}}
        if year is not None:
            out.append({"$or": [year, {"dated": False}]} if self.keep_undated else year)
        rest = Filters(outlets=self.outlets, languages=self.languages)
        return out + rest.clauses()

    def matches(self, meta: dict) -> bool:
        """Does a chunk (its metadata) pass? The same test as :meth:`where`, in Python."""
        undated = meta.get("date_from") is None
        if undated and self.keep_undated:
            return Filters(outlets=self.outlets, languages=self.languages).matches(meta)
        if self.since and not (meta.get("date_to") is not None and int(meta["date_to"]) >= day_int(self.since)):
            return False
        if self.until and not (meta.get("date_from") is not None and int(meta["date_from"]) <= day_int(self.until)):
            return False
        if self.outlet_keys and meta.get("outlet_key") not in self.outlet_keys:
            return False
        if self.languages and meta.get("doc_language") not in self.languages:
            return False
        return True

    def describe(self) -> str:
        bits = []
        if self.since or self.until:
            bits.append(f"{self.since or '…'} – {self.until or '…'}")
        if self.outlets:
            bits.append(", ".join(self.outlets))
        if self.languages:
            bits.append("/".join(self.languages))
        return "; ".join(bits)


def _and(parts: list[dict]) -> dict | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}
