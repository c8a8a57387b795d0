"""Questions about the articles themselves: who wrote it, which outlet, when it was published.

The answer comes from the article's header (outlet, author, publication date, read at ingest by
:mod:`qa.ingest.header`), never from the body: a byline is not a sentence of the story. The
header is a passage of its own (``<doc>:<sha>:header``) that the answer cites and the user can
open. A field the article does not state is not guessed: the answer says which one is missing,
and when nothing that was asked is known, the chain refuses.

Which article: the retrieved passages pick it (the question also describes the story); when the
question names an outlet that some retrieved articles carry, only those are considered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.answer.retrieval import Passage
from qa.text import fold

# an article noun must be there: "who wrote the article", not "who wrote the law"
_ARTICLE = re.compile(
    r"(?i)\b(article|report|story|piece|feature|column|op-ed|editorial|news item|bài báo|bài viết|bài phân tích|"
    r"bài thống kê|bài tường thuật|bài phỏng vấn|bài bình luận|phóng sự|bản tin|tin bài|tác phẩm báo chí)\b"
)
_ASKS = {
    "author": re.compile(
        r"(?i)\b(who (wrote|authored|penned|reported)|written by whom|by whom|author|byline|which (reporter|journalist|writer|correspondent)|"
        r"tác giả|do ai viết|ai viết|ai là người viết|phóng viên nào|nhà báo nào|người viết|là của ai)\b"
    ),
    "outlet": re.compile(
        r"(?i)\b(which|what) (outlet|newspaper|paper|site|website|publication|media outlet|news agency|news site)\b|"
        r"\b(báo nào|tờ báo nào|trang (tin|báo) nào|cơ quan báo chí nào|kênh nào|hãng tin nào)"
    ),
    "published": re.compile(
        r"(?i)\b(when (was|were|did)\b.{0,160}?\b(published|posted|released|come out|appear)|published (on|when)|publication date|"
        r"on what date|what date|(đăng|đăng tải|xuất bản|phát hành)( vào)? (ngày|hôm|lúc|thời gian) nào|ngày nào|khi nào|bao giờ)"
    ),
}
_QUOTED_TITLE = re.compile(r"[“\"«]([^”\"»]{12,300})[”\"»]")
_PUBLISH_VERB = re.compile(r"(?i)\b(published|posted|reported|ran|carried|đăng|đăng tải|xuất bản|đưa tin|tường thuật)\b")


def asked_fields(question: str) -> list[str]:
    """The header fields the question asks for, in a fixed order; empty when it is not about an article."""
    q = " ".join(question.split())
    if not _ARTICLE.search(q) and not _ASKS["outlet"].search(q) and not _QUOTED_TITLE.search(q):
        return []
    out = []
    if _ASKS["author"].search(q):
        out.append("author")
    if _ASKS["outlet"].search(q):
        out.append("outlet")
    # "on what date" alone asks about an event; about the article only with a publishing verb
    # or next to another header field ("which outlet reported …, and on what date")
    if _ASKS["published"].search(q) and (_PUBLISH_VERB.search(q) or out):
        out.append("published")
    return out


# "trên báo Thanh Niên", "của VnExpress", "on VnExpress International": the outlet is matched
# against the articles' headers (:func:`answer`), it is no words of the story
_OUTLET_CLAUSE = re.compile(r"\b(trên|của|theo)\s+(báo|tờ|trang|tạp chí)\s+[A-ZĐ][\w.-]*(\s+[A-ZĐ][\w.-]*)*")
_GLUE = re.compile(r"(?i)\b(do|và|and|is|was|the|a|an|of|được|trên|là|của|vào|về việc|về)\s*(?=[?.,]*$)")
_LEADING_GLUE = re.compile(r"(?i)^(ai là|ai|là|của|về việc|về|the|a|an|about|on|of|is|was|and)\s+")


def story_question(question: str) -> str:
    """The question without what it asks about the article: the story it describes ("Bài thống
    kê điểm 10 của kỳ thi năm 2019 trên báo Thanh Niên do ai viết?" → "thống kê điểm 10 của kỳ
    thi năm 2019 trên báo Thanh Niên"). The story check reads this: "do ai viết" is not
    something a sentence of the story says, and the answer-type checks (who → a name) are about
    the header, not the story."""
    q = " ".join(question.split())
    for pattern in (*_ASKS.values(), _ARTICLE, _OUTLET_CLAUSE):
        q = pattern.sub(" ", q)
    q = re.sub(r"\s+", " ", q).strip(" ?,.")
    for _ in range(3):  # words left dangling at either end ("… do", "Ai là về …", "the about …")
        q = _LEADING_GLUE.sub("", _GLUE.sub("", q).strip(" ?,.")).strip(" ?,.")
    return q or question


@dataclass
class HeaderAnswer:
    passage: Passage | None  # the header passage (cite it as [1]); None when the article has no header
    answer: str  # with its [1] marker; a refusal text when nothing asked is known
    known: list[str]
    missing: list[str]


def header_line(meta: dict) -> str:
    """The header as the article shows it: ``Outlet | Author | YYYY-MM-DD``."""
    return " | ".join(x for x in (meta.get("outlet"), meta.get("author"), meta.get("date")) if x)


def header_passage(p: Passage) -> Passage | None:
    """The header of the article ``p`` comes from, as a passage; None when it has no header."""
    line = header_line(p.meta)
    if not line:
        return None
    sha = str(p.meta.get("doc_sha256", ""))[:12]
    # the story's other outlets ("also reported by") go with the header that answers "which outlet"
    meta = {k: v for k, v in p.meta.items() if k in {"doc_id", "title", "source", "outlet", "author", "date", "language",
                                                      "doc_sha256", "group", "also_reported_by"}}
    meta.update(kind="header", position=-1)
    return Passage(f"{p.doc_id}:{sha}:header", p.doc_id, p.title, p.source, f"{p.title}\n{line}", p.score, meta,
                   {"header_of": p.chunk_id})


def pick_article(question: str, passages: list[Passage]) -> Passage | None:
    """The retrieved passage whose article the question is about (the first, or the first of an
    outlet the question names)."""
    if not passages:
        return None
    fq = f" {' '.join(fold(question).split())} "
    named = []
    for p in passages:
        outlet = p.meta.get("outlet")
        if outlet:
            fo = " ".join(fold(outlet).split())
            if fo and f" {fo}" in fq:
                named.append((len(fo), p))
    if named:
        longest = max(n for n, _ in named)  # "VnExpress International" over "VnExpress"
        return next(p for n, p in named if n == longest)
    return passages[0]


def names_title(question: str, passages: list[Passage]) -> Passage | None:
    """The retrieved passage whose article title the question quotes (“…”), if any: then the
    question names its article outright."""
    quoted = [" ".join(fold(m).split()) for m in _QUOTED_TITLE.findall(question)]
    if not quoted:
        return None
    for p in passages:
        title = " ".join(fold(p.title or "").split())
        if title and any(q in title or (len(title) >= 12 and title in q) for q in quoted):
            return p
    return None


def _date_words(date: str, language: str) -> str:
    parts = date.split("-")
    months_en = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December"]
    if len(parts) == 3:
        y, m, d = int(parts[0]), int(parts[1]), int(parts[2])
        return f"{d}/{m}/{y}" if language == "vi" else f"{months_en[m - 1]} {d}, {y} ({date})"
    if len(parts) == 2:
        y, m = int(parts[0]), int(parts[1])
        return f"tháng {m}/{y}" if language == "vi" else f"{months_en[m - 1]} {y}"
    return date


def answer(question: str, language: str, passages: list[Passage], fields: list[str]) -> HeaderAnswer | None:
    """The header answer for ``fields`` of the article the question is about (a refusal naming
    what the article does not state, when it states none of them); None when nothing was retrieved."""
    chosen = names_title(question, passages) or pick_article(question, passages)
    if chosen is None:
        return None
    hp = header_passage(chosen)
    m = hp.meta if hp is not None else {}
    values = {"author": m.get("author"), "outlet": m.get("outlet"), "published": m.get("date")}
    known = [f for f in fields if values[f]]
    missing = [f for f in fields if not values[f]]
    title = chosen.title
    if not known:
        if language == "vi":
            names = {"author": "tên tác giả", "outlet": "tên báo", "published": "ngày đăng"}
            text = f"Bài “{title}” không ghi " + ", ".join(names[f] for f in missing) + "."
        else:
            names = {"author": "its author", "outlet": "its outlet", "published": "its publication date"}
            text = f"The article “{title}” does not give " + " or ".join(names[f] for f in missing) + "."
        return HeaderAnswer(hp, text, known, missing)
    if language == "vi":
        names = {"author": "tên tác giả", "outlet": "tên báo", "published": "ngày đăng"}
        bits = []
        if values["outlet"]:
            bits.append(f"đăng trên {values['outlet']}")
        if values["published"]:
            bits.append(f"ngày đăng: {_date_words(values['published'], 'vi')}")
        if values["author"]:
            bits.append(f"tác giả: {values['author']}")
        text = f"Bài “{title}” " + ", ".join(bits) + " [1]."
        if missing:
            text += " Bài không ghi " + ", ".join(names[f] for f in missing) + "."
    else:
        names = {"author": "its author", "outlet": "its outlet", "published": "its publication date"}
        bits = []
        if values["outlet"]:
            bits.append(f"was published by {values['outlet']}")
        if values["published"]:
            bits.append(f"on {_date_words(values['published'], 'en')}")
        lead = f"The article “{title}” " + " ".join(bits)
        if values["author"]:
            lead += ("," if bits else "") + f" written by {values['author']}"
        text = lead + " [1]."
        if missing:
            text += " The article does not give " + " or ".join(names[f] for f in missing) + "."
    return HeaderAnswer(hp, text, known, missing)
