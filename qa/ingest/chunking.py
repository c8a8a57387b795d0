"""Token-aware chunking on sentence and paragraph boundaries, with overlap and offsets."""

from __future__ import annotations

import re

from qa.language import detect_text_language
from qa.schema import Chunk, Document
from qa.text import get_encoding, sentence_spans


def chunk_id(doc: Document, position: int) -> str:
    # The content hash is part of the id: a changed file never overwrites chunks in place,
    # so the old version stays whole until the new one is committed.
    return f"{doc.id}:{doc.sha256[:12]}:{position}"


def chunk_document(doc: Document, chunk_tokens: int = 256, overlap: int = 48, encoding: str = "cl100k_base") -> list[Chunk]:
    """Pack sentences into chunks of at most ``chunk_tokens`` tokens.

    A chunk never crosses from body into captions, prefers to end at a paragraph end,
    and starts with the last sentences of the previous chunk (up to ``overlap`` tokens)
    when it continues the same paragraph. Sentences longer than a chunk are split at
    token boundaries.
    """
    enc = get_encoding(encoding)
    chunks: list[Chunk] = []
    regions = [(0, doc.body_end, "body")]
    if doc.body_end < len(doc.text):
        regions.append((doc.body_end, len(doc.text), "caption"))
    for r_start, r_end, kind in regions:
        if kind == "caption":
            # one chunk per caption: they are separate, short, and tagged
            for m in re.finditer(r"[^\n]+", doc.text[r_start:r_end]):
                s, e = r_start + m.start(), r_start + m.end()
                chunks.append(_make(doc, len(chunks), s, e, kind, len(enc.encode(m.group(), disallowed_special=()))))
            continue
        units = _units(doc.text, r_start, r_end, enc, chunk_tokens)
        i = 0
        while i < len(units):
            j, total = i, 0
            # a heading may overflow the budget a little rather than stand alone
            budget = chunk_tokens + (units[i][2] if units[i][4] else 0)
            while j < len(units) and (total + units[j][2] <= budget or j == i):
                if j > i and units[j][4] and total >= chunk_tokens // 4:
                    break  # a section heading starts the next chunk
                total += units[j][2]
                j += 1
            # prefer to stop at a paragraph end when that keeps the chunk at least half full
            if j < len(units) and not units[j - 1][3]:
                for k in range(j - 1, i, -1):
                    if units[k - 1][3] and sum(u[2] for u in units[i:k]) >= chunk_tokens // 2:
                        j = k
                        break
            chunks.append(_make(doc, len(chunks), units[i][0], units[j - 1][1], kind, sum(u[2] for u in units[i:j])))
            if j >= len(units):
                break
            # overlap: step back over trailing sentences of the same paragraph
            k, back = j, 0
            # (never so much overlap that the next sentence no longer fits beside it)
            while (k - 1 > i and not units[k - 1][3] and back + units[k - 1][2] <= overlap
                   and back + units[k - 1][2] + units[j][2] <= chunk_tokens):
                back += units[k - 1][2]
                k -= 1
            i = k
    return chunks


MIN_LANGUAGE_CHARS = 200  # shorter chunks (captions, a last sentence) take the article's language


def _make(doc: Document, pos: int, s: int, e: int, kind: str, n: int) -> Chunk:
    text = doc.text[s:e]
    language = detect_text_language(text) if len(text) >= MIN_LANGUAGE_CHARS else doc.language
    return Chunk(chunk_id(doc, pos), doc.id, doc.title, pos, s, e, text, kind, n, language)


def _units(text: str, start: int, end: int, enc, max_tokens: int) -> list[tuple[int, int, int, bool, bool]]:
    """Sentences as (start, end, n_tokens, ends_paragraph, is_heading).

    Over-long sentences are split at clause boundaries (; : ,), then between words.
    A heading is a short one-line paragraph without final punctuation.
    """
    spans = sentence_spans(text, start, end)
    units = []
    for idx, (s, e) in enumerate(spans):
        para_end = idx + 1 == len(spans) or "\n" in text[e : spans[idx + 1][0]]
        para_start = idx == 0 or "\n" in text[spans[idx - 1][1] : s]
        n = len(enc.encode(text[s:e], disallowed_special=()))
        heading = para_start and para_end and n <= 40 and text[e - 1] not in ".!?…:;,\"”'"
        if n <= max_tokens:
            units.append((s, e, n, para_end, heading))
            continue
        pieces = _split_long(text, s, e, enc, max_tokens)
        for p_i, (ps, pe, pn) in enumerate(pieces):
            units.append((ps, pe, pn, para_end and p_i == len(pieces) - 1, False))
    return units


_CLAUSE_CUTS = (re.compile(r"(?<=[;:])\s+"), re.compile(r"(?<=,)\s+"), re.compile(r"\s+"))


def _split_long(text: str, s: int, e: int, enc, max_tokens: int, level: int = 0) -> list[tuple[int, int, int]]:
    """Split text[s:e] into pieces of at most max_tokens, at the coarsest boundary that works."""
    n = len(enc.encode(text[s:e], disallowed_special=()))
    if n <= max_tokens:
        return [(s, e, n)]
    if level >= len(_CLAUSE_CUTS):
        # a single enormous "word": halve it until every piece fits
        if e - s <= 1:
            return [(s, e, n)]
        mid = s + (e - s) // 2
        return _split_long(text, s, mid, enc, max_tokens, level) + _split_long(text, mid, e, enc, max_tokens, level)
    bounds, prev = [], s
    for m in _CLAUSE_CUTS[level].finditer(text, s, e):
        bounds.append((prev, m.start()))
        prev = m.end()
    bounds.append((prev, e))
    pieces: list[tuple[int, int, int]] = []
    cur_s = cur_e = None
    for bs, be in bounds:
        if cur_s is None:
            cur_s, cur_e = bs, be
            continue
        cand = len(enc.encode(text[cur_s:be], disallowed_special=()))
        if cand <= max_tokens:
            cur_e = be
        else:
            pieces.extend(_split_long(text, cur_s, cur_e, enc, max_tokens, level + 1))
            cur_s, cur_e = bs, be
    if cur_s is not None:
        pieces.extend(_split_long(text, cur_s, cur_e, enc, max_tokens, level + 1))
    return pieces
