"""The Gradio chat UI (``/``) and its compact embeddable view (``/embed``).

The only module of the project that imports gradio. Every string that comes from a
document (title, passage, quote, source) or from a user is HTML-escaped here before it
reaches the page; the markup around it is ours. The chat renders with markdown off and
LaTeX off, so article text is never interpreted as markup of any kind.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote as urlquote

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from qa.ingest.pipeline import Progress  # noqa: E402

LANGUAGES = {"Auto": None, "Tiếng Việt": "vi", "English": "en"}

TEXT = {
    "en": {"sources": "Sources", "refused": "Not in the articles", "open": "open article", "passage": "full passage",
           "related": "Closest articles", "verified": "verified", "partial": "partly supported",
           "unverified": "not supported", "read_as": "Read as"},
    "vi": {"sources": "Nguồn", "refused": "Không có trong các bài báo", "open": "xem bài báo", "passage": "cả đoạn",
           "related": "Các bài gần nhất", "verified": "đã kiểm chứng", "partial": "khớp một phần",
           "unverified": "chưa kiểm chứng", "read_as": "Câu hỏi được hiểu là"},
}

_MARKER = re.compile(r"\[(\d{1,3})\]")
_CONTEXT = 220  # characters of passage shown on each side of the quote


def esc(text: object) -> str:
    """Escape for HTML text and attribute values; newlines become <br> (no raw newline survives)."""
    s = html.escape(str(text or ""), quote=True)
    return re.sub(r"\n+", "<br>", s.replace("\r\n", "\n").replace("\r", "\n"))


def _attr(text: object) -> str:
    return html.escape(" ".join(str(text or "").split()), quote=True)


def find_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Character span of ``quote`` in ``text`` (exact, else whitespace-insensitive), or None."""
    quote = (quote or "").strip()
    if not quote or not text:
        return None
    i = text.find(quote)
    if i >= 0:
        return i, i + len(quote)
    words = quote.split()
    if not words:
        return None
    m = re.search(r"\s+".join(re.escape(w) for w in words), text)
    return (m.start(), m.end()) if m else None


def highlight(text: str, quote: str, context: int | None = None) -> str:
    """Escaped passage with the evidence sentence wrapped in <mark>; ``context`` trims around it."""
    span = find_quote(text, quote)
    if span is None:
        if context is not None and len(text) > 2 * context:
            return esc(text[: 2 * context].rstrip()) + "…"
        return esc(text)
    a, b = span
    lo, hi = 0, len(text)
    if context is not None:
        lo = max(0, a - context)
        hi = min(len(text), b + context)
        # start/end on a word boundary
        if lo > 0:
            sp = text.find(" ", lo)
            lo = sp + 1 if 0 <= sp < a else lo
        if hi < len(text):
            sp = text.rfind(" ", b, hi)
            hi = sp if sp > b else hi
    return (
        ("…" if lo > 0 else "")
        + esc(text[lo:a])
        + '<mark class="qa-quote">' + esc(text[a:b]) + "</mark>"
        + esc(text[b:hi])
        + ("…" if hi < len(text) else "")
    )


def source_link(c: dict) -> str | None:
    src = str(c.get("source") or "")
    if re.match(r"https?://", src, re.IGNORECASE):
        return src
    if c.get("doc_id"):
        return f"/api/documents/{urlquote(str(c['doc_id']), safe='')}/text"
    return None


def support_mark(c: dict, t: dict) -> str:
    """The citation's check, visible per source: ✓ verified / ⚠ partly / ✗ not supported."""
    sup = c.get("support") or {}
    verdict = sup.get("verdict")
    if verdict not in ("verified", "partial", "unverified"):
        return ""
    icon = {"verified": "✓", "partial": "⚠", "unverified": "✗"}[verdict]
    tip = f"{t[verdict]} ({sup.get('method', '')}, {sup.get('score', '')})"
    return f'<span class="qa-support qa-support-{verdict}" title="{_attr(tip)}">{icon} {esc(t[verdict])}</span>'


