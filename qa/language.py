"""Question language: Vietnamese or English, with or without diacritics."""

from __future__ import annotations

import re
from functools import lru_cache

from qa.text import fold

# Letters that only Vietnamese uses (among vi/en): any of these decides at once.
_VI_CHARS = re.compile(r"[ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ]", re.IGNORECASE)

# Frequent Vietnamese syllables written without diacritics, that are not English words.
_VI_WORDS = set(
    """
    la cua gi nao nhu the nhung cac mot nhieu duoc trong cho voi tai ve khi da dang se
    bao nhieu ai sao vi nguoi nam ngay thang viet nay do thi khong co phai cung hay hoac
    tu den ra vao len xuong theo de nen neu con va ong ba anh chi em toi chung ta minh
    duong gia hom nao muon nhat lam noi rang dau tren duoi sau truoc giua bo thu truong
    cong tac doi ngoai giao kinh te xa hoi chinh phu quoc gia dan dai hoi nghi quyet
    """.split()
)
_EN_WORDS = set(
    """
    the a an of to in on for with what who which when where why how is are was were
    did does do has have had be been by from about at as that this these those and or
    not it its his her their he she they we you i can could should would will said
    say tell many much according
    """.split()
)


def detect_language(text: str) -> str:
    """'vi' or 'en'."""
    if _VI_CHARS.search(text):
        return "vi"
    words = re.findall(r"[a-z]+", fold(text))
    if not words:
        return "en"
    vi = sum(w in _VI_WORDS for w in words)
    en = sum(w in _EN_WORDS for w in words)
    if vi != en:
        return "vi" if vi > en else "en"
    return _lingua(text)


@lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.VIETNAMESE).build()


def _lingua(text: str) -> str:
    try:
        from lingua import Language

        lang = _detector().detect_language_of(text)
        return "vi" if lang == Language.VIETNAMESE else "en"
    except Exception:  # pragma: no cover - lingua missing or failing
        return "en"


_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_text_language(text: str, sample_chars: int = 4000) -> str:
    """'vi' or 'en' for an article or a passage (not a question).

    Unlike :func:`detect_language`, one Vietnamese name in an English article does not make
    it Vietnamese: the share of words written with Vietnamese letters decides (about two
    thirds in Vietnamese prose, a few percent in English news quoting Vietnamese names).
    Below that, function words among the unmarked words decide (English ones, or Vietnamese typed
    without diacritics), then lingua.
    """
    sample = text[:sample_chars]
    words = _TOKEN.findall(sample)
    if not words:
        return "en"
    marked = sum(1 for w in words if _VI_CHARS.search(w))
    share = marked / len(words)
    if share >= 0.3:
        return "vi"
    plain = [w.lower() for w in words if not _VI_CHARS.search(w)]
    en = sum(w in _EN_WORDS for w in plain)
    vi = sum(w in _VI_WORDS for w in plain)
    if en != vi:
        return "en" if en > vi else "vi"
    return _lingua(sample)


_QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"|«[^»]*»|\(\s*[^()]*\)|\[\d{1,3}\]")


def written_in(text: str) -> str | None:
    """The language an answer is clearly written in ('vi' / 'en'), ignoring what it quotes (“…”),
    its parentheses and [n] markers; None when it cannot be told for sure (a few names, a number):
    Vietnamese prose has most words with Vietnamese letters, English prose has almost none and
    English function words."""
    rest = _QUOTED.sub(" ", text or "")
    words = _TOKEN.findall(rest)
    if len(words) < 4:
        return None
    share = sum(1 for w in words if _VI_CHARS.search(w)) / len(words)
    plain = [w.lower() for w in words if not _VI_CHARS.search(w)]
    en = sum(w in _EN_WORDS for w in plain)
    vi = sum(w in _VI_WORDS for w in plain)
    if share >= 0.3 and en < 2:  # English prose keeping Vietnamese names still has its function words
        return "vi"
    if share < 0.05 and en >= 2 and en > vi:
        return "en"
    return None
