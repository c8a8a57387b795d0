"""Duplicate grouping measured on a syndicated archive (``qa eval duplicates``).

:func:`syndicate` turns an archive into one where every story comes from 2–3 outlets: each
article is kept and republished once or twice the way other outlets carry a wire story (another
outlet on the header line, the same date or a day later, the headline kept or rewritten from the
lead, the last paragraph or photo captions sometimes dropped, a credit line to the original
outlet, about 2 % of the words deleted). Seeded: the same seed writes the same files.

:func:`measure` reads the groups the ingest made (``group`` on each document) and asks the eval
items: are the copies grouped with their original, do groups join look-alike reports of other
events, do an answer's top passages or citations repeat one story, and do the citations say who
else reported it (``also_reported_by``)?
"""

from __future__ import annotations

import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from qa.eval.items import EvalItem

ARTICLE_SUFFIXES = {".txt", ".md"}
WORD_DELETION = 0.02  # share of body words a copy loses
EVENT_DAYS = 7  # two originals published further apart than this are reports of different events

_VI_OUTLETS = (("Báo", "Nhật báo", "Thời báo", "Tin nhanh", "Bản tin", "Tạp chí"),
               ("Sao Mai", "Hoa Sen", "Phù Sa", "Chân Trời", "Ánh Dương", "Hướng Dương", "Tầm Nhìn", "Bình Minh",
                "Nhịp Cầu", "Mái Đình"))
_EN_OUTLETS = (("Lotus", "Riverside", "Harbour", "Meridian", "Evergreen", "Lantern", "Compass", "Summit", "Bayview",
                "Northstar"),
               ("Herald", "Courier", "Dispatch", "Gazette", "Chronicle", "Post", "Tribune", "Observer"))
# a photo caption or credit standing as a paragraph: "… (Ảnh: Ngô Linh).", "… Ảnh: NCHMF", "… (Photo: VNA)",
# "… Photo by VnExpress/Quang Huy."
_CAPTION = re.compile(r"(?i)(?:\((?:ảnh|photo)\s*:[^()]{0,80}\)|\b(?:ảnh|photo)\s*(?::|by)\s*[^.:()]{1,60})\.?\s*$")
# "7,72%" and "TP. Cần Thơ" end no clause
_CLAUSE_END = re.compile(r"[,;:](?=\s)|\s[(—–]|\s-\s|(?<![A-ZĐ][A-ZĐ])[.!?](?=\s|$)")


# --------------------------------------------------------------------------- the syndicated archive


@dataclass
class Article:
    title: str
    header: list[str]  # the lines under the title that are header lines
    outlet: str | None
    date: str | None
    paragraphs: list[str]


def read_article(text: str) -> Article:
    """Title, header lines (as :mod:`qa.ingest.header` reads them), outlet, date and paragraphs."""
    from qa.ingest.header import parse_header_line

    lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    title = lines.pop(0).lstrip("# ").strip() if lines else ""
    rest = [ln for ln in lines if ln]
    header: list[str] = []
    outlet = date = None
    while rest and len(header) < 3:
        h = parse_header_line(rest[0], first=not header)
        if h is None:
            break
        header.append(rest.pop(0))
        outlet, date = outlet or h.outlet, date or h.published
    return Article(title, header, outlet, date, rest)


def is_caption(paragraph: str) -> bool:
    return len(paragraph) <= 300 and bool(_CAPTION.search(paragraph))


def headline_from_lead(lead: str, max_words: int = 14) -> str | None:
    """A headline from the lead's first clause (a dateline "ĐỒNG NAI — " dropped); None when too short."""
    m = re.match(r"^(.{2,40}?)\s+[—–-]+\s+", lead)
    if m and m[1].upper() == m[1] and any(c.isalpha() for c in m[1]):
        lead = lead[m.end():]
    lead = re.sub(r"^\([^()]{1,20}\)\s*", "", lead)  # "(CAO) …": the outlet's tag
    words = _CLAUSE_END.split(lead, maxsplit=1)[0].split()
    if len(words) < 4:
        return None
    h = " ".join(words[:max_words]).rstrip(".,;:")
    return h[0].upper() + h[1:]


