"""One written form for the constraints a question names, whatever the language or script.

News questions pick one event among look-alikes by an ordinal, a year, a quarter or a date, and
the article may write it in another language: ``31st`` = ``lần thứ 31`` = ``thứ XXXI``;
``Q3`` = ``quý 3`` = ``quý III`` = ``third quarter``; ``14/12/2021`` = ``December 14, 2021`` =
``ngày 14 tháng 12 năm 2021`` = ``2021-12-14``. :func:`canonicalise` rewrites all of these to one
form (``31``, ``Q3``, ``14/12/2021``, ``12/2021``) so that the keyword index and the checks on
answers compare like with like. It only rewrites numbers and the words that carry them; the
rest of the text is left as it is.
"""

from __future__ import annotations

import re

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}
_MONTH = r"(?P<mon>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11}
_MONTH_COUNT = r"two|three|four|five|six|seven|eight|nine|ten|eleven|[2-9]|1[01]"


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _COUNTS[word.lower()]


# a month without a year is only a month when capitalised ("May 15", not "may 15 people")
_MONTH_TITLE = r"(?P<mon>" + "|".join(m.title() for m in sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4}
_ROMAN = re.compile(r"^(?=[IVXLC])C{0,1}(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}

# words after which a Roman numeral is a number (an edition, session, quarter, term)
_ROMAN_CONTEXT = re.compile(
    r"(?i)\b(lần thứ|thứ|khóa|khoá|kỳ|quý|quy|phần|số|session|edition|games|congress|plenum|conference|summit|forum|round)\s+$"
)


def roman_value(token: str) -> int | None:
    """The value of an upper-case Roman numeral from I to C, else None."""
    if not token or not _ROMAN.match(token):
        return None
    total = 0
    for i, ch in enumerate(token):
        v = _ROMAN_VALUES[ch]
        nxt = _ROMAN_VALUES[token[i + 1]] if i + 1 < len(token) else 0
        total += -v if v < nxt else v
    return total if 0 < total <= 100 else None


def _valid_date(d: int, m: int, y: int) -> bool:
    return 1 <= d <= 31 and 1 <= m <= 12 and 1000 <= y <= 2999


def _sub_roman(text: str) -> str:
    def rep(m: re.Match) -> str:
        tok = m.group(0)
        value = roman_value(tok)
        if value is None:
            return tok
        before = text[max(0, m.start() - 20) : m.start()]
        # I alone is also the English pronoun: only after a context word
        if len(tok) >= 2 or _ROMAN_CONTEXT.search(before):
            return str(value)
        return tok

    return re.sub(r"(?<![\w/.-])[IVXLC]+(?![\w])", rep, text)


def canonicalise(text: str) -> str:
    """The text with its ordinals, Roman numerals, quarters and dates in one form."""
    if not text:
        return text
    s = text
    # ISO and dotted/dashed dates → d/m/yyyy
    s = re.sub(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b",
               lambda m: f"{int(m[3])}/{int(m[2])}/{m[1]}" if _valid_date(int(m[3]), int(m[2]), int(m[1])) else m[0], s)
    s = re.sub(r"\b(\d{1,2})[.-](\d{1,2})[.-](\d{4})\b",
               lambda m: f"{int(m[1])}/{int(m[2])}/{m[3]}" if _valid_date(int(m[1]), int(m[2]), int(m[3])) else m[0], s)
    # English month names: "December 14, 2021", "14 December 2021", "December 2021", "Dec. 14"
    s = re.sub(_MONTH + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})\b",
               lambda m: f"{int(m['d'])}/{MONTHS[m['mon'].lower()]}/{m['y']}", s, flags=re.IGNORECASE)
    s = re.sub(r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+(?P<y>\d{4})\b",
               lambda m: f"{int(m['d'])}/{MONTHS[m['mon'].lower()]}/{m['y']}", s, flags=re.IGNORECASE)
    s = re.sub(r"\b" + _MONTH + r",?\s+(?P<y>\d{4})\b",
               lambda m: f"{MONTHS[m['mon'].lower()]}/{m['y']}", s, flags=re.IGNORECASE)
    # Vietnamese spelled-out dates: "ngày 14 tháng 12 năm 2021", "tháng 12 năm 2021", "14 tháng 12"
    s = re.sub(r"(?i)\b(\d{1,2})\s+tháng\s+(\d{1,2})\s+năm\s+(\d{4})\b",
               lambda m: f"{int(m[1])}/{int(m[2])}/{m[3]}" if _valid_date(int(m[1]), int(m[2]), int(m[3])) else m[0], s)
    s = re.sub(r"(?i)\btháng\s+(\d{1,2})\s*(?:năm|/|-)\s*(\d{4})\b",
               lambda m: f"tháng {int(m[1])}/{m[2]}" if 1 <= int(m[1]) <= 12 else m[0], s)
    # dates without a year → d/m: "ngày 15.5", "tối 8-6", "ngày 18/10" (after a day word: "5.5%" is a
    # figure), "Sept. 7", "7 September"; the article's publication year completes them
    # (:func:`qa.constraints.passage_context`)
    s = re.sub(r"(?i)\b(ngày|hôm|sáng|chiều|tối|trưa|đêm|rạng sáng|khuya)\s+(\d{1,2})[./-](\d{1,2})(?![\d/.-]*\d)",
               lambda m: f"{m[1]} {int(m[2])}/{int(m[3])}" if 1 <= int(m[2]) <= 31 and 1 <= int(m[3]) <= 12 else m[0], s)
    s = re.sub(r"\b" + _MONTH_TITLE + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?![,.]?\s*\d{4})(?![/:.]\d)",
               lambda m: f"{int(m['d'])}/{MONTHS[m['mon'].lower()]}" if 1 <= int(m["d"]) <= 31 else m[0], s)
    s = re.sub(r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH_TITLE + r"\b(?!,?\s*\d{4})",
               lambda m: f"{int(m['d'])}/{MONTHS[m['mon'].lower()]}" if 1 <= int(m["d"]) <= 31 else m[0], s)
    # parts of a year → "9M" (the first nine months), "6M": "first nine months", "first three
    # quarters", "9 tháng đầu năm", "9 tháng năm 2023", "first half", "nửa đầu năm", "H1" (a bare
    # "9 tháng" is a duration: "án tù 9 tháng", "trẻ 9 tháng tuổi")
    s = re.sub(r"(?i)\b(?:the\s+)?first\s+(" + _MONTH_COUNT + r")\s+months\b",
               lambda m: f"{_count(m[1])}M", s)
    s = re.sub(r"(?i)\b(?:the\s+)?first\s+(two|three|2|3)\s+quarters\b", lambda m: f"{3 * _count(m[1])}M", s)
    s = re.sub(r"(?i)\b(?:the\s+)?first\s+half(?=\s+(?:of\s+|in\s+)?(?:the\s+year|this\s+year|last\s+year|(?:19|20)\d\d))|"
               r"\bH1(?=\s*(?:/|of\s+)?(?:19|20)\d\d)|\bnửa đầu năm\b", "6M", s)  # not a match's first half
    # "ba quý đầu năm", "3 quý đầu năm 2024", "hai quý đầu năm": quarters from the start of the year
    s = re.sub(r"(?i)\b(hai|ba|2|3)\s+quý\s+đầu(?:\s+năm)?\b",
               lambda m: f"{3 * ({'hai': 2, 'ba': 3}.get(m[1].lower()) or int(m[1]))}M", s)
    s = re.sub(r"(?i)\b(\d{1,2})\s+tháng(?=\s+(?:đầu\s+năm|năm\s+\d{4}|/\d{4}|qua\b|của\s+năm|đầu\s+\d{4}))(?:\s+đầu\s+năm)?",
               lambda m: f"{int(m[1])}M" if 2 <= int(m[1]) <= 11 else m[0], s)
    # Roman numerals (editions, quarters, sessions) → Arabic
    s = _sub_roman(s)
    # quarters: "third quarter", "3rd quarter", "quarter 3", "quý 3", "Q.3" → Q3
    s = re.sub(r"(?i)\b(first|second|third|fourth)\s+quarter\b", lambda m: f"Q{_ORDINAL_WORDS[m[1].lower()]}", s)
    s = re.sub(r"(?i)\b([1-4])(?:st|nd|rd|th)\s+quarter\b", r"Q\1", s)
    s = re.sub(r"(?i)\bquarter\s+([1-4])\b", r"Q\1", s)
    s = re.sub(r"(?i)\b(quý|quy)\s+([1-4])\b", r"\1 Q\2", s)
    s = re.sub(r"(?i)\bQ\.?\s?([1-4])\b", r"Q\1", s)
    # numeric ordinals: 31st → 31 (after the quarters, which need the suffix)
    s = re.sub(r"\b(\d{1,4})(?:st|nd|rd|th)\b", r"\1", s)
    return s
