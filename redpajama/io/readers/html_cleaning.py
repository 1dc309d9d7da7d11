"""Boilerplate removal on a resiliparse DOM, modelled on trafilatura's cleaning.

Trafilatura (adbar/trafilatura: `settings.py` MANUALLY_CLEANED, `xpaths.py` BODY_XPATH /
OVERALL_DISCARD_XPATH, `htmlprocessing.py` link-density tests) gets its precision from three
things, reproduced here over lexbor's CSS engine so that the per-node work stays in C:

1. drop elements that are never main content (nav, aside, forms, embedded media, ...);
2. pick the main body by class/id/itemprop conventions of CMSs and news sites, if the page has one;
3. inside it, drop blocks whose class/id names them as boilerplate (footer, share, related, ...)
   and blocks that are mostly link text (menus, tag clouds, "related" lists).

Every removal is guarded: an element holding most of the remaining text is a page wrapper with an
unlucky class name (`<form>` around ASP.NET pages, `<div class="has-sidebar">`), never boilerplate.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from resiliparse.parse.html import DOMNode

# Elements that carry no main content (trafilatura MANUALLY_CLEANED, less `figure`, whose
# captions are handled by the class rules, and less tags resiliparse already skips).
NEVER_CONTENT_TAGS = (
    "aside, nav, menu, footer, form, iframe, object, embed, applet, audio, video, canvas, map,"
    " svg, picture, button, select, textarea, input, label, fieldset, legend, dialog, template,"
    " math, marquee, datalist, output, progress, time"
)

# Containers that a class/id rule may discard (trafilatura applies its rules to div, p, section,
# span and its list/item elements, i.e. ul/ol/dl/li). Put after the attribute test: lexbor
# evaluates a compound selector left to right and the attribute test fails fastest.
_BLOCKS = ":is(div,section,p,span,ul,ol,dl,li,table)"

# Substrings of class or id that mark boilerplate, matched case-insensitively: trafilatura's
# OVERALL_DISCARD_XPATH, TEASER/PAYWALL/DISCARD_IMAGE rules, less site-specific tokens.
_NAME_SUBSTRINGS = (
    "footer",
    "related",
    "viral",
    "share",
    "social",
    "sociable",
    "syndication",
    "newsletter",
    "subnav",
    "cookie",
    "consent",
    "tags",
    "tag-list",
    "sidebar",
    "banner",
    "navbar",
    "navbox",
    "navigation",
    "breadcrumb",
    "bread-crumb",
    "byline",
    "rating",
    "widget",
    "attachment",
    "timestamp",
    "user-info",
    "user-profile",
    "-ad-",
    "-icon",
    "article-infos",
    "infoline",
    "outbrain",
    "taboola",
    "criteo",
    "modal-content",
    "paywall",
    "paid-content",
    "paidcontent",
    "premium-",
    "obfuscated",
    "blurred",
    "permission",
    "side-stories",
    "most-popular",
    "message",
    "akismet",
    "suggest-links",
    "-hide-",
    "hide-print",
    "noprint",
    "notloaded",
    "teaser",
    "caption",
    "comments-title",
    "nocomments",
    "-reply-",
    "meta",
    "author",
    "menu",
)
# Prefixes: too loose as substrings ("nav" in "canvas", "hide" in "chidester").
_NAME_PREFIXES = ("nav", "shar", "jp-", "reply-", "hide-", "post-nav", "next-")
# Whole class words.
_CLASS_WORDS = ("ad", "ads", "hidden", "hide", "bar", "slide", "options")

_HIDDEN = '[aria-hidden="true" i], [hidden], [style*="display:none" i], [style*="display: none" i]'

_COMMENT_SECTIONS = (
    "[id^=comment i]:is(div,section,ul,ol), [class^=comment i]:is(div,section,ul,ol),"
    " [id^=disqus_thread], [id^=dsq-comments], [id^=respond], [class*=article-comments i],"
    " [class*=post-comments i], [id*=reader-comments i]"
)


def _boilerplate_selector(comments: bool) -> str:
    parts = [NEVER_CONTENT_TAGS, _HIDDEN]
    for name in _NAME_SUBSTRINGS:
        parts.append(f"[class*={name!r} i]{_BLOCKS}, [id*={name!r} i]{_BLOCKS}")
    for name in _NAME_PREFIXES:
        parts.append(f"[class^={name!r} i]{_BLOCKS}, [id^={name!r} i]{_BLOCKS}")
    for word in _CLASS_WORDS:
        parts.append(f"[class~={word!r} i]{_BLOCKS}")
    parts.append("[role*=nav i]")
    if not comments:
        parts.append(_COMMENT_SECTIONS)
    return ", ".join(parts)


_SELECTORS = {c: _boilerplate_selector(c) for c in (True, False)}

# Main-body candidates, most specific first (trafilatura BODY_XPATH, same order); the first group
# with enough text wins.
_BODY_GROUPS = (
    ":is(article,div,main,section):is([class=post],[class=entry],[class*=post-text],"
    "[class*=post_text],[class*=post-body],[class*=post-entry],[class*=postentry],"
    "[class*=post-content],[class*=post_content],[class*=postcontent i],[class*=post_inner_wrapper],"
    "[class*=article-text],[class*=articletext i],[id*=entry-content],[class*=entry-content],"
    "[id*=article-content],[class*=article-content],[id*=article__content],[class*=article__content],"
    "[id*=article-body],[class*=article-body],[id*=article__body],[class*=article__body],"
    "[itemprop=articleBody],[id*=articlebody i],[class*=articlebody i],[id=articleContent],"
    "[class*=ArticleContent],[class*=page-content],[class*=text-content],[id*=body-text],"
    "[class*=body-text],[class*=article__container],[id*=art-content],[class*=art-content])",
    "article",
    ":is(article,div,main,section):is([class*=post-bodycopy],[class*=storycontent],"
    "[class*=story-content],[class=postarea],[class=art-postcontent],[class*=theme-content],"
    "[class*=blog-content],[class*=section-content],[class*=single-content],[class*=single-post],"
    "[class*=main-column],[class*=wpb_text_column],[id^=primary],[class^='article '],[class=text],"
    "[id=article],[class=cell],[id=story],[class=story],[class*=story-body],[id*=story-body],"
    "[class*=field-body],[class*=fulltext i],[role=article])",
    ":is(article,div,main,section):is([id*=content-main],[class*=content-main],[class*=content_main],"
    "[id*=content-body],[class*=content-body],[id*=contentBody],[class*=content__body],"
    "[id*=main-content i],[class*=main-content i],[class*=page-content i],[id=content],[class=content])",
    ":is(article,div,section):is([class^=main],[id^=main],[role^=main]), main",
)


def boilerplate_selectors(comments: bool) -> list[str]:
    """CSS selectors for `extract_plain_text(skip_elements=...)`: matched in C while extracting."""
    return [_SELECTORS[comments]]


def find_main_body(body: DOMNode, min_chars: int = 250) -> DOMNode | None:
    """The first main-body candidate (in `_BODY_GROUPS` order) that holds `min_chars` of text."""
    for group in _BODY_GROUPS:
        node = body.query_selector(group)
        if node is not None and len(node.text.strip()) >= min_chars:
            return node
    return None


def isolate(body: DOMNode, main: DOMNode) -> None:
    """Make `main` the only child of `body`, so that extraction sees nothing else."""
    main.parent.remove_child(main)
    # walk by first_child: resiliparse node lists re-query on every index, quadratic in size
    child = body.first_child
    while child is not None:
        body.remove_child(child)
        child = body.first_child
    body.append_child(main)


LONG_CHARS = 80
# A long line ending a sentence is prose whose nouns are linked (Wikipedia ledes), not a menu.
_SENTENCE_END = frozenset(".。!?！？")
_TOKEN = re.compile(r"<(/?)(ul|ol|li|a|p|h[1-6]|pre|br)\b([^>]*)>")
_SPACES = re.compile(r" {2,}")  # from link padding; tabs separate table cells
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))  # soft hyphen, zero-widths


@dataclass(slots=True)
class Rendered:
    lines: list[str]
    chars: int  # non-space characters before link-dense lines were dropped


def render_minimal_html(
    text: str,
    *,
    list_bullets: bool = True,
    max_link_share: float = 0.5,
    max_link_share_long: float = 0.8,
    long_chars: int = LONG_CHARS,
    max_judged_chars: int = 1000,
    max_label_chars: int = 20,
    min_para_chars: int = 250,
    max_loose_chars: int = 200,
) -> Rendered:
    """Lines of resiliparse's `minimal_html` output as plain text, link-dense lines dropped.

    Each output line is one block (paragraph, list item, heading, table row, loose text), so the
    share of its characters inside `<a>` is trafilatura's block link density, got without
    walking the DOM from Python (which costs more than the whole extraction in resiliparse).
    Lines longer than `max_judged_chars` are kept: long prose with many links is still prose.
    A heading left with nothing under it (its section was all links) goes too. List items get
    resiliparse's plain-text bullets ("• ", "1. ").
    Trafilatura's precision rule (`main_extractor._extract`: div text is only taken when the
    body has less than MIN_EXTRACTED_SIZE of `<p>` text) becomes: when the kept `<p>` lines hold
    `min_para_chars`, loose lines (text in no p, li, pre, heading, table row or `<br>` run; bylines,
    dates, captions, teaser blurbs) of up to `max_loose_chars` go. Longer loose lines stay: they
    are leads and standfirsts in a div more often than boilerplate (tuned on the dev half).
    """
    blocks: list[_Block] = []
    lists: list[list] = []  # [tag, items so far] per open list
    bullet = ""
    total = 0
    para_chars = 0
    open_blocks = 0  # p, li, pre, heading elements open at the start of the line
    prev_br = False
    for line in text.split("\n"):
        structured = open_blocks > 0 or prev_br
        is_para = False
        # resiliparse's markup can leave an <a> unclosed (anchors around images and tables);
        # links never span blocks, so link state ends with the line
        in_link = False
        parts: list[str] = []
        link_chars = 0
        level = 7
        pos = 0
        for m in _TOKEN.finditer(line):
            if in_link:
                link_chars += _count(line, pos, m.start())
            parts.append(line[pos : m.start()])
            pos = m.end()
            closing, tag = m.group(1), m.group(2)
            if tag in ("p", "li", "pre") or tag[0] == "h":
                if closing:
                    open_blocks = max(open_blocks - 1, 0)
                else:
                    open_blocks += 1
                    structured = True
                    is_para = is_para or tag == "p"
            if tag == "a":
                # resiliparse writes name/id anchors as <a href="">: targets, not links
                in_link = not closing and m.group(3) != ' href=""'
            elif tag[0] == "h" and not closing:
                level = int(tag[1])
            elif tag in ("ul", "ol"):
                if closing:
                    if lists:
                        lists.pop()
                else:
                    lists.append([tag, 0])
            elif tag == "li" and not closing and lists and list_bullets:
                lists[-1][1] += 1
                bullet = "• " if lists[-1][0] == "ul" else f"{lists[-1][1]}. "
        if in_link:
            link_chars += _count(line, pos, len(line))
        parts.append(line[pos:])
        prev_br = line.rstrip().endswith("<br>")
        structured = structured or prev_br or "\t" in line
        plain = _SPACES.sub(" ", html.unescape("".join(parts)).translate(_INVISIBLE)).strip()
        if not plain:
            continue
        chars = len(plain) - plain.count(" ")
        total += chars
        share = max_link_share if chars < long_chars else max_link_share_long
        links = (
            link_chars > share * chars
            and chars <= max_judged_chars
            and not (chars >= long_chars and plain[-1] in _SENTENCE_END)
        )
        if is_para and not links:
            para_chars += chars
        blocks.append(_Block(bullet + plain if bullet else plain, level, chars, links, not structured))
        bullet = ""
    if para_chars >= min_para_chars:
        blocks = [b for b in blocks if not (b.loose and b.chars <= max_loose_chars)]
    return Rendered(_drop_labels(blocks, max_label_chars), total)


@dataclass(slots=True)
class _Block:
    text: str
    level: int  # 1-6 for headings, 7 for anything else
    chars: int
    dropped: bool
    loose: bool  # text outside p, li, pre, headings and table rows


def _drop_labels(blocks: list[_Block], max_label_chars: int) -> list[str]:
    """Kept lines, less the labels of dropped link blocks.

    A short line right before a link-dense block that was dropped ("Auch interessant:",
    "Follow us on", "Read more") labels that block; a heading followed by a heading of the same
    or a higher rank, or by nothing, heads an empty section. Walking backwards lets a label
    whose block was itself a dropped label go too.
    """
    kept: list[str] = []
    next_dropped = True  # end of text: nothing follows
    next_level = 0  # rank of the next kept line; 0 = nothing follows
    for b in reversed(blocks):
        if not b.dropped:
            if b.level < 7:
                b.dropped = next_level == 0 or next_level <= b.level
            else:
                b.dropped = next_dropped and b.chars <= max_label_chars
        if b.dropped:
            next_dropped = True
            continue
        kept.append(b.text)
        next_dropped = False
        next_level = b.level
    kept.reverse()
    return kept


def _count(line: str, start: int, end: int) -> int:
    chunk = line[start:end]
    return len(chunk) - chunk.count(" ")