def outlet_names(language: str, rng: random.Random, n: int, avoid: set[str]) -> list[str]:
    """``n`` generated neutral outlet names, Vietnamese-looking for "vi", English ones otherwise."""
    first, second = _VI_OUTLETS if language == "vi" else _EN_OUTLETS
    names = [f"{a} {b}" if language == "vi" else f"The {a} {b}" for a in first for b in second]
    return rng.sample([x for x in names if x not in avoid], n)


def next_day(date: str | None, rng: random.Random) -> str | None:
    """The same date or one day later (a full date); a month or an unknown date stays as it is."""
    import datetime as dt

    if not date or len(date) != 10:
        return date
    return (dt.date.fromisoformat(date) + dt.timedelta(days=rng.random() < 0.5)).isoformat()


def republish(art: Article, outlet: str, language: str, rng: random.Random) -> str:
    """The text another outlet publishes for ``art``."""
    title = art.title
    lead = next((p for p in art.paragraphs if not is_caption(p)), None)
    if rng.random() < 0.5 and lead:
        title = headline_from_lead(lead) or title
    date = next_day(art.date, rng)
    paras = list(art.paragraphs)
    if len(paras) > 3 and rng.random() < 0.5:
        paras = paras[:-1]
    if rng.random() < 0.5:
        paras = [p for p in paras if not is_caption(p)] or paras
    edited = []
    for p in paras:
        words = p.split(" ")
        kept = [w for w in words if rng.random() >= WORD_DELETION]
        edited.append(" ".join(kept or words))
    if art.outlet:
        edited.append(f"(Theo {art.outlet})" if language == "vi" else f"(Source: {art.outlet})")
    head = f"{outlet} | {date}" if date else outlet
    return "\n\n".join([f"{title}\n{head}", *edited]) + "\n"


def slug(text: str) -> str:
    from qa.text import fold

    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")


