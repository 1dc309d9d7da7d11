"""HTML -> (title, text) with resiliparse, shaped like Common Crawl WET text.

WET text is one block per line, lines stripped, no empty lines; CCNet's line-level dedup and
signals depend on that shape, so text extracted from WARC HTML is normalised the same way.
"""

from __future__ import annotations

import re
import signal
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from resiliparse.parse.html import HTMLTree

from redpajama.io.readers.html_cleaning import (
    NEVER_CONTENT_TAGS,
    boilerplate_selectors,
    find_main_body,
    isolate,
    render_minimal_html,
)

_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)


class ExtractTimeout(Exception):
    """Extraction of one document took longer than its time budget."""


def extract_html(
    raw: bytes,
    *,
    main_content: bool = True,
    timeout: float = 5.0,
    content_type: str | None = None,
    preserve_formatting: bool = True,
    list_bullets: bool = True,
    alt_texts: bool = False,
    links: bool = False,
    form_fields: bool = False,
    noscript: bool = False,
    comments: bool = False,
) -> tuple[str, str]:
    """(title, text) of an HTML document; text lines stripped, empty lines dropped.

    `main_content=True` removes boilerplate the way trafilatura does (see `html_cleaning`): known
    non-content elements and class/id names out, the main body isolated when the page marks it,
    link-dense blocks dropped; pages where that leaves too little fall back to resiliparse's own
    main-content heuristics, then to the whole page. `main_content=False` is the whole page with
    no cleaning, as Common Crawl WET has it.
    Defaults: `preserve_formatting=True` keeps block boundaries as line breaks, which is what
    makes the output one paragraph per line (False collapses a page into one line). Alt texts,
    link targets and form fields are off because they are boilerplate in almost every page.
    `comments=False` drops user comment sections from main content (trafilatura's and datatrove's
    default; they are mostly `without` text in the trafilatura eval set).
    Raises `ExtractTimeout` after `timeout` seconds (main thread only; elsewhere no limit).
    """
    html = decode_html(raw, content_type)
    opts = dict(
        list_bullets=list_bullets,
        alt_texts=alt_texts,
        form_fields=form_fields,
        noscript=noscript,
        comments=comments,
    )
    with _time_limit(timeout):
        tree = HTMLTree.parse(html)
        title = tree.title or ""
        if main_content and preserve_formatting and not links:
            # NFC as trafilatura's output has it: some scripts' precomposed letters are
            # composition exclusions (Bengali U+09DC) that NFC writes decomposed
            text = unicodedata.normalize("NFC", _main_content(html, tree, opts))
        else:
            # link targets and one-line output have no place in the line-based cleaning
            text = normalize_lines(
                extract_plain_text(
                    tree,
                    preserve_formatting=preserve_formatting,
                    main_content=main_content,
                    links=links,
                    **opts,
                )
            )
    return normalize_ws(title), text


# Trafilatura's MIN_EXTRACTED_SIZE: less main content than this and the page gets a second look.
_MIN_CHARS = 500
# Trafilatura's prune_unwanted_nodes(with_backup=True): class/id rules that remove more than 6/7
# of the text hit a page wrapper, not boilerplate, and are undone.
_MAX_REMOVED = 6 / 7


def _main_content(html: str, tree: HTMLTree, opts: dict) -> str:
    body = tree.body
    if body is None:
        return ""
    main = find_main_body(body, _MIN_CHARS)
    if main is not None:
        isolate(body, main)
    text = _cleaned_text(tree, opts)
    if len(text) >= _MIN_CHARS:
        return text
    if main is not None:  # the marked body was a teaser or a header: try the whole page
        text = max(text, _cleaned_text(HTMLTree.parse(html), opts), key=len)
        if len(text) >= _MIN_CHARS:
            return text
    text = max(text, _plain(HTMLTree.parse(html), main_content=True, **opts), key=len)
    return text or _plain(HTMLTree.parse(html), main_content=False, **opts)


def _cleaned_text(tree: HTMLTree, opts: dict) -> str:
    skip = boilerplate_selectors(opts["comments"])
    out = _render(tree, skip, opts)
    plain = None
    if out.chars < (1 - _MAX_REMOVED) * _scope_chars(tree):
        plain = _render(tree, [NEVER_CONTENT_TAGS], opts)
        if out.chars < (1 - _MAX_REMOVED) * plain.chars:
            out = plain
    return "\n".join(out.lines)


def _render(tree: HTMLTree, skip: list[str], opts: dict):
    marked = extract_plain_text(
        tree, preserve_formatting="minimal_html", main_content=False, links=True, skip_elements=skip, **opts
    )
    return render_minimal_html(marked, list_bullets=opts["list_bullets"])


def _scope_chars(tree: HTMLTree) -> int:
    # an over-estimate (script text counts too): it only decides whether the exact test is run
    return len("".join(tree.body.text.split()))


def _plain(tree: HTMLTree, **opts) -> str:
    return normalize_lines(extract_plain_text(tree, preserve_formatting=True, **opts))


def decode_html(raw: bytes, content_type: str | None = None) -> str:
    """Decode with the HTTP header's charset if it names one, else the meta tag, else detection."""
    encoding = None
    if content_type:
        m = _CHARSET_RE.search(content_type)
        if m:
            encoding = m.group(1)
    if encoding is None:
        encoding = detect_encoding(raw, from_html_meta=True)
    try:
        return bytes_to_str(raw, encoding)
    except LookupError:  # the header named a charset Python does not know
        return bytes_to_str(raw, detect_encoding(raw, from_html_meta=True))


def normalize_lines(text: str) -> str:
    return "\n".join(s for s in (line.strip() for line in text.splitlines()) if s)


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    # SIGALRM only works in the main thread; worker processes run readers there. Resiliparse's
    # C code is not interrupted: the alarm is acted on when control returns to Python, so this
    # bounds the steps, not a single runaway C call.
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise ExtractTimeout(f"HTML extraction exceeded {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
