"""LLM answer generators: ``openai:<model>`` (any OpenAI-compatible chat endpoint) and
``llamacpp:<path.gguf>`` (a local GGUF through llama-cpp-python, an optional extra).

The generator only *writes*: the chain (:mod:`qa.answer.chain`) decides what reaches the user —
it checks the relevance verdict, verifies and renumbers the [n] markers, and falls back to
the extractive answer when the model is down, slow, or replies without valid citations.

Pieces:

- backends (``stream(messages)`` → text pieces, ``complete(messages)`` → text), both
  raising :class:`LLMError` for every failure; their libraries are imported lazily;
- :func:`pack_context` — the passages, most relevant first, delimited and numbered, cut to
  the model's window with tiktoken;
- :class:`MarkerStream` — turns the raw model text into display text as it streams:
  ``[1, 2]`` / ``[passage 3]`` → ``[1] [2]`` / ``[3]``, markers renumbered in order of first
  use (exactly as :func:`qa.answer.citations.finalize` will), invented ones dropped, ``<think>``
  blocks and the refusal sentinel held back;
- :class:`LLMGenerator` — prompts (``prompts/answer.toml``, ``prompts/condense.toml``),
  streaming, follow-up condensing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from qa.config import Settings
from qa.answer.prompts import load_prompt, prompt_id
from qa.answer.retrieval import Passage
from qa.text import count_tokens, get_encoding, sentence_spans, word_tokens


class LLMError(RuntimeError):
    """The model failed: endpoint down, timeout, error status, or a reply that is not one."""


class LLMUnavailable(LLMError):
    """The endpoint/model could not be used at all (down, timeout, error status, broken
    stream): the chain stops asking it for the rest of the question."""


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    msg = " ".join(str(exc).split())[:200]
    if "timeout" in name.lower() or "timed out" in msg.lower():
        return f"timed out ({name})"
    if "connection" in name.lower():
        return f"cannot connect ({msg or name})"
    return f"{name}: {msg}" if msg else name


# --------------------------------------------------------------------------- backends


class OpenAIBackend:
    """Any OpenAI-compatible ``/v1/chat/completions`` (OpenAI, vLLM, Ollama, llama.cpp
    server, LM Studio) through langchain-openai."""

    concurrent = True  # the model runs elsewhere: the extractive fallback can run meanwhile

    def __init__(self, model: str, settings: Settings) -> None:
        try:
            import langchain_openai  # noqa: F401
        except ImportError as exc:
            raise ValueError("the openai:<model> generator needs langchain-openai: pip install 'qa-news[openai]'") from exc
        self.model = model
        self.settings = settings
        self.name = f"openai:{model}"
        self._chat = None

    def _client(self):
        if self._chat is None:
            from langchain_openai import ChatOpenAI

            s = self.settings
            key = s.llm_api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
            try:
                self._chat = ChatOpenAI(
                    model=self.model,
                    base_url=s.llm_base_url,
                    api_key=key,
                    timeout=s.llm_timeout,
                    max_retries=0,
                    temperature=s.llm_temperature,
                    max_tokens=s.llm_max_tokens,
                    use_responses_api=False,
                )
            except Exception as exc:
                raise LLMUnavailable(f"cannot set up the OpenAI client: {_describe(exc)}") from exc
        return self._chat

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]:
        chat = self._client()
        kwargs = {"max_tokens": max_tokens} if max_tokens else {}
        try:
            for chunk in chat.stream([(m["role"], m["content"]) for m in messages], **kwargs):
                text = chunk.content if isinstance(chunk.content, str) else "".join(
                    p.get("text", "") for p in chunk.content if isinstance(p, dict)
                )
                if text:
                    yield text
        except Exception as exc:  # connection refused, timeout, 5xx, broken SSE, bad JSON …
            raise LLMUnavailable(_describe(exc)) from exc

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str:
        chat = self._client()
        kwargs = {"max_tokens": max_tokens} if max_tokens else {}
        try:
            msg = chat.invoke([(m["role"], m["content"]) for m in messages], **kwargs)
        except Exception as exc:
            raise LLMUnavailable(_describe(exc)) from exc
        if not isinstance(msg.content, str):
            raise LLMError("the model's reply is not text")
        return msg.content


class LlamaCppBackend:
    """A local GGUF model through llama-cpp-python (``pip install 'qa-news[llamacpp]'``).

    Runs in this process, so ``llm_timeout`` does not apply; the model is loaded on first use.
    """

    concurrent = False  # shares the CPU with the embedder: run the extractive check after it

    def __init__(self, path: str, settings: Settings) -> None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ValueError(f"GGUF model not found: {p}")
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise ValueError("the llamacpp:<path> generator needs llama-cpp-python: pip install 'qa-news[llamacpp]'") from exc
        self.path = p
        self.settings = settings
        self.name = f"llamacpp:{p.name}"
        self._llm = None

    def _model(self):
        if self._llm is None:
            from llama_cpp import Llama

            try:
                self._llm = Llama(
                    model_path=str(self.path),
                    n_ctx=self.settings.llm_context_window,
                    n_threads=self.settings.llm_threads or os.cpu_count() or 2,
                    verbose=False,
                )
            except Exception as exc:
                raise LLMUnavailable(f"cannot load {self.path.name}: {_describe(exc)}") from exc
        return self._llm

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]:
        llm = self._model()
        try:
            for chunk in llm.create_chat_completion(
                messages=messages, stream=True, temperature=self.settings.llm_temperature,
                max_tokens=max_tokens or self.settings.llm_max_tokens,
            ):
                text = (chunk["choices"][0].get("delta") or {}).get("content")
                if text:
                    yield text
        except Exception as exc:
            raise LLMUnavailable(_describe(exc)) from exc

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str:
        return "".join(self.stream(messages, max_tokens))


def make_backend(settings: Settings):
    spec = settings.llm.strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "openai":
        if not arg:
            raise ValueError("use openai:<model>, e.g. openai:gpt-4o-mini or openai:qwen2.5:7b-instruct")
        return OpenAIBackend(arg, settings)
    if kind == "llamacpp":
        if not arg:
            raise ValueError("use llamacpp:<path to a .gguf file>")
        return LlamaCppBackend(arg, settings)
    raise ValueError(f"unknown generator '{spec}': use extractive, openai:<model> or llamacpp:<path.gguf>")


# --------------------------------------------------------------------------- context packing

_DELIM = re.compile(r"<\s*/?\s*passage", re.IGNORECASE)


def _escape(text: str) -> str:
    """Passage text can never close its block or open a new one."""
    return _DELIM.sub(lambda m: m.group().replace("<", "‹"), text)


def passage_block(n: int, p: Passage, text: str | None = None) -> str:
    title = " ".join(_escape(p.title or "").replace('"', "'").split())
    body = _escape((p.text if text is None else text).strip())
    return f'<passage n="{n}" title="{title}">\n{body}\n</passage>'


@dataclass
class Packed:
    passages: list[Passage]  # what the model saw, in order: [n] is passages[n-1]
    blocks: list[str]
    tokens: int  # tokens of the packed blocks
    budget: int
    left_out: list[str] = field(default_factory=list)  # chunk ids that did not fit
    truncated: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(self.blocks)


def pack_context(passages: list[Passage], budget: int, encoding: str = "cl100k_base") -> Packed:
    """Passages in rank order (most relevant first) while they fit in ``budget`` tokens.

    A passage that does not fit is left out and later (shorter) ones are still tried; the
    first one is cut to the budget rather than dropped, so the model always sees something.
    """
    enc = get_encoding(encoding)
    kept: list[Passage] = []
    blocks: list[str] = []
    used = 0
    left_out: list[str] = []
    truncated: list[str] = []
    for p in passages:
        block = passage_block(len(kept) + 1, p)
        t = count_tokens(block, encoding) + 2
        if used + t <= budget:
            kept.append(p)
            blocks.append(block)
            used += t
        elif not kept and budget > 64:
            overhead = count_tokens(passage_block(1, p, ""), encoding) + 4
            ids = enc.encode(p.text, disallowed_special=())[: max(16, budget - overhead)]
            block = passage_block(1, p, enc.decode(ids))
            kept.append(p)
            blocks.append(block)
            used += count_tokens(block, encoding) + 2
            truncated.append(p.chunk_id)
        else:
            left_out.append(p.chunk_id)
    return Packed(kept, blocks, used, budget, left_out, truncated)


# --------------------------------------------------------------------------- marker stream

_GROUP = re.compile(r"[ \t]*(?:\[([^\[\]\n]{1,40})\]|【([^【】\n]{1,40})】)")
_NUMS = re.compile(
    r"^\s*(?:(?:passages?|đoạn(?: trích)?|nguồn|sources?|docs?|documents?|ref)\s*)?"
    r"\d{1,3}(?:\s*(?:,|;|and|và|&|-|–)\s*(?:(?:passages?|đoạn)\s*)?\d{1,3})*\s*$",
    re.IGNORECASE,
)
_OPEN_TAIL = re.compile(r"[ \t]*[\[【][^\[\]【】\n]{0,40}$")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


_PLACEHOLDER = re.compile(r"^\s*(?:n|k|x|i|số|so|number|citation|source|nguồn)\s*$", re.IGNORECASE)


def _numbers(content: str) -> list[int] | None:
    """The passage numbers of a citation group; [] for a placeholder the model echoed
    from the instructions ("[n]"), None when the brackets are not a citation."""
    if _PLACEHOLDER.match(content):
        return []
    if not _NUMS.match(content):
        return None
    out: list[int] = []
    for m in re.finditer(r"(\d{1,3})(?:\s*[-–]\s*(\d{1,3}))?", content):
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        rng = range(a, b + 1) if a <= b <= a + 10 else [a, b]
        out.extend(n for n in rng if n not in out)
    return out


class MarkerStream:
    """Raw model text in, display text out, incrementally.

    ``feed(piece)`` returns the new display text that is safe to show now; ``close()`` the
    rest. ``canonical`` is the whole reply with every citation group written as plain
    ``[k]`` markers in the model's numbering (what :func:`qa.answer.citations.finalize` verifies);
    the display text is that, renumbered in order of first use with markers outside
    1..``n_passages`` dropped — the same result finalize gives, so what streamed matches
    the verified answer unless verification replaces it.
    """

    def __init__(self, n_passages: int, sentinel: str = "NO_ANSWER") -> None:
        self.n = n_passages
        self.sentinel = sentinel
        self.raw = ""
        self.emitted = ""

    # pure rendering of the raw text so far; `final` releases held tails
    def _body(self, final: bool) -> tuple[str | None, bool]:
        """(text after any <think> block or None while held, refused)."""
        raw = self.raw
        s = raw.lstrip()
        if s.startswith(THINK_OPEN):
            end = s.find(THINK_CLOSE)
            if end < 0:
                return (None if not final else ""), False
            s = s[end + len(THINK_CLOSE):].lstrip()
        elif not final and THINK_OPEN.startswith(s):
            return None, False
        if s.startswith(self.sentinel):
            return "", True
        if not final and s and self.sentinel.startswith(s):
            return None, False
        return s, False

    def render(self, final: bool = False) -> tuple[str, str, bool]:
        """(display, canonical, refused) for the raw text so far."""
        body, refused = self._body(final)
        if body is None:
            return "", "", False
        if refused:
            return "", self.sentinel, True
        if not final:
            m = _OPEN_TAIL.search(body)
            if m:
                body = body[: m.start()]
            body = body.rstrip()
        mapping: dict[int, int] = {}
        disp: list[str] = []
        canon: list[str] = []
        last = 0
        last_marker: str | None = None  # the last marker shown, while only space follows it
        for m in _GROUP.finditer(body):
            content = m.group(1) if m.group(1) is not None else m.group(2)
            nums = _numbers(content)
            if nums is None:
                continue
            between = body[last : m.start()]
            if between.strip():
                last_marker = None
            disp.append(between)
            canon.append(between)
            shown: list[str] = []
            for k in nums:
                if 1 <= k <= self.n:
                    mapping.setdefault(k, len(mapping) + 1)
                    shown.append(f"[{mapping[k]}]")
            if shown and shown[0] == last_marker:  # "[1] [1]" → "[1]"
                shown = shown[1:]
            if shown:
                disp.append(" " + " ".join(shown))
                last_marker = shown[-1]
            canon.append(" " + " ".join(f"[{k}]" for k in nums) if nums else "")
            last = m.end()
        disp.append(body[last:])
        canon.append(body[last:])
        return "".join(disp), "".join(canon), False

    def feed(self, piece: str) -> str:
        self.raw += piece
        display, _, _ = self.render(False)
        return self._delta(display)

    def close(self) -> str:
        display, _, _ = self.render(True)
        return self._delta(display)

    def _delta(self, display: str) -> str:
        if display.startswith(self.emitted):
            new = display[len(self.emitted):]
            self.emitted = display
            return new
        return ""  # cannot happen with held tails; the verified answer is authoritative anyway

    @property
    def canonical(self) -> str:
        return self.render(True)[1]

    @property
    def refused(self) -> bool:
        return self.render(True)[2] or self.sentinel in self.raw


# --------------------------------------------------------------------------- quotes


def quotes_for(answer: str, passages: list[Passage]) -> dict[int, str]:
    """For each cited passage (1-based, model numbering), the passage sentence that shares
    most words (Dice) with the answer sentences citing it (names and numbers survive translation)."""
    from qa.answer.citations import MARKER

    out: dict[int, str] = {}
    cited: dict[int, set[str]] = {}
    start = 0
    words: set[str] = set()
    for m in MARKER.finditer(answer):
        piece = answer[start : m.start()]
        if piece.strip():  # consecutive markers share the text before the first one
            words = {w for w in word_tokens(piece) if len(w) > 1}
        cited.setdefault(int(m.group(1)), set()).update(words)
        start = m.end()
    for k, words in cited.items():
        if not 1 <= k <= len(passages) or not words:
            continue
        text = passages[k - 1].text
        best, best_score = "", 0.0
        for a, b in sentence_spans(text):
            sw = {w for w in word_tokens(text[a:b]) if len(w) > 1}
            shared = len(words & sw)
            score = 2 * shared / (len(words) + len(sw)) if shared >= 2 else 0.0  # Dice
            if score > best_score:
                best, best_score = text[a:b], score
        if best:
            out[k] = best
    return out


def _bigrams(text: str) -> set[tuple[str, str]]:
    t = word_tokens(text)
    return set(zip(t, t[1:]))


_LEAD = re.compile(r"^(?:\s*\[\d{1,3}\])+")


_CLOSING = re.compile(r"[.!?…;:]+\s*$")
_MARKER_GROUP = re.compile(r"(?:\s*\[\d{1,3}\])+")


def markers_after(answer: str) -> str:
    """An answer written marker first ("[1] Claim. [2] Other claim.", "[1] 288 medals [2] 98
    golds", as small models do) in the usual form ("Claim [1]. Other claim [2]."): each group of
    markers cites the text that follows it, up to the next group. Read as it is, an opening
    marker would cite the sentence before it and the first claim would cite nothing, unchecked.
    Answers that do not open with a marker are returned as they are."""
    if not _LEAD.match(answer):
        return answer
    parts: list[str] = []
    groups = list(_MARKER_GROUP.finditer(answer))
    for k, m in enumerate(groups):
        end = groups[k + 1].start() if k + 1 < len(groups) else len(answer)
        text = answer[m.end():end]
        marks = " ".join(m.group().split())
        body = text.strip()
        if not any(ch.isalnum() for ch in body):  # a group closing the text before it: "… B [2]."
            if parts:
                parts[-1] = _with_marks(parts[-1], marks) + body
            else:
                parts.append(marks + body)
            continue
        parts.append(_with_marks(body, marks))
    return " ".join(parts)


def _with_marks(text: str, marks: str) -> str:
    """``marks`` at the end of ``text``, before its closing punctuation."""
    close = _CLOSING.search(text)
    cut = close.start() if close else len(text)
    return f"{text[:cut].rstrip()} {marks}{text[cut:]}"


def answer_sentences(answer: str) -> list[tuple[int, str, bool]]:
    """(end offset, text without leading markers, cited?) per sentence of an answer; a
    marker right after a sentence's full stop ("Fact. [1] Next") cites that sentence."""
    from qa.answer.citations import marked_sentences

    return [(m.end, m.body.strip(), bool(m.cites)) for m in marked_sentences(answer) if m.body.strip()]


def uncited_sentences(answer: str) -> int:
    return sum(1 for _, body, cited in answer_sentences(answer) if not cited and len(body) > 20)


def attribute_uncited(answer: str, passages: list[Passage], min_share: float = 0.6, min_bigrams: int = 4) -> tuple[str, list[dict]]:
    """Cite the answer sentences that have no [n] but are (nearly) copied from a passage.

    Small models often copy a passage sentence and forget the marker. A sentence without a
    marker gets ``[k]`` only when at least ``min_share`` of its word bigrams (diacritics
    folded) occur in one sentence of passage k; anything less literal stays uncited, so an
    answer with no citation at all still falls back. Returns (answer, attributions).
    """
    if not passages:
        return answer, []
    psents = [(k, _bigrams(p.text[a:b])) for k, p in enumerate(passages, 1) for a, b in sentence_spans(p.text)]
    inserts: list[tuple[int, int, float]] = []
    for b, body, cited in answer_sentences(answer):
        if cited:
            continue
        bi = _bigrams(body)
        if len(bi) < min_bigrams:
            continue
        best_k, best = 0, 0.0
        for k, pb in psents:
            share = len(bi & pb) / len(bi)
            if share > best:
                best_k, best = k, share
        if best >= min_share:
            inserts.append((b, best_k, round(best, 3)))
    out = answer
    for end, k, _ in sorted(inserts, reverse=True):
        out = out[:end] + f" [{k}]" + out[end:]
    return out, [{"passage": k, "bigram_share": share} for _, k, share in inserts]


_ENUM = re.compile(r"(?m)^\s*(?:[-*•]\s*)?\d{1,2}[.)]\s+")  # "1. ", "2) " list numbering


def number_keys(text: str) -> set[str]:
    """The numbers of a text as comparable keys: the significant digits of each digit group.

    Formats and languages differ ("6,5%" / "6.5%", "1.200 tỷ" / "1.2 trillion", "3 triệu" /
    "3,000,000"), so every digit group counts without its leading and trailing zeros:
    ``6,5%`` → {6, 5}; ``1.200`` → {1, 2}; ``27.9.2019`` → {27, 9, 2019}. Loose on purpose:
    it may miss an invented number, it does not flag a translated one.
    """
    return {k for k in (g.strip("0") for g in re.findall(r"\d+", text)) if k}


def ground_numbers(answer: str, passages: list[Passage], question: str = "") -> tuple[str, list[dict]]:
    """Every number in a cited sentence must be in a passage it cites.

    Invented figures (dates, amounts, percentages) are the most harmful claims a model can
    add to a cited sentence. For each sentence with markers whose numbers are not all in the
    cited passages (or the question): if one other passage the model saw holds them all, the
    markers are pointed at it; otherwise the sentence is dropped. Returns (answer, report).
    """
    return _ground(answer, passages, question, number_keys, "numbers", unknown_ok=False)


def name_keys(text: str) -> set[str]:
    """The folded words of the names a text states (see :func:`qa.answer.citations.claim_terms`)."""
    from qa.answer.citations import claim_terms

    return {t for t in claim_terms(text) if not any(ch.isdigit() for ch in t)}


def ground_names(answer: str, passages: list[Passage], question: str = "",
                 aliases: list[set[str]] | None = None) -> tuple[str, list[dict]]:
    """A name in a cited sentence that only *another* passage states: the sentence blends
    passages. It gets that passage's marker when one passage holds all its names, else it is
    dropped. Names no passage states (an English rendering of a Vietnamese name, which the
    prompt allows) are left to the support score, unless ``aliases`` (per passage, the answer's
    names it states in another language: :meth:`qa.answer.crosscheck.CrossChecker.name_aliases`)
    place them in a passage. Returns (answer, report)."""
    return _ground(answer, passages, question, name_keys, "names", unknown_ok=True, aliases=aliases)


SUBJECT_SHARE = 0.5  # a cited sentence keeps at least this share of its names and numbers in its passages


def ground_subject(answer: str, passages: list[Passage], aliases: list[set[str]] | None = None,
                   min_share: float = SUBJECT_SHARE) -> tuple[str, list[dict]]:
    """A cited sentence most of whose names and numbers (the question's too) its cited
    passages do not state (in their words or translated: ``aliases``) is about something else:
    "Captain Pham Minh Chinh flew VN5001 to Long Thanh [1]" citing a passage about an expressway
    that names the person but neither the flight nor the airport. Such a sentence is dropped.
    :func:`ground_names` moves a marker when another passage holds the names; names that no
    passage states (a rendering in the answer's language) are what this share weighs. Returns
    (answer, report)."""
    from qa.answer.citations import claim_terms
    from qa.index.keyword import analyse

    if not passages:
        return answer, []
    keys = [set(analyse(f"{p.title}\n{p.text}")) for p in passages]
    for k, extra in enumerate(aliases or []):
        if k < len(keys):
            keys[k] |= extra
    edits: list[tuple[int, int]] = []
    report: list[dict] = []
    for s in cited_spans(answer, len(passages)):
        wanted = claim_terms(s["body"])
        if len(wanted) < 2:
            continue  # one name or number: the other checks weigh it
        held = set().union(*(keys[n - 1] for n in s["cites"]))
        share = len(wanted & held) / len(wanted)
        if share < min_share:
            edits.append((s["body_start"], s["drop_end"]))
            report.append({"sentence": s["text"], "names": sorted(wanted - held), "share": round(share, 3),
                           "cited": sorted(set(s["cites"])), "action": "dropped"})
    return _without(answer, edits), report


def _without(answer: str, spans: list[tuple[int, int]]) -> str:
    """``answer`` without the given (start, end) spans (whole sentences with their markers)."""
    for start, end in sorted(spans, reverse=True):
        answer = answer[:start] + answer[end:]
    return re.sub(r"[ \t]{2,}", " ", answer).strip()


def _said(text: str) -> set[str]:
    from qa.index.keyword import STOPWORDS
    from qa.text import fold

    return {w for w in re.findall(r"\w+", fold(text).lower()) if w not in STOPWORDS}


def ground_restated(answer: str, question: str, passages: list[Passage]) -> tuple[str, list[dict]]:
    """A cited sentence that says nothing the question does not ("Nam 2025 ha noi co tong cong
    bao nhieu ca sot xuat huyet [1]", "Đề thi Ngữ văn … sử dụng tác phẩm văn học [1]": a small
    model echoing the question), or that only lists the passages' titles ("Đà Nẵng tung loạt sản
    phẩm du lịch mới [1] Typhoon Noru keeps … [2] …", when the question asks for no title),
    answers nothing: it is dropped. Returns (answer, report)."""
    from qa.answer.citations import MARKER

    asked = _said(question)
    # a list of the passages' titles ("Title A [1] Title B [2] …") says nothing either, unless
    # the question asks for a title
    titles = set() if _TITLE_Q.search(question) else {" ".join(sorted(_said(p.title))) for p in passages if p.title}
    edits: list[tuple[int, int]] = []
    report: list[dict] = []
    for s in cited_spans(answer, len(passages)):
        parts = [_said(x) for x in MARKER.split(s["body"])[::2] if x.strip()]
        echoed = bool(asked) and not (set().union(*parts) - asked) if parts else False
        listed = bool(titles) and all(" ".join(sorted(x)) in titles for x in parts if x) and any(parts)
        if echoed or listed:
            edits.append((s["body_start"], s["drop_end"]))
            report.append({"sentence": s["text"], "cited": sorted(set(s["cites"])), "action": "dropped",
                           "what": "the question" if echoed else "titles"})
    return _without(answer, edits), report


_TITLE_Q = re.compile(r"(?i)\b(titles?|headlines?|tiêu đề|tựa đề|tên bài|which articles?|bài (báo|viết) nào)\b")


def cited_spans(answer: str, n_passages: int) -> list[dict]:
    """The answer's sentences that cite a passage (1…``n_passages``): ``body_start``/``end`` (the
    sentence without the markers opening it, which cite the one before), ``drop_end`` (with
    the markers that follow it), ``body``, ``text`` (without markers), ``inner`` / ``trailing``
    markers, and ``cites``."""
    from qa.answer.citations import MARKER, marked_sentences

    out: list[dict] = []
    for m in marked_sentences(answer):
        cites = [n for n in m.cites if 1 <= n <= n_passages]
        if not cites:
            continue
        text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(MARKER.sub("", m.body).split()))
        out.append({"body_start": m.body_start, "end": m.end, "drop_end": m.drop_end, "body": m.body,
                    "text": text, "inner": list(m.inner), "trailing": list(m.trailing), "cites": cites})
    return out