def syndicate(src_dir: Path, out_dir: Path, seed: int = 0, copies: tuple[int, ...] = (1, 2)) -> dict[str, list[str]]:
    """Write every file of ``src_dir`` into ``out_dir``, each article (.txt/.md) with 1 or 2 (one of
    ``copies``, seeded) republished copies beside it. Returns original stem → copy stems."""
    from qa.language import detect_text_language

    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"not a folder: {src_dir}")
    families: dict[str, list[str]] = {}
    for f in sorted(p for p in src_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(src_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        dest = out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
        if f.suffix.lower() not in ARTICLE_SUFFIXES:
            continue
        art = read_article(f.read_text(encoding="utf-8-sig"))
        if not art.paragraphs:
            continue
        rng = random.Random(f"{seed}:{rel.as_posix()}")
        language = detect_text_language(f"{art.title}\n" + "\n".join(art.paragraphs))
        names = outlet_names(language, rng, rng.choice(copies), {art.outlet or ""})
        families[f.stem] = []
        for name in names:
            stem = f"{f.stem}--{slug(name)}"
            (dest.parent / f"{stem}{f.suffix}").write_text(republish(art, name, language, rng), encoding="utf-8")
            families[f.stem].append(stem)
    return families


# --------------------------------------------------------------------------- the measurement


def _days_apart(a: str | None, b: str | None) -> int | None:
    """Days between two publication dates' spans (0 when they overlap); None when one is unknown."""
    import datetime as dt

    from qa.filters import date_span

    sa, sb = date_span(a), date_span(b)
    if not sa or not sb:
        return None

    def day(x: int) -> int:
        return dt.date(x // 10000, x // 100 % 100, x % 100).toordinal()

    return max(0, day(max(sa[0], sb[0])) - day(min(sa[1], sb[1])))


def _pair_figures(prints: dict[str, Any], texts: Callable[[str], str | None], a: str, b: str) -> dict:
    """What the grouping rule sees of a pair: estimated and exact shingle Jaccard, article cosine."""
    from datasketch import MinHash

    from qa.ingest.duplicates import NUM_PERM, SCHEME, shingles

    out: dict[str, Any] = {"a": a, "b": b}
    pa, pb = prints.get(a), prints.get(b)
    if pa is not None and pb is not None:
        ma = MinHash(num_perm=NUM_PERM, seed=1, hashvalues=pa.hashvalues, scheme=SCHEME)
        mb = MinHash(num_perm=NUM_PERM, seed=1, hashvalues=pb.hashvalues, scheme=SCHEME)
        out["jaccard_estimate"] = round(float(ma.jaccard(mb)), 3)
        if pa.vector is not None and pb.vector is not None:
            out["cosine"] = round(float(np.dot(pa.vector, pb.vector)), 3)
        out["languages"] = [pa.language, pb.language]
    ta, tb = texts(a), texts(b)
    if ta is not None and tb is not None:
        sa, sb = shingles(ta), shingles(tb)
        out["jaccard"] = round(len(sa & sb) / max(1, len(sa | sb)), 3)
        out["containment"] = round(len(sa & sb) / max(1, min(len(sa), len(sb))), 3)
    return out


def _body_reader(manifest: dict) -> Callable[[str], str | None]:
    """doc id → its body text as the ingest read it (from its file), for the exact Jaccard."""
    from qa.ingest.documents import load_document

    cache: dict[str, str | None] = {}

    def body(doc_id: str) -> str | None:
        if doc_id not in cache:
            rec = manifest.get(doc_id)
            try:
                cache[doc_id] = load_document(Path(rec.source), doc_id).body if rec else None
            except Exception:
                cache[doc_id] = None
        return cache[doc_id]

    return body


def _repeats(doc_ids: list[str], key: dict[str, str]) -> bool:
    """Two different articles with the same key (family or group) among ``doc_ids``."""
    seen: dict[str, str] = {}
    for d in dict.fromkeys(doc_ids):
        k = key.get(d)
        if k is None:
            continue
        if k in seen and seen[k] != d:
            return True
        seen[k] = d
    return False


def measure(engine: Any, families: dict[str, list[str]], items: list[EvalItem], k: int = 5,
            on_item: Callable[[], None] | None = None) -> dict:
    """The grouping of a syndicated archive ingested into ``engine``'s index, and what the answers
    to the answerable ``items`` show of it (see the module docstring)."""
    from qa.answer.followup import condense
    from qa.ingest.duplicates import DuplicateIndex
    from qa.ingest.pipeline import duplicates_path

    man = engine.store.manifest(refresh=True)
    group = {d: r.group for d, r in man.items() if r.group}
    fams = {o: [o, *cs] for o, cs in families.items()}
    family = {m: o for o, ms in fams.items() for m in ms if m in man}
    dups = DuplicateIndex(duplicates_path(engine.settings))
    try:
        pl = dups.all()
        prints = {p.doc_id: p for p in pl}
        edges = [(pl[i].doc_id, pl[j].doc_id) for i, j in DuplicateIndex.pairs(pl)]
    finally:
        dups.close()
    body = _body_reader(man)

    # ---- copies grouped with their original, whole families in one group
    pairs, missed = 0, []
    whole = n_fam = 0
    copy_jaccard: list[float] = []
    for o, ms in fams.items():
        present = [m for m in ms if m in man]
        if o not in man or len(present) < 2:
            continue
        n_fam += 1
        whole += group.get(o) is not None and all(group.get(m) == group[o] for m in present)
        for c in present[1:]:
            pairs += 1
            fig = _pair_figures(prints, body, o, c)
            copy_jaccard.append(fig.get("jaccard_estimate", 0.0))
            if group.get(o) is None or group.get(c) != group.get(o):
                missed.append(fig)

    # ---- groups that join several families: same event (list) or look-alikes of other events (count)
    members: dict[str, list[str]] = {}
    for d, g in group.items():
        members.setdefault(g, []).append(d)
    mixed, lookalike = [], 0
    for g, ms in sorted(members.items()):
        fs = sorted({family.get(d, d) for d in ms})
        if len(fs) < 2:
            continue
        far = []
        for i, a in enumerate(fs):
            for b in fs[i + 1:]:
                days = _days_apart(man[a].date if a in man else None, man[b].date if b in man else None)
                if days is not None and days > EVENT_DAYS:
                    far.append({"a": a, "b": b, "days_apart": days})
        lookalike += bool(far)
        links = [_pair_figures(prints, body, a, b) for a, b in edges
                 if group.get(a) == g and family.get(a, a) != family.get(b, b)]
        mixed.append({"group": g, "different_events": far, "links": links,
                      "families": {f: [{"doc_id": d, "title": man[d].title, "outlet": man[d].outlet,
                                        "published": man[d].date, "language": man[d].language}
                                       for d in sorted(ms) if family.get(d, d) == f] for f in fs}})

    # ---- the answers: repeats in the top-k and the citations, hits by family, also_reported_by
    rows = []
    for it in items:
        if it.unanswerable:
            continue
        query = condense(it.question, it.history, it.lang or "en") if it.history else it.question
        top = [p.doc_id for p in engine.retriever.search(query, k=k)]
        res = engine.ask(it.question, history=it.history)
        cites = res.get("citations") or []
        want = {family.get(s, s) for s in it.expected_sources}
        with_copies = [c for c in cites if sum(m in man for m in fams.get(family.get(c["doc_id"], ""), [])) > 1]
        rows.append({
            "id": it.id, "top": top, "cited": [c["doc_id"] for c in cites], "refused": bool(res.get("refused")),
            "top_family_repeat": _repeats(top, family), "top_group_repeat": _repeats(top, group),
            "cited_family_repeat": _repeats([c["doc_id"] for c in cites], family),
            "cited_group_repeat": _repeats([c["doc_id"] for c in cites], group),
            "hit@1": (bool(top) and family.get(top[0], top[0]) in want) if want else None,
            f"hit@{k}": any(family.get(d, d) in want for d in top) if want else None,
            "also_reported_by": (all(c.get("also_reported_by") for c in with_copies) if with_copies else None),
            "also_reported_by_complete": (all({a["doc_id"] for a in c.get("also_reported_by") or []}
                                              >= {m for m in fams[family[c["doc_id"]]] if m in man and m != c["doc_id"]}
                                              for c in with_copies) if with_copies else None),
        })
        if on_item:
            on_item()

    def share(key: str) -> float | None:
        vals = [r[key] for r in rows if r[key] is not None]
        return round(sum(vals) / len(vals), 3) if vals else None

    return {
        "documents": len(man),
        "families": len(families),
        "copies": sum(len(cs) for cs in families.values()),
        "groups": len(members),
        "copy_recall": round(1 - len(missed) / pairs, 3) if pairs else None,
        "family_recall": round(whole / n_fam, 3) if n_fam else None,
        "copy_jaccard": {"min": round(min(copy_jaccard), 3), "median": round(float(np.median(copy_jaccard)), 3)}
        if copy_jaccard else None,
        "missed_copies": missed,
        "mixed_groups": len(mixed),
        "lookalike_groups": lookalike,
        "mixed": mixed,
        "items": len(rows),
        "top_family_repeats": sum(r["top_family_repeat"] for r in rows),
        "top_group_repeats": sum(r["top_group_repeat"] for r in rows),
        "cited_family_repeats": sum(r["cited_family_repeat"] for r in rows),
        "cited_group_repeats": sum(r["cited_group_repeat"] for r in rows),
        "hit@1": share("hit@1"),
        f"hit@{k}": share(f"hit@{k}"),
        "answers_with_copies": sum(r["also_reported_by"] is not None for r in rows),
        "also_reported_by": share("also_reported_by"),
        "also_reported_by_complete": share("also_reported_by_complete"),
        "k": k,
        "per_item": rows,
    }
