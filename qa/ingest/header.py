"""An article's header: outlet, author and publication date, from the lines under its title.

Scraped news text carries them in a few shapes, all read here:

- a byline row: ``VnExpress | 2024-10``, ``Thanh Niên | Lê Hiệp | 2019-07``,
  ``baoquocte.vn | 2021-12-15``, ``Khánh Minh |`` (an author alone);
- a dateline: ``Thứ Sáu, 17/12/2021 14:30``, ``Hà Nội, ngày 15 tháng 12 năm 2021``, ``15/12/2021``, ``December 15, 2021``,
  ``Friday, December 17, 2021 - 14:30 GMT+7``, ``2021-12-15T08:00:00+07:00``;
- an outlet alone on the line under the title (``VnExpress International``).

A date is only ever a publication date when it stands as such a line (or comes from the page's
metadata): a date or year mentioned in a sentence of the body is an event, not when the article
was published. Unknown stays unknown.

Dates are ``YYYY-MM-DD`` or ``YYYY-MM`` (month precision, as many archives give them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.canonical import canonicalise

_WEEKDAY = (
    r"(?:thứ\s+(?:hai|ba|tư|năm|sáu|bảy|2|3|4|5|6|7)|chủ\s+nhật|cn|t[2-7]|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun)\.?"
)
_TIME = r"(?:\d{1,2}[:hg]\d{2}(?::\d{2})?\s*(?:am|pm|sa|ch)?(?:\s*\(?(?:gmt|utc)\s*[+-]\s*\d{1,2}(?::?\d{2})?\)?)?)"
_ISO = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
_FILLER = re.compile(
    rf"(?i)\b{_WEEKDAY}|\b{_TIME}|\b(?:ngày|cập nhật|đăng|published|updated|posted|on|lúc|at)\b|\b(?:gmt|utc)\s*[+-]\s*\d{{1,2}}|[,|()\-–—:]"
)
_DAY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_MONTH = re.compile(r"^(?:tháng\s+)?(\d{1,2})/(\d{4})$")
_DOMAIN = re.compile(r"(?i)^[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)+$")
_SENTENCE_END = re.compile(r"[.!?:;…\"”]$")


@dataclass
class Header:
    outlet: str | None = None
    author: str | None = None
    published: str | None = None  # YYYY-MM-DD or YYYY-MM


def parse_date(text: str) -> str | None:
    """A line that is a date (with weekday, time, time zone): ``YYYY-MM-DD`` / ``YYYY-MM``, else None."""
    s = " ".join((text or "").split())
    if not s or len(s) > 80:
        return None
    m = _ISO.match(s)
    if m:
        return _format(int(m[1]), int(m[2]), int(m[3]) if m[3] else None)
    s = canonicalise(s)
    s = " ".join(_FILLER.sub(" ", s).split())
    m = _DAY.match(s)
    if m:
        return _format(int(m[3]), int(m[2]), int(m[1]))
    m = _MONTH.match(s)
    if m:
        return _format(int(m[2]), int(m[1]), None)
    return None


def _format(y: int, m: int, d: int | None) -> str | None:
    import datetime

    if not (1900 < y < 2100 and 1 <= m <= 12):
        return None
    if d is not None:
        try:
            datetime.date(y, m, d)
        except ValueError:
            return None
    return f"{y:04d}-{m:02d}" if d is None else f"{y:04d}-{m:02d}-{d:02d}"


def _looks_like_name(part: str, max_words: int = 6) -> bool:
    words = part.split()
    return 0 < len(words) <= max_words and not _SENTENCE_END.search(part) and len(part) <= 60


def parse_header_line(line: str, *, first: bool = False) -> Header | None:
    """Read one line under the title as a header, or None when it is body text.

    ``first``: the line right under the title, where a bare outlet name is also accepted.
    """
    s = " ".join((line or "").split())
    if not s:
        return None
    date = parse_date(s)
    if date is None:  # a place dateline: "Hà Nội, ngày 15 tháng 12 năm 2021"
        m = re.match(r"^([^,\d]{2,30}),\s*(.+)$", s)
        if m and _looks_like_name(m[1], 4):
            date = parse_date(m[2])
    if date:
        return Header(published=date)
    if "|" in s:
        parts = [p.strip() for p in s.split("|")]
        names: list[str] = []
        published = None
        for p in parts:
            if not p:
                continue
            d = parse_date(p)
            if d and published is None:
                published = d
            elif _looks_like_name(p, 8):
                names.append(p)
            else:
                return None  # a sentence with a bar in it
        if not names and not published:
            return None
        if len(names) >= 2:
            return Header(outlet=names[0], author=names[1], published=published)
        if names and not published and s.rstrip().endswith("|") and not s.lstrip().startswith("|"):
            return Header(author=names[0])  # "Khánh Minh |": a byline
        return Header(outlet=names[0] if names else None, published=published)
    if first and (_looks_like_name(s, 8) and not re.search(r"\d{3,}", s) or _DOMAIN.match(s)):
        return Header(outlet=s)
    return None