def _ground(answer: str, passages: list[Passage], question: str, keys_of, label: str, *, unknown_ok: bool,
            aliases: list[set[str]] | None = None) -> tuple[str, list[dict]]:
    from qa.answer.citations import MARKER

    if not passages:
        return answer, []
    if label == "names":
        from qa.index.keyword import analyse

        keys = [set(analyse(f"{p.title}\n{p.text}")) for p in passages]
        literal = set().union(*keys)
        for k, extra in enumerate(aliases or []):
            if k < len(keys):
                keys[k] |= extra
        asked = set(analyse(question))
    else:
        keys = [keys_of(f"{p.title}\n{p.text}") for p in passages]
        asked = keys_of(question)
    anywhere = set().union(*keys)
    edits: list[tuple[int, int, str]] = []
    report: list[dict] = []
    for s in cited_spans(answer, len(passages)):
        body_start, b, body = s["body_start"], s["end"], s["body"]
        inner, trailing, cites = s["inner"], s["trailing"], s["cites"]
        nums = keys_of(_ENUM.sub("", MARKER.sub(" ", body))) - asked
        if unknown_ok:
            nums &= anywhere  # only what some passage states can be misattributed
        held = set().union(*(keys[n - 1] for n in cites))
        missing = nums - held
        if not missing:
            continue
        sentence = s["text"]
        better = [k for k, ks in enumerate(keys, 1) if nums <= ks]
        if better and inner and not trailing:
            k = better[0]
            # the first marker now points at that passage; the sentence's other markers go
            first = MARKER.search(body)
            edits.append((body_start, b, body[: first.start()] + f"[{k}]" + MARKER.sub("", body[first.end():])))
            report.append({"sentence": sentence, label: sorted(missing), "cited": sorted(set(cites)), "action": f"cited [{k}]"})
            continue
        if label == "names" and not (missing & literal):
            continue  # only a translation places these names elsewhere: it may move a marker, never drop a sentence
        edits.append((body_start, s["drop_end"], ""))
        report.append({"sentence": sentence, label: sorted(missing), "cited": sorted(set(cites)), "action": "dropped"})
    out = answer
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return re.sub(r"[ \t]{2,}", " ", out).strip(), report