def render_source(c: dict, lang: str) -> str:
    t = TEXT.get(lang, TEXT["en"])
    n = int(c["n"])
    link = source_link(c)
    link_html = (
        f'<a class="qa-link" href="{_attr(link)}" target="_blank" rel="noopener noreferrer">{esc(t["open"])} ↗</a>'
        if link else ""
    )
    text = str(c.get("text") or "")
    quote = " ".join(str(c.get("quote") or "").split())
    heading = str(c.get("title") or c.get("doc_id"))
    # a quoted headline is marked where it is shown: in the source's heading
    title = f'<mark class="qa-quote">{esc(heading)}</mark>' if quote and quote == " ".join(heading.split()) else esc(heading)
    excerpt = highlight(text, str(c.get("quote") or ""), _CONTEXT)
    full = ""
    if len(text) > len(excerpt):  # the excerpt is trimmed: offer the whole passage
        full = (f'<details class="qa-full"><summary>{esc(t["passage"])}</summary>'
                f'<div class="qa-passage">{highlight(text, str(c.get("quote") or ""))}</div></details>')
    return (
        f'<div class="qa-source qa-src-{n}">'
        f'<div class="qa-source-head"><span class="qa-n">{n}</span>'
        f'<span class="qa-title">{title}</span>{support_mark(c, t)}{link_html}</div>'
        f'{_byline(c)}<div class="qa-passage">{excerpt}</div>{full}</div>'
    )


def _byline(c: dict) -> str:
    """Outlet and date of a source, and the other outlets / language versions of the same story."""
    when = " · ".join(esc(x) for x in (c.get("outlet"), c.get("published")) if x)
    also = c.get("also_reported_by") or []
    names = ", ".join(esc(" ".join(x for x in (a.get("outlet") or a.get("title") or "", a.get("published") or "") if x))
                      for a in also)
    parts = ([f'<span class="qa-when">{when}</span>'] if when else []) + \
        ([f'<span class="qa-also">also reported by · cũng đưa tin: {names}</span>'] if names else [])
    return f'<div class="qa-byline">{" — ".join(parts)}</div>' if parts else ""


def render_answer(result: dict) -> str:
    """The assistant message: answer with clickable [n] markers, then its sources."""
    lang = result.get("language") if result.get("language") in TEXT else "en"
    t = TEXT[lang]
    answer = str(result.get("answer") or "")
    restored = (result.get("trace") or {}).get("read_as")
    read_as = (f'<div class="qa-read-as">{esc(t["read_as"])}: <span lang="{lang}">{esc(restored)}</span></div>'
               if restored else "")
    if result.get("refused") or not result.get("citations"):
        related = ""
        if result.get("related"):
            items = []
            for r in result["related"]:
                link = source_link(r)
                when = " · ".join(str(x) for x in (r.get("outlet"), r.get("published")) if x)
                title = esc(r.get("title") or r.get("doc_id"))
                title_html = (f'<a class="qa-link" href="{_attr(link)}" target="_blank" rel="noopener noreferrer">{title}</a>'
                              if link else title)
                items.append(f'<li class="qa-related-item">{title_html}'
                             + (f' <span class="qa-related-when">{esc(when)}</span>' if when else "") + "</li>")
            related = (f'<div class="qa-related"><div class="qa-sources-h">{esc(t["related"])}</div>'
                       f'<ul>{"".join(items)}</ul></div>')
        return (
            f'<div class="qa-msg qa-refused">{read_as}<div class="qa-refused-title">{esc(t["refused"])}</div>'
            f"<div>{esc(answer)}</div>{related}</div>"
        )
    cites = {int(c["n"]): c for c in result["citations"]}

    def marker(m: re.Match) -> str:
        n = int(m.group(1))
        c = cites.get(n)
        if c is None:
            return m.group()
        tip = f"[{n}] {c.get('title') or ''} — {c.get('quote') or ''}"
        return f'<a class="qa-cite qa-cite-{n}" href="#" title="{_attr(tip)}" role="button">[{n}]</a>'

    body = _MARKER.sub(marker, esc(answer))
    sources = "".join(render_source(c, lang) for c in result["citations"])
    return (
        f'<div class="qa-msg">{read_as}<div class="qa-answer">{body}</div>'
        f'<div class="qa-sources"><div class="qa-sources-h">{esc(t["sources"])}</div>{sources}</div></div>'
    )


