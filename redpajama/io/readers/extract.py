"""HTML -> (title, text) with resiliparse, shaped like Common Crawl WET text.

WET text is one block per line, lines stripped, no empty lines; CCNet's line-level dedup and
signals depend on that shape, so text extracted from WARC HTML is normalised the same way.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from resiliparse.parse.html import HTMLTree

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
    comments: bool = True,
) -> tuple[str, str]:
    """(title, text) of an HTML document; text lines stripped, empty lines dropped.

    Defaults: `preserve_formatting=True` keeps block boundaries as line breaks, which is what
    makes the output one paragraph per line (False collapses a page into one line). Alt texts,
    link targets and form fields are off because they are boilerplate in almost every page.
    `comments=True` keeps user comment sections with main content, as WET does.
    Raises `ExtractTimeout` after `timeout` seconds (main thread only; elsewhere no limit).
    """
    html = decode_html(raw, content_type)
    with _time_limit(timeout):
        tree = HTMLTree.parse(html)
        title = tree.title or ""
        text = extract_plain_text(
            tree,
            preserve_formatting=preserve_formatting,
            main_content=main_content,
            list_bullets=list_bullets,
            alt_texts=alt_texts,
            links=links,
            form_fields=form_fields,
            noscript=noscript,
            comments=comments,
        )
    return normalize_ws(title), normalize_lines(text)


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
