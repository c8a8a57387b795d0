"""Loading and cleaning news articles (.txt, .md, .html/.htm).

A loaded :class:`Document` holds the cleaned text: the body paragraphs, then (after
``body_end``) the image captions, each on its own paragraph. Teasers ("TIN LIÊN QUAN",
"Tin cùng chuyên mục"), bylines and bracketed related-article links are dropped.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from qa.ingest.header import Header, parse_date, parse_header_line
from qa.language import detect_text_language
from qa.schema import Document
from qa.text import fold, nfc, squash_spaces

SUPPORTED_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm"}


class DocumentError(Exception):
    """A file that cannot be indexed; the message says why (path added by the caller)."""


# ---------------------------------------------------------------------------
# reading bytes safely


def read_text(path: Path) -> tuple[str, bytes]:
    """Decode a file as UTF-8, refusing empty, binary and wrongly encoded files."""
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise DocumentError(f"unreadable: permission denied ({exc.strerror})") from exc
    except OSError as exc:
        raise DocumentError(f"unreadable: {exc.strerror or exc}") from exc
    return decode_text(data), data


def decode_text(data: bytes, what: str = "file") -> str:
    """Decode bytes as UTF-8, refusing empty, binary and wrongly encoded content."""
    if not data.strip():
        raise DocumentError(f"empty {what}")
    if b"\x00" in data[:8192]:
        raise DocumentError(f"binary {what} (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = _guess_legacy_encoding(data)
        raise DocumentError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}){hint}; "
            "convert it to UTF-8, e.g. `iconv -f CP1258 -t UTF-8`"
        ) from exc
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > max(8, len(text[:8192]) // 50):
        raise DocumentError(f"binary {what} (too many control characters), not text")
    return text


def _guess_legacy_encoding(data: bytes) -> str:
    for enc in ("cp1258", "cp1252", "latin-1"):
        try:
            data.decode(enc)
            return f", looks like {enc.upper().replace('CP', 'Windows-')}"
        except UnicodeDecodeError:
            continue
    return ""


# ---------------------------------------------------------------------------
# news cleanup

_TEASER_MARKERS = re.compile(
    r"^\s*(tin lien quan|tin cung chuyen muc|bai lien quan|tin moi|tin khac|"
    r"xem them|doc them|related( news| articles)?|more stories|read more)\s*:?\s*$"
)
_BYLINE = re.compile(r"^(?P<name>[^|\n]{2,80}?)\s*\|\s*$")
_BRACKET_LINK = re.compile(r"^\s*\[[^\[\]\n]{3,300}\]\s*$")
_SOURCE_CREDIT = re.compile(r"^\([^()\n]{2,40}\)$")  # "(TTXVN/Vietnam+)"
# a photo credit ending a line makes the line a caption: "(Ảnh: Ngô Linh).", "(Photo: VNA)", and
# without brackets after the caption's last sentence or a dash: "…lúc 22h ngày 7/9. Ảnh: NCHMF",
# "… của bão số 3 - Ảnh: TTDBKTTVQG", "…December 10, 2019. Photo by VnExpress/Quang Huy."
_CREDIT = re.compile(
    r"\(\s*(?:Ảnh|Nguồn ảnh|Photo)\s*:?[^()]{0,120}\)[.\s]*$|"
    r"(?:[.!?…”\"]\s+|\s[-–—]\s+)(?:Ảnh|Hình|Nguồn ảnh|Photo|Photos|Image)\s*(?::|\bby\b|\bcourtesy\b|\bcredit\b:?)"
    r"\s*[^.!?:\n]{2,60}\.?\s*$",
    re.IGNORECASE)
# English editions (Việt Nam News, VNA) open the story with the photo's caption, its credit and
# the dateline on one line: "1.5 million doses have been given in Hà Nội. — VNA/VNS Photo HÀ NỘI —
# Việt Nam administered…". The caption and credit, up to the dateline (a place in capitals and a
# dash), are a caption; the dateline and what follows are the story.
_INLINE_CREDIT = re.compile(
    r"^(?P<caption>.{10,400}?\s[—–-]\s*(?:[A-ZĐ][\w.&]*(?:/[A-ZĐ][\w.&]*)*\s+)?Photos?\b(?:\s+(?:by|courtesy of)\b)?"
    r"(?:\s+[^\s—–]+){0,5}?)\s+(?P<rest>[A-ZÀ-ỸĐ][A-ZÀ-ỸĐ.'’]*(?:\s+[A-ZÀ-ỸĐ][A-ZÀ-ỸĐ.'’]*){0,3}\s*[—–-]\s+\S.*)$")
# "…kỷ nguyên số ảnh 1Quang cảnh phiên họp… (Ảnh: Phương Hoa/TTXVN)": an image number glued
# to the caption's first word.
_GLUED_CAPTION = re.compile(r"\s*\b[ảẢ]nh\s?\d{1,2}(?=[\"“(]?[A-ZÀ-ỸĐ][a-zà-ỹđ])")


def clean_news_text(raw: str, *, has_title_line: bool = True) -> tuple[str | None, list[str], list[str], Header]:
    """Split scraped article text into (title, body paragraphs, captions, header).

    The header (outlet, author, publication date) comes from the lines between the title and
    the first body paragraph (:mod:`qa.ingest.header`); those lines are not body text.
    """
    raw = nfc(raw).replace("\r\n", "\n").replace("\r", "\n")
    lines = [squash_spaces(line).strip() for line in raw.split("\n")]
    title: str | None = None
    if has_title_line:
        while lines and not lines[0]:
            lines.pop(0)
        if lines:
            title = lines.pop(0).lstrip("# ").strip()

    header = Header()
    body: list[str] = []
    captions: list[str] = []
    seen = 0  # non-empty lines read before the body started
    for line in lines:
        if not line:
            continue
        if _TEASER_MARKERS.match(fold(line)):
            break  # everything after "TIN LIÊN QUAN" / "Tin cùng chuyên mục" is teasers
        if _BRACKET_LINK.match(line) or _SOURCE_CREDIT.match(line):
            continue
        if not body and seen < 3:
            seen += 1
            h = parse_header_line(line, first=has_title_line and seen == 1)
            if h is not None and _merge_header(header, h):
                continue
        m = _BYLINE.match(line)
        if m and len(m.group("name").split()) <= 8:
            if header.author is None and not body:
                header.author = m.group("name").strip()
            continue
        if header.author and line == header.author:
            continue  # signature repeated at the end
        glued = _GLUED_CAPTION.search(line)
        if glued:
            before, after = line[: glued.start()].strip(), line[glued.end() :].strip()
            if before and not (title and _same_text(before, title)):
                body.append(before)
            caption, rest = _split_caption(after)
            if caption:
                captions.append(caption)
            if rest:
                body.append(rest)
            continue
        inline = _INLINE_CREDIT.match(line)
        if inline:
            captions.append(inline["caption"].strip())
            body.append(inline["rest"].strip())
            continue
        if _CREDIT.search(line) and len(line) < 400:
            captions.append(line)
            continue
        body.append(line)
    return title, body, captions, header


def _merge_header(header: Header, h: Header) -> bool:
    """Fill the header's unknown fields from ``h``; False when ``h`` contradicts what is known
    (a second date, a second outlet: then the line is more likely body text)."""
    for name in ("outlet", "author", "published"):
        new, old = getattr(h, name), getattr(header, name)
        if new is not None and old is not None and new != old:
            return False
    for name in ("outlet", "author", "published"):
        if getattr(h, name) is not None:
            setattr(header, name, getattr(h, name))
    return True


def _split_caption(text: str) -> tuple[str, str]:
    m = re.search(r"\((?:Ảnh|Nguồn|Photo)[^()]{0,120}\)", text, re.IGNORECASE)
    if m:
        return text[: m.end()].strip(), text[m.end() :].strip()
    return text.strip(), ""


def _same_text(a: str, b: str) -> bool:
    fa, fb = " ".join(fold(a).split()), " ".join(fold(b).split())
    return fa == fb or fb.startswith(fa) or fa.startswith(fb)


# ---------------------------------------------------------------------------
# loaders


def _html_parts(html: str, url: str | None = None) -> tuple[str | None, str, Header]:
    import trafilatura
    from trafilatura.settings import set_date_params

    extracted = trafilatura.bare_extraction(
        html, url=url, include_comments=False, include_tables=True, include_images=False, with_metadata=True,
        date_extraction_params=set_date_params(extensive=False),
    )
    if extracted is None:
        raise DocumentError("no article text found in the HTML")
    data = extracted if isinstance(extracted, dict) else extracted.as_dict()
    text = data.get("text") or ""
    if not text.strip():
        raise DocumentError("no article text found in the HTML")
    title = data.get("title")
    if not title:
        m = re.search(r"<title[^>]*>(.*?)</title>", html, re.IGNORECASE | re.DOTALL)
        title = m.group(1).strip() if m else None
    # trafilatura (htmldate) reads article:published_time, JSON-LD, <time> and the URL; with
    # the extensive search off it does not guess from dates mentioned in the text
    date = data.get("date")
    return title, text, Header(outlet=data.get("sitename") or None, author=data.get("author") or None,
                               published=parse_date(date) if date else None)


def load_document(path: Path, doc_id: str | None = None) -> Document:
    """Read, clean and describe one article file. Raises DocumentError with a reason."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"unsupported file type '{suffix or path.name}'")
    raw, data = read_text(path)
    if suffix in {".html", ".htm"}:
        title, body, captions, header = _html_article(raw)
    else:
        title, body, captions, header = clean_news_text(raw, has_title_line=True)
    return _document(title, body, captions, header, data, doc_id or path.stem, str(path.resolve()), path.stem)