def render_streaming(text: str) -> str:
    return f'<div class="qa-msg qa-streaming">{esc(text)}<span class="qa-caret">▍</span></div>'


def render_error(message: str) -> str:
    return f'<div class="qa-msg qa-error">⚠ {esc(message)}</div>'


def render_user(text: str) -> str:
    return f'<div class="qa-user">{esc(text)}</div>'


# ----------------------------------------------------------------------------- status / upload


def status_line(service) -> str:
    h = service.health()
    emb = h["models"]["embeddings"]
    model = emb.get("model") or emb.get("spec")
    if not h["index"]["present"]:
        return f'<div class="qa-status">⚠ {esc(h.get("detail") or "no index")}</div>'
    return (
        f'<div class="qa-status">{h["index"]["documents"]} documents · {h["index"]["chunks"]} passages indexed'
        f' · embeddings: {esc(emb.get("backend") or "")} {esc(model)} · answers: {esc(h["models"]["generator"])}</div>'
    )


def header_html(service) -> str:
    return (
        "<h1>News QA · Hỏi đáp tin tức</h1>"
        "<p>Ask in Vietnamese or English. Every answer cites the passages it comes from; "
        "when the articles do not say, the assistant says so.</p>" + status_line(service)
    )


class _UploadProgress(Progress):
    def __init__(self, progress: gr.Progress) -> None:
        self.p = progress
        self.files = self.files_n = self.chunks = self.chunks_n = 0

    def files_total(self, n: int) -> None:
        self.files_n = n
        self._show()

    def file_done(self, path) -> None:
        self.files += 1
        self._show()

    def chunks_total(self, n: int) -> None:
        self.chunks_n = n
        self._show()

    def chunks_done(self, n: int) -> None:
        self.chunks += n
        self._show()

    def sentences_total(self, n: int) -> None:
        self.sentences_n = n
        self.p((getattr(self, "sentences", 0), n), desc="preparing instant answers (sentence vectors)", unit="sentences")

    def sentences_done(self, n: int) -> None:
        self.sentences = getattr(self, "sentences", 0) + n
        self.p((self.sentences, getattr(self, "sentences_n", self.sentences)), desc="preparing instant answers (sentence vectors)", unit="sentences")

    def _show(self) -> None:
        if self.chunks_n:
            self.p((self.chunks, self.chunks_n), desc=f"embedding passages ({self.files}/{self.files_n} files done)", unit="passages")
        elif self.files_n:
            self.p((self.files, self.files_n), desc="reading files", unit="files")


def _safe_name(name: str) -> str:
    base = Path(name).name
    stem, suffix = os.path.splitext(base)
    stem = re.sub(r"[^\w.-]+", "-", stem, flags=re.UNICODE).strip("-.") or "article"
    return stem[:120] + suffix.lower()


# ----------------------------------------------------------------------------- the page

