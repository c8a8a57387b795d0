"""Retrieval evaluation on a SQuAD-format bilingual pair (XQuAD vi + en).

Every Vietnamese paragraph becomes its own document (id = article title + paragraph
index) and goes through the normal ingest path into an index; every question, in
Vietnamese and in English, is asked of the normal retriever; a hit is a retrieved chunk
of the gold paragraph. Used by ``qa eval retrieval``.

``--mixed`` (:func:`load_mixed`): the Vietnamese paragraphs of every other article and the
English paragraphs of the rest, so every question (asked in both languages) has its answer in
exactly one language; results are reported per (question language → passage language), the
same-language bias of a multilingual retriever shows as the gap between the slices.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

METRIC_KEYS = ("n", "recall@1", "recall@5", "mrr@10")


@dataclass
class Question:
    qid: str
    language: str
    text: str
    doc_id: str


@dataclass
class Paragraph:
    doc_id: str
    title: str
    text: str
    language: str = "vi"


def find_file(dir_: Path, lang: str) -> Path:
    hits = sorted(dir_.glob(f"xquad.{lang}*.json")) or sorted(dir_.glob(f"*.{lang}.*json")) or sorted(dir_.glob(f"*{lang}*.json"))
    if not hits:
        raise FileNotFoundError(f"no xquad.{lang}.*.json in {dir_}")
    if len(hits) > 1:
        raise ValueError(f"several {lang} files in {dir_}: {', '.join(h.name for h in hits)}")
    return hits[0]


def _doc_id(title: str, index: int) -> str:
    slug = re.sub(r"[^\w.-]+", "_", title, flags=re.UNICODE).strip("_") or "article"
    return f"{slug}-{index:03d}"


def load_pair(dir_: Path) -> tuple[list[Paragraph], list[Question]]:
    """Paragraphs of the Vietnamese file, and questions in vi and en mapped to them."""
    dir_ = Path(dir_)
    if not dir_.is_dir():
        raise FileNotFoundError(f"not a folder: {dir_}")
    vi_path, en_path = find_file(dir_, "vi"), find_file(dir_, "en")
    try:
        vi = json.loads(vi_path.read_text(encoding="utf-8"))["data"]
        en = json.loads(en_path.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not SQuAD-format JSON: {exc}") from exc
    paragraphs: list[Paragraph] = []
    questions: list[Question] = []
    gold: dict[str, str] = {}
    for art in vi:
        title = str(art.get("title", "article"))
        for i, para in enumerate(art.get("paragraphs", [])):
            pid = _doc_id(title, i)
            paragraphs.append(Paragraph(pid, title.replace("_", " "), para["context"]))
            for qa in para.get("qas", []):
                gold[qa["id"]] = pid
                questions.append(Question(qa["id"], "vi", qa["question"], pid))
    for art in en:
        for para in art.get("paragraphs", []):
            for qa in para.get("qas", []):
                if qa["id"] in gold:
                    questions.append(Question(qa["id"], "en", qa["question"], gold[qa["id"]]))
    if not paragraphs or not questions:
        raise ValueError(f"no paragraphs or questions in {dir_}")
    return paragraphs, questions


def load_mixed(dir_: Path) -> tuple[list[Paragraph], list[Question]]:
    """Vietnamese paragraphs of the even articles, English paragraphs of the odd ones (XQuAD order).

    Questions are those of :func:`load_pair` (every question in vi and en); a question's gold
    paragraph keeps its id, whichever language it is indexed in.
    """
    paragraphs, questions = load_pair(dir_)
    en = json.loads(find_file(Path(dir_), "en").read_text(encoding="utf-8"))["data"]
    by_article: dict[str, list[Paragraph]] = {}
    for p in paragraphs:
        by_article.setdefault(p.doc_id.rsplit("-", 1)[0], []).append(p)
    articles = list(by_article)
    if len(en) != len(articles):
        raise ValueError(f"the vi and en files hold {len(articles)} and {len(en)} articles: not a parallel pair")
    out: list[Paragraph] = []
    for i, (slug, paras) in enumerate(by_article.items()):
        if i % 2 == 0:
            out.extend(paras)
            continue
        art = en[i]
        en_paras = art.get("paragraphs", [])
        if len(en_paras) != len(paras):
            raise ValueError(f"article {slug}: {len(paras)} vi and {len(en_paras)} en paragraphs")
        title = str(art.get("title", slug)).replace("_", " ")
        out.extend(Paragraph(p.doc_id, title, ep["context"], "en") for p, ep in zip(paras, en_paras))
    return out, questions


def write_corpus(paragraphs: Iterable[Paragraph], dest: Path) -> dict[Path, str]:
    """One .txt per paragraph (title line, blank line, paragraph); returns file → doc id."""
    dest.mkdir(parents=True, exist_ok=True)
    ids: dict[Path, str] = {}
    for p in paragraphs:
        f = dest / f"{p.doc_id}.txt"
        f.write_text(f"{p.title}\n\n{p.text}\n", encoding="utf-8")
        ids[f.resolve()] = p.doc_id
    return ids


def score(ranked_doc_ids: list[list[str]], questions: list[Question]) -> dict:
    """recall@1, recall@5, mrr@10 over chunk ranks (a hit = a chunk of the gold paragraph)."""
    n = len(questions)
    r1 = r5 = mrr = 0.0
    for ranked, q in zip(ranked_doc_ids, questions):
        rank = next((i for i, d in enumerate(ranked[:10], 1) if d == q.doc_id), None)
        if rank is None:
            continue
        r1 += rank == 1
        r5 += rank <= 5
        mrr += 1.0 / rank
    return {"n": n, "recall@1": round(r1 / n, 4) if n else 0.0, "recall@5": round(r5 / n, 4) if n else 0.0,
            "mrr@10": round(mrr / n, 4) if n else 0.0}


def evaluate(retriever, questions: list[Question], *, on_question: Callable[[], None] | None = None,
             passage_language: dict[str, str] | None = None) -> dict:
    """Ask every question of ``retriever``; metrics per language, and with ``passage_language``
    (doc id → language of its indexed text) also per ``"<question lang>→<passage lang>"`` slice."""
    out: dict = {}
    for lang in ("vi", "en"):
        qs = [q for q in questions if q.language == lang]
        ranked = []
        for q in qs:
            ranked.append([p.doc_id for p in retriever.search(q.text, k=10, language=lang)])
            if on_question:
                on_question()
        out[lang] = score(ranked, qs)
        if passage_language:
            for plang in sorted({passage_language.get(q.doc_id, "?") for q in qs}):
                pick = [i for i, q in enumerate(qs) if passage_language.get(q.doc_id, "?") == plang]
                out[f"{lang}→{plang}"] = score([ranked[i] for i in pick], [qs[i] for i in pick])
    return out


def split_articles(questions: list[Question], fold: int, folds: int = 2) -> list[Question]:
    """Questions of every ``folds``-th article (by title order) for cross-validation."""
    titles = sorted({q.doc_id.rsplit("-", 1)[0] for q in questions})
    keep = {t for i, t in enumerate(titles) if i % folds == fold}
    return [q for q in questions if q.doc_id.rsplit("-", 1)[0] in keep]


def timed(fn, *args, **kw):
    t = time.perf_counter()
    res = fn(*args, **kw)
    return res, time.perf_counter() - t
