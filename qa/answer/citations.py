"""Citation markers: verification, renumbering, and the citation objects every face shows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.answer.retrieval import Passage

MARKER = re.compile(r"\[(\d{1,3})\]")
MARKER_GROUP = re.compile(r"(?:\s*\[\d{1,3}\])+")  # a run of markers (``match(text, pos)``: at a position)


@dataclass(frozen=True)
class MarkedSentence:
    """One sentence of an answer and the markers that cite it. Markers opening a sentence cite
    the one before ("Fact. [1] Next."): ``trailing`` are those opening the next sentence."""

    body_start: int  # after the markers opening the sentence
    end: int
    drop_end: int  # with the trailing markers (what to cut to drop the sentence and its markers)
    body: str  # answer[body_start:end], inner markers kept
    inner: tuple[int, ...]
    trailing: tuple[int, ...]

    @property
    def cites(self) -> list[int]:
        return [*self.inner, *self.trailing]

    @property
    def text(self) -> str:
        return MARKER.sub("", self.body).strip()


def marked_sentences(answer: str) -> list[MarkedSentence]:
    """Every sentence of an answer with its markers: the one reading of the marker convention
    that verification, support scores and the LLM checks share."""
    from qa.text import sentence_spans

    spans = sentence_spans(answer)
    out: list[MarkedSentence] = []
    for i, (a, b) in enumerate(spans):
        lead = MARKER_GROUP.match(answer, a)
        body_start = lead.end() if lead else a
        body = answer[body_start:b]
        nxt = MARKER_GROUP.match(answer, spans[i + 1][0]) if i + 1 < len(spans) else None
        out.append(MarkedSentence(body_start, b, nxt.end() if nxt else b, body,
                                  tuple(int(n) for n in MARKER.findall(body)),
                                  tuple(int(n) for n in MARKER.findall(nxt.group())) if nxt else ()))
    return out


def finalize(answer: str, passages: list[Passage], quotes: dict[int, str] | None = None) -> tuple[str, list[dict], dict]:
    """Check and renumber the [n] markers of ``answer`` against ``passages`` (1-based).

    Markers that point at no passage are dropped; the remaining ones are renumbered in
    order of first use, and exactly the cited passages are returned as citations.
    Returns (answer, citations, report) where report lists what was dropped.
    """
    mapping: dict[int, int] = {}
    dropped: list[int] = []

    def sub(m: re.Match) -> str:
        n = int(m.group(1))
        if not 1 <= n <= len(passages):
            dropped.append(n)
            return ""
        if n not in mapping:
            mapping[n] = len(mapping) + 1
        return f"[{mapping[n]}]"

    text = MARKER.sub(sub, answer)
    text = re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", text)  # "[1] [1]" → "[1]"
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    citations = []
    for old, new in sorted(mapping.items(), key=lambda kv: kv[1]):
        p = passages[old - 1]
        citations.append(
            {
                "n": new,
                "doc_id": p.doc_id,
                "title": p.title,
                "source": p.source,
                "chunk_id": p.chunk_id,
                "text": p.text,
                "quote": (quotes or {}).get(old, ""),
                "start": p.meta.get("start"),
                "end": p.meta.get("end"),
                "score": round(float(p.score), 4),
                "published": p.meta.get("date"),
                "outlet": p.meta.get("outlet"),
                "also_reported_by": list(p.meta.get("also_reported_by") or []),
            }
        )
    return text, citations, {"dropped_markers": dropped}


def markers(answer: str) -> list[int]:
    return [int(n) for n in MARKER.findall(answer)]


def is_consistent(answer: str, citations: list[dict]) -> bool:
    """Every [n] in the answer has a citation and every citation is used."""
    used = set(markers(answer))
    have = {c["n"] for c in citations}
    return used == have


# --------------------------------------------------------------------------- claim support

_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
_CONNECTORS = {"of", "and", "for", "the", "và", "của", "de", "van", "von"}
_TITLES = {"ông", "bà", "anh", "chị", "mr", "mrs", "ms", "dr", "theo", "according"}  # not part of the name


def name_runs(text: str) -> list[str]:
    """Runs of capitalised words (names of people, organisations, places), joined by connectors
    ("Bank of Vietnam", "Bộ Tài nguyên và Môi trường" → "Bộ Tài", "Môi"…); the text's first word
    alone is not a name."""
    words = list(_WORD.finditer(text))
    runs: list[list[str]] = []
    cur: list[str] = []
    pending: list[str] = []
    for i, m in enumerate(words):
        w = m.group()
        if w[:1].isupper():
            if cur and pending:
                cur.extend(pending)
            pending = []
            cur.append(w)
        elif cur and w.lower() in _CONNECTORS and not pending:
            pending = [w]
        else:
            if cur:
                runs.append(cur)
            cur, pending = [], []
    if cur:
        runs.append(cur)
    out = []
    for run in runs:
        if len(run) == 1 and words and run[0] == words[0].group():
            continue
        while run and run[0].lower().rstrip(".") in _TITLES:
            run = run[1:]
        if run:
            out.append(" ".join(run))
    return out


_PARENS = re.compile(r"\([^()]*\)")


def claim_terms(sentence: str) -> set[str]:
    """The names and numbers a sentence states (folded, analysed): what its citation must hold.
    Parentheses (translations the prompt allows) and the sentence's first word are left out."""
    from qa.index.keyword import analyse

    body = re.sub(r"['’]s\b", "", MARKER.sub(" ", _PARENS.sub(" ", sentence))).strip()  # Vietnam's → Vietnam
    out: set[str] = set()
    skip = {"va", "cua", "of", "and", "for", "the", "de", "van", "von"}
    for run in name_runs(body):
        out.update(t for t in analyse(run) if "_" not in t and t not in skip)
    out.update(t for t in analyse(" ".join(re.findall(r"\d[\d.,/%-]*", body))) if "_" not in t)
    return out