CSS = """
.gradio-container {max-width: 1100px !important; margin: 0 auto !important;}
#qa-header h1 {margin: 0 0 .15rem 0; font-size: 1.45rem;}
#qa-header p {margin: 0; color: var(--body-text-color-subdued);}
.qa-status {font-size: .8rem; color: var(--body-text-color-subdued); padding-top: .3rem;}
#qa-options {align-items: center;}
#qa-language label {font-size: .85rem;}
.qa-msg {line-height: 1.55;}
.qa-answer {margin-bottom: .6rem;}
.qa-cite {display: inline-block; font-size: .78em; font-weight: 600; padding: 0 .3em; margin: 0 .1em;
  border-radius: .4em; background: var(--color-accent-soft); color: var(--color-accent) !important;
  text-decoration: none !important; cursor: pointer; vertical-align: super; line-height: 1.3;}
.qa-cite:hover {background: var(--color-accent); color: white !important;}
.qa-sources {border-top: 1px solid var(--border-color-primary); padding-top: .45rem;}
.qa-sources-h {font-size: .75rem; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
  color: var(--body-text-color-subdued); margin-bottom: .3rem;}
.qa-source {border: 1px solid var(--border-color-primary); border-radius: .5rem; padding: .45rem .6rem;
  margin: .35rem 0; background: var(--background-fill-secondary); transition: box-shadow .3s;}
.qa-source.qa-flash {box-shadow: 0 0 0 3px var(--color-accent);}
.qa-source-head {display: flex; gap: .5rem; align-items: baseline; font-size: .88rem;}
.qa-n {flex: none; font-weight: 700; color: var(--color-accent); min-width: 1.4em; text-align: center;
  background: var(--color-accent-soft); border-radius: .4em;}
.qa-title {font-weight: 600; flex: 1;}
.qa-link {flex: none; font-size: .8rem; white-space: nowrap;}
.qa-passage {font-size: .86rem; color: var(--body-text-color); margin-top: .3rem; overflow-wrap: anywhere;}
mark.qa-quote {background: #fde68a; color: #111827; padding: 0 .1em; border-radius: .2em;}
.qa-full summary {cursor: pointer; font-size: .78rem; color: var(--body-text-color-subdued); margin-top: .3rem;}
.qa-refused {border-left: 4px solid #f59e0b; padding: .25rem .7rem; background: rgba(245,158,11,.08); border-radius: .3rem;}
.qa-refused-title {font-weight: 700; color: #b45309; margin-bottom: .2rem;}
.qa-read-as {font-size: .85em; color: #6b7280; margin-bottom: .3rem;}
.qa-related ul {margin: .3rem 0 0 1rem; padding: 0;}
.qa-support {font-size: .8em; margin-left: .5rem; padding: 0 .35rem; border-radius: .25rem;}
.qa-support-verified {color: #047857; background: rgba(16,185,129,.12);}
.qa-support-partial {color: #b45309; background: rgba(245,158,11,.12);}
.qa-support-unverified {color: #b91c1c; background: rgba(239,68,68,.12);}
.qa-related-when {color: #6b7280; font-size: .85em;}
.qa-error {color: #b91c1c;}
#qa-feedback {padding: .4rem .6rem;}
.qa-feedback-ask {font-size: .88rem; margin-bottom: .3rem;}
.qa-feedback-done {font-size: .8rem; color: var(--body-text-color-subdued);}
.qa-caret {animation: qa-blink 1s steps(2) infinite; color: var(--color-accent);}
@keyframes qa-blink {50% {opacity: 0;}}
#qa-examples button {font-size: .82rem !important;}
#qa-input textarea {font-size: 1rem;}
footer {display: none !important;}
"""

# Marker clicks: open and flash the matching source card of the same message.
JS = """
() => {
  if (window.__qaCites) return; window.__qaCites = true;
  const root = () => document;
  document.addEventListener('click', (ev) => {
    const path = ev.composedPath ? ev.composedPath() : [ev.target];
    const a = path.find((el) => el && el.classList && el.classList.contains('qa-cite'));
    if (!a) return;
    ev.preventDefault(); ev.stopPropagation();
    const m = /qa-cite-(\d+)/.exec(a.className);
    const msg = a.closest('.qa-msg');
    const card = m && msg && msg.querySelector('.qa-src-' + m[1]);
    if (!card) return;
    const full = card.querySelector('details'); if (full) full.open = true;
    card.scrollIntoView({behavior: 'smooth', block: 'nearest'});
    card.classList.add('qa-flash'); setTimeout(() => card.classList.remove('qa-flash'), 1600);
  }, true);
}
"""