def load_html_document(data: bytes, source: str, doc_id: str, charset: str | None = None) -> Document:
    """An article page fetched from ``source`` (its URL), cleaned like an .html file.

    ``charset``: the encoding the server declared (UTF-8 when unset)."""
    if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        try:
            data_text = data.decode(charset)
        except (LookupError, UnicodeDecodeError) as exc:
            raise DocumentError(f"page not decodable as its declared charset {charset!r}") from exc
        raw = decode_text(data_text.encode("utf-8"), "page")
    else:
        raw = decode_text(data, "page")
    title, body, captions, header = _html_article(raw, url=source)
    return _document(title, body, captions, header, data, doc_id, source, doc_id)


def _html_article(raw: str, url: str | None = None) -> tuple[str | None, list[str], list[str], Header]:
    title, text, page = _html_parts(raw, url)
    t2, body, captions, header = clean_news_text(text, has_title_line=False)
    title = nfc(title) if title else t2
    header = Header(outlet=page.outlet or header.outlet, author=page.author or header.author,
                    published=page.published or header.published or (date_in_url(url) if url else None))
    return title, body, captions, header


_URL_DATE = (
    re.compile(r"/((?:19|20)\d{2})[/-](\d{1,2})[/-](\d{1,2})(?:/|[-_.]|$)"),  # /2021/12/15/ or /2021-12-15-
    re.compile(r"[/_-]((?:19|20)\d{2})(\d{2})(\d{2})(?:\d{0,9})(?:[/_.-]|$)"),  # -20211215 or /20211215093000.htm
)


