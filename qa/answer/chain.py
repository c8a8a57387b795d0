"""The answer chain (LangChain runnables), shared by the CLI, UI, API and eval.

question (+ history) → language → standalone query → retrieve → generate → verify citations

With an LLM generator (``openai:<model>``, ``llamacpp:<path>``) the extractive generator
still runs beside it (in a worker thread while a remote model writes): it gives the
relevance verdict and the fallback answer. The verify step then keeps the model's answer
only when retrieval was relevant enough and at least one of its [n] markers points at a
passage the model saw; otherwise the extractive answer (or a refusal) replaces it, and the
trace says why (``fallback_reason``; ``notice`` is the one line to show the user). A model
sentence without a marker that is (nearly) copied from one passage is cited to it first
(``attributed`` in the trace), since small local models often drop the markers. A cited
sentence whose numbers (dates, amounts, percentages) are in none of the passages it cites
is pointed at the one passage that holds them, or dropped (``ungrounded_numbers``).
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator, TypedDict

from langchain_core.runnables import Runnable, RunnableLambda

from qa.answer.extractive import Draft, ExtractiveGenerator, make_generator, refusal_message
from qa.answer.citations import attach_support, finalize, is_consistent, says_something
from qa.config import Settings
from qa.filters import Filters
from qa.index.embeddings import make_embedder
from qa.language import detect_language
from qa.answer.llm import (
    LLMError,
    LLMGenerator,
    LLMUnavailable,
    MarkerStream,
    Packed,
    attribute_uncited,
    markers_after,
    ground_names,
    ground_restated,
    ground_subject,
    ground_numbers,
    quotes_for,
    uncited_sentences,
)
from qa.answer.followup import condense, keeps_referent, standalone as standalone_question
from qa.answer.prompts import prompt_id
from qa.answer.retrieval import NewsRetriever, Passage, passage_language
from qa.index.store import Store

log = logging.getLogger(__name__)

def _norm(text: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


RELATED = 3  # articles a refusal lists
RESTORE_PASSAGES = 20  # passages whose wording restores a question typed without diacritics or capitals


def related_articles(passages: list[Passage], n: int = RELATED) -> list[dict]:
    """The closest articles among the retrieved passages, best first, one entry per article: what
    a refusal offers instead of a dead end (titles, dates, links; never [n] markers)."""
    out: list[dict] = []
    seen: set[str] = set()
    for p in passages:
        if p.doc_id in seen or p.meta.get("kind") == "header":
            continue
        seen.add(p.doc_id)
        out.append({"doc_id": p.doc_id, "title": p.title, "published": p.meta.get("date"),
                    "outlet": p.meta.get("outlet"), "source": p.source})
        if len(out) >= n:
            break
    return out


@dataclass
class Turn:
    """One question on its way through the chain. Each step reads and fills its own fields:

    ============  ===========================================  ==========================================
    step          reads                                        fills
    ============  ===========================================  ==========================================
    prepare       the request: question, history, language,    ``question`` (as read: ``read_as``), ``typed``,
                                                               ``language``, ``query``, ``asked``,
                  filters, as_of                               ``condense``, ``llm_down``, ``filters``,
                                                               ``time``, ``recency``, ``resolved_question``
    retrieve      ``query``, ``language``, ``filters``,        ``passages``, ``retrieve_ms``
                  ``recency``
    generate      ``question``, ``language``, ``query``,       a question about the article itself:
                  ``passages``, ``llm_down``                   ``header_draft`` (and the header passage
                                                               first in ``passages``); extractive:
                                                               ``draft``; LLM: ``llm``,
                                                               ``packed``, ``marker_stream``,
                                                               ``llm_error``, ``extractive_draft``;
                                                               ``answer_ms``
    verify        all of the above                             the :class:`Result`
    ============  ===========================================  ==========================================
    """

    question: str  #: the user's turn, whitespace-normalised (diacritics, capitals restored when typed without: ``typed``)
    history: list[dict]  #: earlier turns, ``{"role", "content"}``
    language: str  #: "vi" | "en": the answer's language (given, or detected from the question)
    t0: float  #: perf_counter at the start (for ``timings_ms.total``)
    query: str = ""  #: the standalone query retrieval uses (the question, or the condensed follow-up)
    condense: dict = field(default_factory=dict)  #: how the follow-up was condensed (trace)
    llm_down: str | None = None  #: the LLM was unreachable while condensing: do not wait for it again
    passages: list[Passage] = field(default_factory=list)  #: retrieved, in final rank order
    retrieve_ms: float = 0.0
    draft: Draft | None = None  #: the extractive generator's draft (extractive mode)
    llm: dict = field(default_factory=dict)  #: the LLM's trace (model, tokens, timings, raw answer)
    packed: Packed | None = None  #: the passages packed into the LLM's context window
    marker_stream: MarkerStream | None = None  #: the LLM's answer, markers renumbered as it streamed
    llm_error: str | None = None  #: why the LLM failed, if it did
    extractive_draft: Draft | None = None  #: LLM mode: the extractive draft (relevance verdict, fallback)
    header_draft: Draft | None = None  #: a question about the article itself, answered from its header
    answer_ms: float = 0.0
    filters: Filters = field(default_factory=Filters)  #: what retrieval is restricted to (explicit, else from the question)
    time: dict = field(default_factory=dict)  #: the question's time words, resolved (trace)
    recency: bool = False  #: the question asks for the latest: newer articles first among the relevant
    asked: str = ""  #: what the answer addresses: a follow-up made standalone (times and ellipsis filled in), without names
    resolved_question: str = ""  #: the question (or ``asked``) with relative years/quarters/months made absolute
    typed: str = ""  #: the question as typed (differs from ``question`` when its diacritics or capitals were restored)


class Result(TypedDict):
    """What :meth:`Engine.ask` returns (and ``qa ask --json`` prints)."""

    question: str
    answer: str
    refused: bool
    language: str
    citations: list[dict]  #: ``{"n", "doc_id", "title", "source", "chunk_id", "text", "quote", "start", "end", "score"}``
    related: list[dict]  #: a refusal's closest articles ``{"doc_id", "title", "published", "outlet", "source"}`` (no markers); [] otherwise
    timings_ms: dict[str, float]  #: ``retrieve``, ``answer``, ``total``
    trace: dict


# why a model's answer was replaced when every cited sentence of it was dropped: (trace reason, notice)
_DROPPED_ALL = {
    "names": ("the model's cited names are not in its passages",
              "The language model cited names its passages do not contain; showing the extractive answer."),
    "numbers": ("the model's cited numbers are not in its passages",
                "The language model cited figures its passages do not contain; showing the extractive answer."),
    "meaning": ("the model's cited sentences do not say what its passages say",
                "The language model's cited sentences do not say what its passages say; showing the extractive answer."),
    "restated": ("the model's cited sentences only restate the question or list the passages' titles",
                 "The language model only restated the question or listed titles; showing the extractive answer."),
}


@dataclass
class Engine:
    settings: Settings
    embedder: Any
    store: Store
    retriever: NewsRetriever
    generator: Any
    extractive: ExtractiveGenerator | None = None
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    _crosscheck: Any = field(default=None, repr=False)
    _outlets_of: tuple = field(default=(None, frozenset()), repr=False)  # (manifest id and size, its outlets)

    def __post_init__(self) -> None:
        if self.extractive is None:
            self.extractive = (
                self.generator if isinstance(self.generator, ExtractiveGenerator) else ExtractiveGenerator(self.settings, self.embedder)
            )

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False) -> "Engine":
        embedder = make_embedder(settings)
        generator = make_generator(settings, embedder)  # bad --llm specs fail before the index opens
        if settings.answerability == "model" and settings.answerability_model is not None:
            from qa.answer.answerability import load_model

            if load_model(settings.answerability_model) is None:
                raise ValueError(f"QA_ANSWERABILITY_MODEL: cannot read an answerability model at "
                                 f"{settings.answerability_model} (write one with `qa eval refusal --train FILE`)")
        store = Store(settings, embedder.describe(), create=create)
        retriever = NewsRetriever.from_settings(settings, store, embedder)
        return cls(settings, embedder, store, retriever, generator)

    @property
    def uses_llm(self) -> bool:
        return isinstance(self.generator, LLMGenerator)

    @property
    def crosscheck(self):
        """The cross-language checks of a model's answer (:mod:`qa.answer.crosscheck`)."""
        if self._crosscheck is None:
            from qa.answer.crosscheck import CrossChecker

            self._crosscheck = CrossChecker(self.embedder, getattr(self.retriever, "sentvec", None))
        return self._crosscheck

    # ----------------------------------------------------------------- the chain
    def chain(self) -> Runnable:
        return (
            RunnableLambda(self._prepare, name="prepare")
            | RunnableLambda(self._retrieve, name="retrieve")
            | RunnableLambda(self._generate, name="generate")
            | RunnableLambda(self._verify, name="verify")
        )

    def ask(self, question: str, history: list[dict] | None = None, language: str | None = None, *,
            filters: Filters | None = None, as_of=None) -> Result:
        """``filters`` restrict the articles searched (:class:`qa.filters.Filters`); ``as_of`` is the
        date relative time words ("last year", "tuần trước") are resolved against (default: today)."""
        return self.chain().invoke({"question": question, "history": history or [], "language": language,
                                    "filters": filters, "as_of": as_of})

    def stream(self, question: str, history: list[dict] | None = None, language: str | None = None, *,
               filters: Filters | None = None, as_of=None) -> Iterator[dict]:
        """The one streaming API (CLI ``--stream``, UI, HTTP SSE). Events, in order:

        - ``{"type": "read_as", "question": str, "language": str}`` — only when the question was typed without
          diacritics or capitals and was restored (:meth:`read_as`): how it was read, before the
          answer, so a reader can tell at once whether the bot understood it (once at most);
        - ``{"type": "token", "text": str}`` — pieces of the answer, in order (zero or more);
        - ``{"type": "citations", "citations": [...]}`` — the verified citations (once);
        - ``{"type": "done", "result": {...}}`` — the same object :meth:`ask` returns; its
          ``answer`` is authoritative (verification may have replaced what was streamed,
          in which case ``result["trace"]["replaced_stream"]`` is true).

        With an LLM generator the tokens are the model's, as it writes them (citation
        markers already renumbered the way verification will, invented ones dropped).
        When the model produced nothing usable before failing, the tokens are those of
        the answer that replaced it, and ``replaced_stream`` stays false.
        """
        turn = self._retrieve(self._prepare({"question": question, "history": history or [], "language": language,
                                             "filters": filters, "as_of": as_of}))
        if turn.typed and turn.typed != turn.question:
            yield {"type": "read_as", "question": turn.question, "language": turn.language}
        streamed = False
        for piece in self._generate_iter(turn):
            streamed = True
            yield {"type": "token", "text": piece}
        result = self._verify(turn)
        if not streamed:
            for piece in re.findall(r"\S+\s*", result["answer"]):
                yield {"type": "token", "text": piece}
        yield {"type": "citations", "citations": result["citations"]}
        yield {"type": "done", "result": result}

    # ----------------------------------------------------------------- steps
    def _prepare(self, inp: dict) -> Turn:
        """Reads the request (question, history, language); fills ``language``, ``query``, ``condense``."""
        t0 = time.perf_counter()
        q = " ".join(str(inp.get("question", "")).split())
        if not q:
            raise ValueError("the question is empty")
        history = inp.get("history") or []
        lang = inp.get("language") or detect_language(q)
        typed = q
        q = self.read_as(q, lang, history)
        turn = Turn(question=q, history=history, language=lang, t0=t0, typed=typed)
        info: dict = {"method": "none"}
        if history:
            info["method"] = "rules"
            standalone = None
            if self.uses_llm and self.settings.llm_condense:
                t = time.perf_counter()
                try:
                    standalone = self.generator.condense(q, history)
                    info.update(method="llm", prompt=prompt_id("condense"))
                    if not keeps_referent(q, standalone, history):
                        info.update(method="rules", rejected_rewrite=standalone,
                                    fallback_reason="LLM rewrite dropped the names the follow-up refers to")
                        standalone = None
                except LLMError as exc:
                    info["fallback_reason"] = f"LLM rewrite failed: {exc}"
                    if isinstance(exc, LLMUnavailable):
                        turn.llm_down = str(exc)  # do not wait for it a second time
                except Exception as exc:  # never let the rewrite break the answer
                    log.debug("condense failed", exc_info=True)
                    info["fallback_reason"] = f"LLM rewrite failed: {type(exc).__name__}"
                info["ms"] = _ms(t)
            turn.query = standalone or condense(q, history, lang)
            turn.asked = standalone or standalone_question(q, history, lang)
            if turn.asked != q:
                info["asked"] = turn.asked  # what the answer addresses (no names added)
        else:
            turn.query = q
        turn.condense = info
        self._resolve_time(turn, inp.get("filters") or Filters(), inp.get("as_of"))
        self._resolve_outlet(turn)
        return turn

    def _resolve_outlet(self, turn: Turn) -> None:
        """An outlet of the archive that the question names as its source ("Theo VnExpress
        International, …", "According to Thanh Niên, …") restricts the search to its articles,
        as ``--outlet`` does, unless the user set an outlet filter: the answer is then that
        outlet's, or a refusal, never another outlet's figure."""
        from qa.filters import named_outlets

        if turn.filters and turn.filters.outlets:
            return
        try:
            manifest = self.store.manifest()
            key = (id(manifest), len(manifest))
            if self._outlets_of[0] != key:  # once per manifest, not per question
                self._outlets_of = (key, frozenset(rec.outlet for rec in manifest.values() if rec.outlet))
            outlets = self._outlets_of[1]
        except Exception:  # an index that cannot list its documents: no such restriction
            log.debug("listing the outlets failed", exc_info=True)
            return
        named = named_outlets(turn.asked or turn.question, outlets)
        if named:
            turn.filters = (turn.filters or Filters()).merged(Filters(outlets=tuple(named), origin="question"))

    def read_as(self, question: str, language: str, history: list[dict] | None = None) -> str:
        """The question as the chain reads it (:mod:`qa.restore`): a Vietnamese one typed without
        diacritics gets them, one typed in lower case gets its names' capitals, both from the
        wording of the passages its folded words find (the keyword index folds; a follow-up's
        previous question joins the search). Unchanged otherwise, or with ``restore_questions``
        off. The refusal evaluation reads questions the same way."""
        from qa.index.keyword import query_terms
        from qa.restore import lacks_capitals, lacks_diacritics, restore_capitals, restore_diacritics

        if not self.settings.restore_questions:
            return question
        plain = language == "vi" and lacks_diacritics(question)
        if not (plain or lacks_capitals(question)):
            return question
        last = next((h.get("content", "") for h in reversed(history or []) if h.get("role") == "user"), "")
        try:
            hits = self.store.keyword_search(query_terms(f"{last} {question}".strip()), RESTORE_PASSAGES)
        except Exception:  # a keyword index that cannot answer: the word list and frequencies still restore
            log.debug("keyword search for restoring the question failed", exc_info=True)
            hits = []
        outlets = list(dict.fromkeys(str(h.meta.get("outlet") or "") for h in hits))
        langs = [passage_language(h) for h in hits]
        if plain:
            vi = [h for h, lang in zip(hits, langs) if lang == "vi"]  # English prose's "no", "do", "the" are not it
            texts = [h.text for h in vi] + list(dict.fromkeys(str(h.meta.get("title") or "") for h in vi)) + outlets
            question = restore_diacritics(question, texts)
        # names as the passages write them (titles left out: some outlets capitalise every word)
        same = [h.text for h, lang in zip(hits, langs) if lang == language]
        other = [h.text for h, lang in zip(hits, langs) if lang != language]
        return restore_capitals(question, same, outlets, other, rare_names=bool(same))

    def _resolve_time(self, turn: Turn, explicit: Filters, as_of) -> None:
        """The question's time words (:mod:`qa.timeexpr`): relative years/quarters/months made
        absolute in the query, days/weeks into a date filter, "latest" into a recency preference.
        An explicit date filter wins over the question's."""
        import datetime as dt

        from qa.timeexpr import resolve

        if isinstance(as_of, str):
            as_of = dt.date.fromisoformat(as_of)
        as_of = as_of or dt.date.today()
        res = resolve(turn.query, as_of, turn.language)
        turn.resolved_question = resolve(turn.asked or turn.question, as_of, turn.language).query
        info = {"as_of": as_of.isoformat(), **res.as_json()} if res.refs else {}
        if res.query != turn.query:
            turn.query = res.query
        asked = Filters(res.since, res.until, origin="question") if (res.since or res.until) else Filters()
        if asked and (explicit.since or explicit.until):
            info["question_filter_ignored"] = "an explicit date filter wins"
            asked = Filters()
        turn.filters = explicit.merged(asked) if explicit else asked
        turn.recency = res.recency
        turn.time = info

    def _retrieve(self, turn: Turn) -> Turn:
        """Reads ``query``, ``language``; fills ``passages``, ``retrieve_ms``."""
        t = time.perf_counter()
        turn.passages = self.retriever.search(turn.query, language=turn.language, filters=turn.filters or None,
                                              recency=turn.recency)
        turn.retrieve_ms = (time.perf_counter() - t) * 1000
        return turn

    def _generate(self, turn: Turn) -> Turn:
        """Runs :meth:`_generate_iter` to the end."""
        for _ in self._generate_iter(turn):
            pass
        return turn

    def _generate_iter(self, turn: Turn) -> Iterator[str]:
        """Runs the generator; yields display text as an LLM writes it (nothing for extractive).

        Reads ``question``, ``language``, ``query``, ``passages``, ``llm_down``; fills ``draft`` (extractive
        generator) or ``llm``, ``packed``, ``marker_stream``, ``llm_error`` and ``extractive_draft`` (LLM), and ``answer_ms``.
        """
        t = time.perf_counter()
        if self._header_answer(turn):
            turn.answer_ms = (time.perf_counter() - t) * 1000
            return
        passages = turn.passages
        args = (turn.resolved_question or turn.question, turn.language, passages)
        if not self.uses_llm:
            # retrieval used the standalone query; the answer addresses the question as the user
            # meant it (a follow-up's times and ellipsis filled in from the conversation)
            turn.draft = self.generator.generate(*args)
            turn.answer_ms = (time.perf_counter() - t) * 1000
            return
        gen: LLMGenerator = self.generator
        info: dict = {"model": gen.name}
        turn.llm = info
        future = None
        if passages and gen.concurrent:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-extractive")
            future = self._pool.submit(self.extractive.generate, *args)
        if not passages:
            info["skipped"] = "nothing retrieved"
        elif turn.llm_down:
            turn.llm_error = turn.llm_down
        else:
            standalone = turn.query if turn.query != turn.question else None
            # passages about another year, quarter or month than the one asked are not shown to
            # the model: it would list their figures beside the right one (a question about 2024
            # answered with six reports' GDP figures, each cited)
            from qa.answer.answerability import time_mismatch

            shown = [p for p in passages if not time_mismatch(args[0], p)] or passages
            if len(shown) < len(passages):
                info["other_time_left_out"] = [p.chunk_id for p in passages if p not in shown]
            messages, packed = gen.messages(turn.question, turn.language, shown, standalone)
            turn.packed = packed
            info.update(context_tokens=packed.tokens, context_budget=packed.budget, passages_packed=len(packed.passages))
            if packed.left_out:
                info["left_out"] = packed.left_out
            if packed.truncated:
                info["truncated"] = packed.truncated
            ms = MarkerStream(len(packed.passages), gen.sentinel)
            turn.marker_stream = ms
            t_llm = time.perf_counter()
            try:
                for piece in gen.stream(messages):
                    if "first_token_ms" not in info:
                        info["first_token_ms"] = _ms(t_llm)
                    out = ms.feed(piece)
                    if out:
                        yield out
                out = ms.close()
                if out:
                    yield out
                retry = self._language_retry(turn, gen, messages, ms, info)
                if retry is not None:
                    turn.marker_stream = retry
            except LLMError as exc:
                turn.llm_error = str(exc)
            except Exception as exc:  # a bug or an odd reply: the user still gets an answer
                log.debug("LLM generation failed", exc_info=True)
                turn.llm_error = f"{type(exc).__name__}: {exc}"[:200]
            info["generate_ms"] = _ms(t_llm)
            info["raw_answer"] = ms.raw
        t_ex = time.perf_counter()
        turn.extractive_draft = future.result() if future is not None else self.extractive.generate(*args)
        info["extractive_wait_ms"] = _ms(t_ex)
        turn.answer_ms = (time.perf_counter() - t) * 1000

    def _language_retry(self, turn: Turn, gen: LLMGenerator, messages: list[dict], ms: MarkerStream, info: dict):
        """An answer written in another language than the question's is asked for once more, with
        the language spelt out; returns the new answer's stream, or None when the first was fine."""
        from qa.language import written_in

        if ms.refused or not ms.canonical.strip():
            return None
        got = written_in(ms.canonical)
        if got is None or got == turn.language:
            return None
        info["wrong_language"] = got
        pr = gen.prompt
        again = [*messages, {"role": "assistant", "content": ms.raw},
                 {"role": "user", "content": pr["reminder"][turn.language]}]
        retry = MarkerStream(ms.n, gen.sentinel)
        t = time.perf_counter()
        for piece in gen.stream(again):
            retry.feed(piece)
        retry.close()
        info["language_retry_ms"] = _ms(t)
        info["raw_first_answer"] = ms.raw
        return retry

    def _header_answer(self, turn: Turn) -> bool:
        """Who wrote it / which outlet / when published: answered from the article's header
        (:mod:`qa.answer.metadata`), whatever the generator. Fills ``header_draft``."""
        from qa.answer import metadata

        fields = metadata.asked_fields(turn.question)
        if not fields or not turn.passages:
            return False
        # the story the question describes must be in the articles: "who wrote the article about
        # X" is not answered with the byline of an article about something else
        from qa.answer.answerability import drop_other_times

        # the story without what is asked about the article ("do ai viết" is no sentence of it)
        q = metadata.story_question(turn.resolved_question or turn.question)
        scored, vectors = self.extractive.scored_with_vectors(q, turn.language, turn.passages)
        scored, _ = drop_other_times(q, turn.passages, scored)  # not the misfits: the answer is the header
        ok, verdict = self.extractive.answerable(q, turn.language, turn.passages, scored, vectors)
        if not ok and metadata.names_title(turn.question, turn.passages) is not None:
            ok, verdict["title_quoted"] = True, True  # the question quotes the article's title
        if not ok:
            verdict["refusal_reason"] = "the articles do not tell the story the question describes"
            turn.header_draft = Draft(refusal_message(turn.language, verdict.get("unnamed")), True, {},
                                      {"generator": "header", "asked": fields, **verdict})
            return True
        got = metadata.answer(turn.question, turn.language, turn.passages, fields)
        if got is None:
            return False
        trace = {"generator": "header", "asked": fields, "missing": got.missing,
                 "article": (got.passage or turn.passages[0]).doc_id, "story_check": verdict}
        if got.known and got.passage is not None:
            turn.passages = [got.passage, *turn.passages]
            turn.header_draft = Draft(got.answer, False, {1: got.passage.text.split("\n", 1)[-1]}, trace)
        else:
            trace["refusal_reason"] = "the article does not state what was asked"
            turn.header_draft = Draft(got.answer, True, {}, trace)
        return True

    def _verify(self, turn: Turn) -> Result:
        """Reads the whole turn; returns the result (the object ``ask`` returns, see :class:`Result`)."""
        passages = turn.passages
        trace: dict = {"query": turn.query, "condense": turn.condense}
        if turn.typed and turn.typed != turn.question:
            trace["read_as"] = turn.question  # typed without diacritics or capitals: restored
        if turn.filters:
            trace["filters"] = turn.filters.as_json()
        if turn.time:
            trace["time"] = turn.time
        if turn.header_draft is not None:
            draft = turn.header_draft
            trace.update(draft.trace)
            answer, citations = self._finish_extractive(draft, passages, turn.language, trace)
            trace.update(answered_by="header", replaced_stream=False)
        elif not self.uses_llm:
            draft = turn.draft
            assert draft is not None
            trace.update(draft.trace)
            answer, citations = self._finish_extractive(draft, passages, turn.language, trace)
            trace.update(answered_by=draft.trace.get("generator", "extractive"), replaced_stream=False)
        else:
            answer, citations = self._verify_llm(turn, trace)
        refused = not citations
        if citations:
            # every citation says how well it backs what is said with it; quotes (extractive
            # answers, the header) are copied from their passage
            verbatim = trace.get("answered_by") in ("extractive", "header")
            attach_support(answer, citations, verbatim=verbatim)
        trace["prompts"] = {k: v for k, v in {
            "answer": trace.get("prompt"),
            "condense": turn.condense.get("prompt"),
            "refusal": prompt_id("refusal") if refused else None,
        }.items() if v}
        trace["passages"] = [
            {"chunk_id": p.chunk_id, "doc_id": p.doc_id, **p.trace} for p in passages
        ]
        total = (time.perf_counter() - turn.t0) * 1000
        return {
            "question": turn.typed or turn.question,
            "answer": answer,
            "refused": refused,
            "language": turn.language,
            "citations": citations,
            "related": related_articles(passages) if refused else [],
            "timings_ms": {
                "retrieve": round(turn.retrieve_ms, 1),
                "answer": round(turn.answer_ms, 1),
                "total": round(total, 1),
            },
            "trace": trace,
        }

    def _finish_extractive(self, draft: Draft, passages: list, language: str, trace: dict) -> tuple[str, list[dict]]:
        if draft.refused:
            return draft.answer, []
        answer, citations, report = finalize(draft.answer, passages, draft.quotes)
        trace.update(report)
        if not citations or not is_consistent(answer, citations):
            trace["refusal_reason"] = "no valid citation in the answer"
            return refusal_message(language), []
        return answer, citations

    def _verify_llm(self, turn: Turn, trace: dict) -> tuple[str, list[dict]]:
        from qa.language import written_in

        gen: LLMGenerator = self.generator
        lang = turn.language
        ex = turn.extractive_draft
        assert ex is not None
        ms = turn.marker_stream
        info = turn.llm
        trace.update(generator=gen.name, prompt=prompt_id("answer"), fallback_reason=None)
        trace["relevance"] = {k: ex.trace[k] for k in ("best_sentence_score", "threshold", "calibration_warning") if k in ex.trace}
        trace["llm"] = info
        streamed = ms.emitted if ms is not None else ""
        answer: str | None = None
        citations: list[dict] = []
        reason = notice = None
        if turn.llm_error:
            reason = f"LLM failed: {turn.llm_error}"
            notice = f"The language model failed ({turn.llm_error}); showing the extractive answer."
        elif ms is None:  # nothing retrieved: the model was not asked
            pass
        elif ex.refused:
            if not ms.refused:
                reason = "the model answered although retrieval was below the relevance threshold"
        elif ms.refused:
            # the model's NO_ANSWER is a refusal (not a cue to show the extractive answer)
            trace.update(answered_by=gen.name, fallback_reason=None, replaced_stream=False,
                         refusal_reason="the model found no answer in the passages")
            return refusal_message(lang), []
        elif written_in(ms.canonical) not in (None, lang):
            reason = "the model answered in another language, twice" if info.get("wrong_language") else \
                "the model answered in another language"
            notice = "The language model answered in another language; showing the extractive answer."
        else:
            packed = turn.packed.passages if turn.packed else []
            # "[1] Claim. [2] Claim." → "Claim [1]. Claim [2]." (else the claims would cite nothing)
            canonical = markers_after(ms.canonical.strip())
            if canonical != ms.canonical:
                trace["markers_moved"] = True
            # a sentence copied from a passage without its marker gets one (traced)
            canonical, attributed = attribute_uncited(canonical, packed)
            if attributed:
                trace["attributed"] = attributed
            # a cited sentence's numbers must be in the passages it cites (or the question)
            canonical, ungrounded = ground_numbers(canonical, packed, f"{turn.question}\n{turn.query}")
            if ungrounded:
                trace["ungrounded_numbers"] = ungrounded
            # a name that only another passage states (in its words or translated): the
            # sentence blends passages
            asked = f"{turn.question}\n{turn.query}"
            aliases = self.crosscheck.name_aliases(canonical, packed, asked)
            canonical, blended = ground_names(canonical, packed, asked, aliases)
            if blended:
                trace["misattributed_names"] = blended
                ungrounded = ungrounded + blended
            # most of a cited sentence's names and numbers missing from its passages: it is
            # about something else
            canonical, off_subject = ground_subject(canonical, packed, aliases)
            if off_subject:
                trace["off_subject"] = off_subject
                ungrounded = ungrounded + off_subject
            # a sentence that only restates the question, or lists the passages' titles, answers nothing
            canonical, restated = ground_restated(canonical, asked, packed)
            if restated:
                trace["restated_question"] = restated
                ungrounded = ungrounded + [{**r, "restated": True} for r in restated]
            # what a cited sentence says must be close to a sentence of its passage
            canonical, unsupported, meaning = self.crosscheck.ground_meaning(canonical, packed)
            if unsupported:
                trace["unsupported_meaning"] = unsupported
                ungrounded = ungrounded + unsupported
            answer, citations, report = finalize(canonical, packed, quotes_for(canonical, packed))
            trace.update(report)
            held = {p.chunk_id: a for p, a in zip(packed, aliases) if a}
            for c in citations:
                if c["chunk_id"] in meaning:
                    c["meaning"] = round(meaning[c["chunk_id"]], 3)
                if c["chunk_id"] in held:
                    c["aliases"] = sorted(held[c["chunk_id"]])
            dropped = [u for u in ungrounded if u["action"] == "dropped"]
            if citations and is_consistent(answer, citations) and not says_something(answer):
                # nothing but markers left ("[1]", "[1] [2]"): the model wrote no claim to show
                reason = "the model's answer says nothing besides its markers"
                notice = "The language model's answer held no text; showing the extractive answer."
                answer, citations = None, []
            elif not citations or not is_consistent(answer, citations):
                reason = "no valid citation in the model's answer"
                notice = "The language model's answer had no valid citation; showing the extractive answer."
                if dropped:
                    what = next((k for k in ("names", "meaning", "restated") if all(k in u for u in dropped)), "numbers")
                    reason, notice = _DROPPED_ALL[what]
                answer, citations = None, []
            else:
                if dropped:
                    notice = (f"Left out {len(dropped)} sentence(s) of the language model's answer whose figures "
                              "or names are not in the passages they cite, or that they do not say.")
                trace["answered_by"] = gen.name
                trace["uncited_sentences"] = uncited_sentences(answer)
        if answer is None:
            # the extractive answer (itself a refusal when retrieval was not relevant enough)
            trace["answered_by"] = "extractive"
            trace["fallback_prompt"] = ex.trace.get("prompt")
            if ex.refused:
                trace["refusal_reason"] = ex.trace.get("refusal_reason")
            answer, citations = self._finish_extractive(ex, turn.passages, lang, trace)
            if not citations and notice:
                notice = notice.replace("showing the extractive answer", "no passage answers the question well enough")
        trace["fallback_reason"] = reason
        if notice:
            trace["notice"] = notice
        trace["replaced_stream"] = bool(streamed.strip()) and _norm(streamed) != _norm(answer)
        return answer, citations