# ----------------------------------------------------------------------------- feedback (thumbs + comment)

FEEDBACK_TEXT = {
    "up": "Thanks! Anything to add? (optional) · Cảm ơn! Bạn muốn góp ý thêm? (không bắt buộc)",
    "down": "Thanks. What was wrong or missing? (optional) · Cảm ơn. Câu trả lời sai hay thiếu gì? (không bắt buộc)",
}


def answer_record(question: str, history: list[dict], result: dict) -> dict:
    """What a rating of this answer stores (kept in the session until the user rates it)."""
    return {"question": question, "history": list(history), "answer": result.get("answer", ""),
            "citations": result.get("citations") or [], "trace": result.get("trace"),
            "language": result.get("language"), "refused": result.get("refused")}


def feedback_ui(chatbot: gr.Chatbot, state: gr.State, settings, *, channel: str):
    """The chat's thumbs store a rating at once (``qa.app.feedback``); a box under the chat then
    takes an optional comment for that rating. Returns the handler that hides the box, and its outputs."""
    from qa.app.feedback import MAX_COMMENT_CHARS, store_for

    store = store_for(settings)
    with gr.Group(visible=False, elem_id="qa-feedback") as box:
        label = gr.HTML(padding=False, elem_id="qa-feedback-label")
        with gr.Row(equal_height=True):
            comment = gr.Textbox(show_label=False, scale=8, max_lines=4, max_length=MAX_COMMENT_CHARS,
                                 placeholder="Your comment… / Góp ý của bạn…", elem_id="qa-feedback-comment")
            send = gr.Button("Send · Gửi", scale=1, min_width=80, elem_id="qa-feedback-send")
    status = gr.HTML(padding=False, elem_id="qa-feedback-status")

    def on_like(st: dict, data: gr.LikeData):
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        rec = (st.get("answers") or {}).get(str(index))
        if rec is None:
            gr.Info("Only finished answers can be rated · Chỉ đánh giá được câu trả lời hoàn chỉnh")
            return st, gr.update(), gr.update(), gr.update(), gr.update()
        ids = dict(st.get("feedback") or {})
        row = ids.get(str(index))
        rating = "up" if data.liked is True else "down" if data.liked is False else None
        if rating is None:  # the thumb was taken back
            if row is not None:
                store.delete(row)
                ids.pop(str(index))
            return ({**st, "feedback": ids, "rating_of": None}, gr.update(visible=False), "", "",
                    '<div class="qa-feedback-done">feedback withdrawn · đã rút lại đánh giá</div>')
        if row is not None:
            store.update(row, rating=rating)
        else:
            row = store.add(rating=rating, channel=channel, **rec)["id"]
            ids[str(index)] = row
        return ({**st, "feedback": ids, "rating_of": index}, gr.update(visible=True),
                f'<div class="qa-feedback-ask qa-feedback-{rating}">{esc(FEEDBACK_TEXT[rating])}</div>', "",
                f'<div class="qa-feedback-done" data-id="{row}">rating saved (#{row}) · đã lưu đánh giá</div>')

    def on_send(text: str, st: dict):
        row = (st.get("feedback") or {}).get(str(st.get("rating_of")))
        if row is None:
            return gr.update(visible=False), "", ""
        store.update(row, comment=" ".join(str(text or "").split())[:MAX_COMMENT_CHARS])
        return (gr.update(visible=False), "",
                f'<div class="qa-feedback-done" data-id="{row}">thanks, feedback #{row} saved · cảm ơn, đã lưu góp ý</div>')

    chatbot.like(on_like, [state], [state, box, label, comment, status], api_visibility="private")
    for ev in (send.click, comment.submit):
        ev(on_send, [comment, state], [box, comment, status], api_visibility="private")

    def hide():
        return gr.update(visible=False), ""

    return hide, [box, status]