def claims(answer: str) -> list[tuple[str, list[int]]]:
    """(sentence, the markers citing it) for each sentence of an answer (:func:`marked_sentences`)."""
    return [(m.text, m.cites) for m in marked_sentences(answer) if m.text]


def attach_support(answer: str, citations: list[dict], verbatim: bool = False) -> None:
    """Give each citation ``support``: ``{"score", "verdict", "claims"}``. The score is the share
    of the names and numbers its sentences state that the cited passage holds (folded, across
    scripts, and translated: a citation's ``aliases``); ``verified`` when all are there (a quote
    copied from the passage is, by construction: ``verbatim``), ``partial`` when some are,
    ``unverified`` when none are. A model's sentences also carry ``meaning``: the lowest
    similarity of a sentence citing the passage to its closest sentence there (every one
    passed :func:`qa.answer.crosscheck.meaning_similarity`)."""
    from qa.index.keyword import analyse

    by_n = {c["n"]: c for c in citations}
    said: dict[int, list[str]] = {}
    for text, cites in claims(answer):
        for n in cites:
            said.setdefault(n, []).append(text)
    for n, c in by_n.items():
        sentences = said.get(n, [])
        if verbatim:
            c["support"] = {"score": 1.0, "verdict": "verified", "claims": len(sentences), "method": "quote"}
            continue
        aliases = c.pop("aliases", None) or []  # the answer's names this passage states translated
        meaning = c.pop("meaning", None)  # the lowest meaning similarity of its sentences (qa.answer.crosscheck)
        have = set(analyse(f"{c.get('title') or ''}\n{c.get('text') or ''}")) | set(aliases)
        wanted = set().union(*(claim_terms(s) for s in sentences)) if sentences else set()
        score = 1.0 if not wanted else len(wanted & have) / len(wanted)
        verdict = "verified" if score >= 1.0 else "partial" if score > 0 else "unverified"
        c["support"] = {"score": round(score, 3), "verdict": verdict, "claims": len(sentences),
                        "method": "names+numbers" + ("+meaning" if meaning is not None else ""),
                        **({"meaning": meaning} if meaning is not None else {}),
                        **({"translated_names": sorted(set(aliases) & wanted)} if set(aliases) & wanted else {}),
                        **({"missing": sorted(wanted - have)[:12]} if wanted - have else {})}


def says_something(answer: str) -> bool:
    """True when an answer holds words or figures besides its [n] markers ("[1] [2]" does not)."""
    return any(ch.isalnum() for ch in MARKER.sub("", answer))