def date_in_url(url: str) -> str | None:
    """A publication date written in an article's URL path ("/2021/12/15/", "-20211215.html"), when
    the page's metadata and header say none; a plausible date only."""
    import datetime as dt
    from urllib.parse import urlparse

    path = urlparse(url).path
    for pattern in _URL_DATE:
        for m in pattern.finditer(path):
            y, mo, d = (int(x) for x in m.groups())
            try:
                day = dt.date(y, mo, d)
            except ValueError:
                continue
            if day <= dt.date.today():
                return day.isoformat()
    return None


def _document(title: str | None, body: list[str], captions: list[str], header: Header, data: bytes,
              doc_id: str, source: str, fallback_title: str) -> Document:
    if body and title and _same_text(body[0], title) and len(body[0]) <= len(title) + 2:
        body = body[1:]  # an HTML page's <h1>, or a title repeated on the next line
    if not body:
        raise DocumentError("no article text left after cleanup")
    title = nfc(title or fallback_title)
    body_text = "\n\n".join(body)
    text = body_text + ("\n\n" + "\n\n".join(captions) if captions else "")
    return Document(
        id=doc_id,
        title=title,
        source=source,
        text=text,
        body_end=len(body_text),
        sha256=hashlib.sha256(data).hexdigest(),
        author=nfc(header.author) if header.author else None,
        date=header.published,
        outlet=nfc(header.outlet) if header.outlet else None,
        language=detect_text_language(f"{title}\n{body_text}"),
    )


def discover(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders (recursively). Returns (supported files, skipped with reason)."""
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for p in paths:
        if not p.exists():
            skipped.append((p, "no such file or folder"))
            continue
        candidates = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
        for f in candidates:
            if any(part.startswith(".") for part in f.relative_to(p).parts) if p.is_dir() else False:
                continue  # hidden files and folders inside a scanned folder
            rf = f.resolve()
            if rf in seen:
                continue
            seen.add(rf)
            if f.suffix.lower() in SUPPORTED_SUFFIXES:
                files.append(f)
            else:
                skipped.append((f, f"unsupported file type '{f.suffix or f.name}'"))
    return files, skipped