def _documents(service) -> list[dict]:
    try:
        return service.documents()
    except Exception:  # no index yet: no outlets to offer
        return []


def outlet_names(service) -> list[str]:
    """The outlets of the indexed articles, for the outlet picker (read again on every page load
    and after an upload: articles added since the server started count)."""
    return sorted({d.get("outlet") for d in _documents(service) if d.get("outlet")})


def feeds_html(service) -> str:
    """The read-only feeds panel: each feed, its last sync, status and items."""
    import datetime

    try:
        data = service.feeds()
    except Exception as exc:  # never break the page over the feed registry
        return f"<p>⚠ feeds unavailable: {esc(type(exc).__name__)}</p>"
    if not data["feeds"]:
        return "<p>No feeds. Add one with <code>qa feeds add URL</code>, then <code>qa sync</code>.</p>"

    def when(ts):
        return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "never"

    rows = []
    for f in data["feeds"]:
        error = f"<br><small>{esc(f['last_error'])}</small>" if f["last_error"] else ""
        pending = f" ({f['pending']} pending)" if f["pending"] else ""
        rows.append(f"<tr><td>{esc(f['title'] or f['url'])}<br><small>{esc(f['url'])}</small></td>"
                    f"<td>{esc(when(f['last_sync']))}</td><td>{esc(f['last_status'] or '–')}{error}</td>"
                    f"<td>{f['ingested']} / {f['items']}{pending}</td></tr>")
    rows = "".join(rows)
    return (f"<p>Last sync · Lần đồng bộ gần nhất: {esc(when(data['last_sync']))}</p>"
            "<table id='qa-feeds-table'><thead><tr><th>feed</th><th>last sync</th><th>status</th><th>ingested / items</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def build_ui(service, *, embed: bool = False) -> gr.Blocks:
    settings = service.settings

    def respond(message: str, state: dict, language: str, since: str = "", until: str = "", outlets=None):
        state = {**state, "history": list(state.get("history", [])), "display": list(state.get("display", []))}
        question = " ".join(str(message or "").split())
        if not question:
            yield gr.update(), state["display"], state
            return
        if len(str(message)) > settings.max_question_chars:
            gr.Warning(f"The question is too long ({len(str(message))} characters; the limit is {settings.max_question_chars}).")
            yield gr.update(), state["display"], state
            return
        display = state["display"] + [{"role": "user", "content": render_user(question)},
                                      {"role": "assistant", "content": render_streaming("")}]
        yield "", display, state
        history = state["history"][-settings.max_history_turns:] if settings.max_history_turns else []
        text = ""
        final = None
        from qa.filters import FilterError, Filters

        try:
            filters = Filters.make(since or None, until or None, outlets or None)
        except FilterError as exc:
            display[-1] = {"role": "assistant", "content": render_error(f"filter: {exc}")}
            yield "", display, {**state, "display": display}
            return
        try:
            for ev in service.stream(question, history, LANGUAGES.get(language), filters=filters or None):
                if ev["type"] == "token":
                    text += ev["text"]
                    display[-1] = {"role": "assistant", "content": render_streaming(text)}
                    yield "", display, state
                elif ev["type"] == "done":
                    final = ev["result"]
        except Exception as exc:  # shown in the chat, never raw
            from qa.app.service import error_status

            _, msg = error_status(exc)
            display[-1] = {"role": "assistant", "content": render_error(msg)}
            yield "", display, {**state, "display": display}
            return
        if final is None:
            display[-1] = {"role": "assistant", "content": render_error("no answer")}
            yield "", display, {**state, "display": display}
            return
        display[-1] = {"role": "assistant", "content": render_answer(final)}
        answers = {**state.get("answers", {}), str(len(display) - 1): answer_record(question, history, final)}
        history = state["history"] + [{"role": "user", "content": question},
                                      {"role": "assistant", "content": final["answer"]}]
        yield "", display, {**state, "history": history, "display": display, "answers": answers}

    def clear():
        return [], {"history": [], "display": []}, ""

    def upload(files, progress=gr.Progress()):
        if not files:
            return "Choose one or more .txt, .md or .html files first.", header_html(service)
        dest = service.upload_dir
        dest.mkdir(parents=True, exist_ok=True)
        paths = []
        for f in files:
            src = Path(f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", f))
            target = dest / _safe_name(src.name)
            shutil.copyfile(src, target)
            paths.append(target)
        try:
            report = service.ingest(paths, progress=_UploadProgress(progress))
        except Exception as exc:
            from qa.app.service import error_status

            return f"⚠ {html.escape(error_status(exc)[1])}", header_html(service)
        c = report.counts()
        lines = [f"added {c['added']} · updated {c['updated']} · unchanged {c['unchanged']} · "
                 f"skipped {c['skipped']} · failed {c['failed']}"]
        for p, why in report.failed + report.skipped:
            lines.append(f"- {html.escape(Path(p).name)}: {html.escape(why)}")
        return "<br>".join(lines), header_html(service)

    with gr.Blocks(title="News QA — hỏi đáp tin tức", analytics_enabled=False, fill_height=embed, fill_width=embed) as demo:
        state = gr.State({"history": [], "display": []})
        if not embed:
            header = gr.HTML(header_html(service), elem_id="qa-header", padding=False)
        chatbot = gr.Chatbot(
            elem_id="qa-chat",
            show_label=False,
            # the embed view fills its frame: the chat scrolls, the input stays in view
            height=620 if not embed else "calc(100vh - 100px)",
            min_height=240 if embed else None,
            render_markdown=False,
            sanitize_html=True,
            latex_delimiters=[],
            feedback_options=("Like", "Dislike"),  # 👍 👎 under every answer (see feedback_ui)
            buttons=["copy"],
            layout="bubble",
            placeholder=(
                "<b>Ask about the news articles</b><br>Hỏi về các bài báo — tiếng Việt hoặc tiếng Anh."
            ),
        )
        hide_feedback, feedback_parts = feedback_ui(chatbot, state, settings, channel="embed" if embed else "ui")
        with gr.Row(equal_height=True):
            msg = gr.Textbox(
                elem_id="qa-input",
                show_label=False,
                placeholder="Your question… / Câu hỏi của bạn…",
                scale=8,
                max_lines=4,
                autofocus=not embed,
                submit_btn=False,
            )
            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-send")
        # the embed view: chat + sources only (the language is detected; the chat's own
        # trash button starts over); the full page adds a language choice and a reset button
        with gr.Row(elem_id="qa-options", visible=not embed):
            language = gr.Radio(list(LANGUAGES), value="Auto", show_label=False, container=False,
                                scale=4, elem_id="qa-language")
            clear_btn = gr.Button("New chat · Hỏi mới", scale=1, size="sm", variant="secondary",
                                  min_width=120, elem_id="qa-clear")
        # filters (the full page): a publication-date range and an outlet picker, applied at the index
        with gr.Accordion("Filters · Bộ lọc", open=False, elem_id="qa-filters", visible=not embed):
            with gr.Row():
                since = gr.Textbox(label="Published from · Từ ngày (YYYY-MM-DD)", max_lines=1, elem_id="qa-since")
                until = gr.Textbox(label="Published until · Đến ngày (YYYY-MM-DD)", max_lines=1, elem_id="qa-until")
                outlets = gr.Dropdown(outlet_names(service), multiselect=True, label="Outlets · Báo", elem_id="qa-outlets")
        inputs = [msg, state, language, since, until, outlets]
        outputs = [msg, chatbot, state]
        msg.submit(respond, inputs, outputs, api_visibility="private")
        send.click(respond, inputs, outputs, api_visibility="private")
        clear_btn.click(clear, None, outputs, api_visibility="private")
        chatbot.clear(clear, None, outputs, api_visibility="private")
        for ev in (clear_btn.click, chatbot.clear):
            ev(hide_feedback, None, feedback_parts, api_visibility="private")
        examples = service.examples() if not embed else []
        if examples:
            gr.Markdown("**Examples** · Ví dụ", elem_id="qa-examples-h")
            with gr.Row(elem_id="qa-examples"):
                for q in examples:
                    b = gr.Button(q, size="sm", variant="secondary")
                    b.click(lambda q=q: q, None, msg, api_visibility="private").then(
                        respond, inputs, outputs, api_visibility="private")
        if not embed:
            if settings.allow_upload:
                with gr.Accordion("Add articles · Thêm bài báo", open=False, elem_id="qa-upload"):
                    files = gr.File(file_count="multiple", file_types=[".txt", ".md", ".markdown", ".html", ".htm"],
                                    label="Articles (.txt, .md, .html)")
                    index_btn = gr.Button("Index uploaded articles", variant="primary")
                    upload_out = gr.HTML(padding=False)
                    index_btn.click(upload, [files], [upload_out, header], api_visibility="private").then(
                        lambda: gr.update(choices=outlet_names(service)), None, outlets, api_visibility="private")
            with gr.Accordion("Feeds · Nguồn tin", open=False, elem_id="qa-feeds"):
                feeds_out = gr.HTML(feeds_html(service), padding=False)
            demo.load(lambda: feeds_html(service), None, feeds_out, api_visibility="private")
            demo.load(lambda: header_html(service), None, header, api_visibility="private")
            demo.load(lambda: gr.update(choices=outlet_names(service)), None, outlets, api_visibility="private")
    demo.queue(default_concurrency_limit=max(2, settings.api_workers * 2))
    return demo


def mount_ui(app, service) -> None:
    """Mount the full UI at ``/`` and the compact view at ``/embed`` (the more specific path first)."""
    theme = gr.themes.Soft(
        primary_hue="blue",
        font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )
    common = dict(theme=theme, css=CSS, js=JS, footer_links=[], ssr_mode=False, max_file_size="20mb",
                  show_error=True)
    embed_css = CSS + (
        "\n.gradio-container {padding: 6px !important; margin: 0 !important; max-width: none !important;"
        " width: 100% !important; box-sizing: border-box;}"
        "\n.gradio-container .main {padding: 0 !important;}"
        # while the feedback box is open, the chat gives it room (the input stays in the frame)
        "\n.gradio-container:has(#qa-feedback) #qa-chat {height: calc(100vh - 270px) !important;"
        " min-height: 160px !important;}"
    )

    # the <gradio-app> web component's loader, served by this server (no CDN needed on the intranet);
    # it imports ./assets/…, which the UI mounted at / serves
    from fastapi.responses import FileResponse

    loader = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"

    @app.get("/gradio.js", include_in_schema=False)
    def gradio_js():
        return FileResponse(loader, media_type="text/javascript")

    from fastapi.responses import RedirectResponse

    def embed_without_slash(request):
        # relative, so it also works behind a reverse proxy that mounts the app under a prefix
        query = request.url.query
        return RedirectResponse("embed/" + (f"?{query}" if query else ""), status_code=307)

    app.router.add_route("/embed", embed_without_slash, methods=["GET", "HEAD"], include_in_schema=False)

    gr.mount_gradio_app(app, build_ui(service, embed=True), path="/embed", **{**common, "css": embed_css})
    gr.mount_gradio_app(app, build_ui(service), path="/", **common)