# --------------------------------------------------------------------------- the generator


_LABEL = re.compile(r"^\s*(?:standalone question|câu hỏi độc lập|rewritten question|question)\s*:\s*", re.IGNORECASE)


class LLMGenerator:
    """Writes answers with a chat model; see the module docstring for who checks them."""

    def __init__(self, settings: Settings, backend) -> None:
        self.settings = settings
        self.backend = backend
        self.name = backend.name
        self.prompt = load_prompt("answer")
        self.sentinel = self.prompt.get("refusal_sentinel", "NO_ANSWER")

    @property
    def concurrent(self) -> bool:
        return bool(getattr(self.backend, "concurrent", False))

    def prompt_ids(self) -> dict[str, str]:
        return {"answer": prompt_id("answer"), "condense": prompt_id("condense")}

    # -- answer
    def messages(self, question: str, language: str, passages: list[Passage], standalone: str | None = None) -> tuple[list[dict], Packed]:
        s = self.settings
        pr = self.prompt
        lang = language if language in ("vi", "en") else "en"
        system = pr["system"][lang]
        standalone_line = pr["standalone_line"].format(standalone=standalone) if standalone and standalone != question else ""
        fill = dict(language_name=pr["language_names"][lang], question=question, standalone=standalone_line, reminder=pr["reminder"][lang])
        overhead = count_tokens(system, s.tokenizer) + count_tokens(pr["user"].format(passages="", **fill), s.tokenizer) + 16
        room = s.llm_context_window - s.llm_max_tokens - overhead
        budget = max(0, int(room * 0.85))  # the model's tokenizer is not cl100k: keep a margin
        packed = pack_context(passages, budget, s.tokenizer)
        user = pr["user"].format(passages=packed.text, **fill).strip()
        return [{"role": "system", "content": system}, {"role": "user", "content": user}], packed

    def stream(self, messages: list[dict]) -> Iterator[str]:
        yield from self.backend.stream(messages)

    # -- follow-ups
    def condense(self, question: str, history: list[dict]) -> str:
        """A standalone rewrite of ``question`` given the recent turns (raises LLMError)."""
        pr = load_prompt("condense")
        lines = []
        for turn in history[-6:]:
            role = "assistant" if turn.get("role") == "assistant" else "user"
            text = re.sub(r"\s*\[\d{1,3}\]", "", " ".join(str(turn.get("content", "")).split()))
            lines.append(f"{role}: {text[:500]}")
        user = pr["user"].format(history="\n".join(lines), question=question)
        reply = self.backend.complete([{"role": "system", "content": pr["system"]}, {"role": "user", "content": user}], max_tokens=96)
        reply = re.sub(r"<think>.*?</think>", "", reply, flags=re.DOTALL)
        line = next((ln for ln in reply.splitlines() if ln.strip()), "")
        line = _LABEL.sub("", line).strip().strip('"“”\'').strip()
        if not line or len(line) > max(300, 3 * len(question)) or self.sentinel in line:
            raise LLMError(f"unusable rewrite {line[:80]!r}")
        return line
