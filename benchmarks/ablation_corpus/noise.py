"""Seeded generators of the noise planted in the ablation corpus: spam, boilerplate, near-duplicates.

Every generator is a pure function of a `random.Random` and its inputs, so a seed fixes the corpus.
The kinds imitate what web-crawl curation has to remove, each aimed at a different filter:

spam (origin `spam`)
    keyword-stuffing   a title of `|`-joined keywords over paragraphs of repeated keyword phrases
    link-list          a link farm: one anchor text and URL per line
    promo-repeat       one promotional line repeated with small changes, plus a few other lines
    lorem-ipsum        a placeholder site: Latin filler paragraphs (C4's lorem-ipsum rule)
    bad-words          adult spam built from LDNOOBW entries in fluent templates (C4's bad-word rule)
    seo-article        a spun article: fluent templated sentences with the keyword inserted
boilerplate (origin `boilerplate`)
    navigation         menus, breadcrumbs, a teaser of real prose, a footer
    cookie-legal       a site's cookie banner and legal footer around a teaser
    share-footer       a teaser followed by "share this" buttons, related links and comment prompts
    short-fragment     a few words: 404 pages, "please enable JavaScript", empty carts
near-duplicates (origin `duplicate`)
    copies of clean and spam documents, 1 to 20 per original (heavy-tailed), each with one edit:
    exact, whitespace (same words, other spacing), typos (1-3 characters), header-footer (a byline
    and a copyright line around the text) or truncate (the last few percent of words dropped).
    The edits are small on purpose: MinHash LSH at 0.8 (9 bands x 13 rows) finds a pair with
    probability 1-(1-J^13)^9, ~0.4 at J=0.8 but ~0.93 at J=0.9 (build.py records each copy's J).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from sources import Doc  # a sibling module: build.py puts this folder on sys.path

KEYWORDS = (
    "cheap replica watches", "payday loans online", "weight loss pills", "online casino bonus",
    "crypto trading signals", "cheap flight deals", "discount designer handbags", "keto diet supplements",
    "buy instagram followers", "seo backlinks service", "forex trading robot", "cbd oil gummies",
    "car insurance quotes", "work from home jobs", "free movie streaming", "essay writing service",
    "mortgage refinance rates", "cheap web hosting", "free vpn download", "teeth whitening kit",
)  # fmt: skip
CITIES = ("New York", "Los Angeles", "Chicago", "Houston", "London", "Toronto", "Sydney", "Dallas", "Miami")
TLDS = (".biz", ".info", ".top", ".xyz", ".online", ".shop", ".club", ".site")
BENEFITS = (
    "save money", "lose weight fast", "make money online", "boost your income", "improve your health",
    "get more followers", "rank higher on Google", "feel better every day", "travel for less",
)  # fmt: skip
SEO_SENTENCES = (
    "When it comes to {kw}, there are a lot of things you need to know.",
    "{Kw} is one of the best ways to {benefit}.",
    "Many people in {city} are looking for {kw} these days.",
    "If you want the best {kw}, you have come to the right place.",
    "Our team has reviewed the top {kw} of {year} so you do not have to.",
    "The truth is that {kw} can help you {benefit} in no time.",
    "Click the link below to get the best deal on {kw}.",
    "Read on to find out why {kw} is so popular right now.",
    "We have compiled a list of the best {kw} for you.",
    "You will not believe how easy it is to {benefit} with {kw}.",
    "Do not miss this chance to get {kw} at the lowest price.",
    "Thousands of happy customers have already tried our {kw}.",
    "Experts agree that {kw} is the smartest way to {benefit}.",
    "It is no secret that {kw} has changed the way we {benefit}.",
)
PROMO_LINES = (
    "LIMITED TIME OFFER!!! Get {pct}% OFF {KW} today only! CLICK HERE >> {url}",
    "BUY NOW and SAVE BIG on {KW}!!! Free shipping worldwide!!! {url}",
    "Best {kw} in {city} - call now {phone} - 24/7 support!!!",
    "*** {KW} *** lowest prices guaranteed *** order today *** {url}",
)
BAD_WORD_SENTENCES = (
    "Watch free {bw} videos in HD, updated every day.",
    "The hottest {bw} pics on the web, no signup required.",
    "Click here for more {bw} and {bw2} from our members.",
    "Our {bw} collection is the biggest you will ever see.",
    "Join now and get unlimited access to {bw} and {bw2}.",
    "Thousands of {bw} clips are waiting for you right now.",
    "Meet local singles who love {bw} tonight.",
)
LOREM_TEXT = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip "
    "ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla "
    "pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim "
    "id est laborum curabitur pretium tincidunt lacus nunc pulvinar sapien ligula vestibulum"
)
LOREM = LOREM_TEXT.split()
NAV_ITEMS = (
    "Home", "About", "About Us", "Contact", "Blog", "News", "Services", "Products", "Shop", "Careers",
    "Events", "FAQ", "Support", "Login", "Register", "Sitemap", "Gallery", "Resources", "Pricing", "Team",
)  # fmt: skip
COOKIE_NOTICES = (
    "We use cookies to ensure that we give you the best experience on our website. If you continue to "
    "use this site we will assume that you are happy with it.",
    "This website uses cookies to improve your experience while you navigate through the website. Out "
    "of these, the cookies that are categorized as necessary are stored on your browser as they are "
    "essential for the working of basic functionalities of the website. We also use third-party cookies "
    "that help us analyze and understand how you use this website. These cookies will be stored in your "
    "browser only with your consent. You also have the option to opt-out of these cookies. But opting "
    "out of some of these cookies may affect your browsing experience.",
    "By clicking \u201cAccept All Cookies\u201d, you agree to the storing of cookies on your device to "
    "enhance site navigation, analyze site usage, and assist in our marketing efforts.",
)
COOKIE_BUTTONS = ("Accept All | Reject All | Cookie Settings", "Accept", "OK, got it", "Manage preferences")
LEGAL_LINES = (
    "\u00a9 {year} {site}. All rights reserved.",
    "Terms of Use | Privacy Policy | Accessibility | Do Not Sell My Personal Information",
    "{site} is a registered trademark. Reproduction in whole or in part without permission is prohibited.",
    "Powered by WordPress | Theme by {site}",
)
SHARE_LINES = (
    "Share this:", "Click to share on Twitter (Opens in new window)",
    "Click to share on Facebook (Opens in new window)",
    "Click to email a link to a friend (Opens in new window)",
    "Like this:", "Like Loading...", "Related", "Posted in Uncategorized", "Leave a comment",
    "Subscribe to our newsletter", "Enter your email address", "Follow us on Twitter, Facebook and Instagram",
)  # fmt: skip
FRAGMENT_PAGES = (
    "404 Not Found\nThe page you are looking for might have been removed, had its name changed, or is "
    "temporarily unavailable.",
    "Please enable JavaScript to view this site.",
    "Loading...",
    "Sign in to continue\nForgot your password?",
    "Your cart is empty.\nContinue shopping",
    "No results found for your search.",
    "This site is under construction. Please check back soon!",
    "Access denied\nYou do not have permission to view this page.",
)
SYLLABLES = (
    "bright",
    "north",
    "field",
    "stone",
    "river",
    "oak",
    "sun",
    "blue",
    "green",
    "harbor",
    "peak",
    "maple",
)
SITE_SUFFIXES = (
    "Media",
    "Gazette",
    "Studio",
    "Journal",
    "Outfitters",
    "Group",
    "Daily",
    "Labs",
    "Collective",
)
BYLINES = (
    "Originally published on {site} on {date}.",
    "Posted by admin on {date}",
    "Source: {site} ({date})",
)

MULTIPLICITY = ((1, 0.55), (2, 0.20), (3, 0.08), (4, 0.06), (5, 0.04), (8, 0.04), (12, 0.02), (20, 0.01))
EDITS = (("exact", 0.2), ("whitespace", 0.2), ("typos", 0.2), ("header-footer", 0.25), ("truncate", 0.15))


def _pick(rng: random.Random, weighted: Sequence[tuple[object, float]]) -> object:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _url(rng: random.Random, kw: str) -> str:
    slug = kw.replace(" ", "-")
    return f"http://www.{slug.replace('-', '')}{rng.choice(TLDS)}/{slug}-{rng.randint(100, 9999)}.html"


def _fill(template: str, rng: random.Random, kw: str) -> str:
    return template.format(
        kw=kw,
        Kw=kw[0].upper() + kw[1:],
        KW=kw.upper(),
        city=rng.choice(CITIES),
        benefit=rng.choice(BENEFITS),
        year=rng.randint(2015, 2024),
        pct=rng.choice((30, 50, 70, 80, 90)),
        url=_url(rng, kw),
        phone=f"1-800-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
    )


# ----------------------------------------------------------------------------------- spam


def keyword_stuffing(rng: random.Random, _badwords: Sequence[str]) -> str:
    kws = rng.sample(KEYWORDS, 3)
    title = " | ".join(f"{k.title()} {rng.choice(CITIES)}" for k in kws)
    fillers = ("best", "cheap", "buy", "online", "sale", "discount", "top", "2024", "free", "now")
    paragraphs = []
    for _ in range(rng.randint(3, 8)):
        words: list[str] = []
        target = rng.randint(40, 120)
        while len(words) < target:
            words += (rng.choice(kws) if rng.random() < 0.6 else rng.choice(fillers)).split()
        paragraphs.append(" ".join(words) + ".")
    return "\n".join([title, *paragraphs])


def link_list(rng: random.Random, _badwords: Sequence[str]) -> str:
    lines = [f"{rng.choice(KEYWORDS).title()} - Links", ""]
    for _ in range(rng.randint(30, 150)):
        kw = rng.choice(KEYWORDS)
        lines.append(f"\u2022 {kw.title()} {rng.choice(CITIES)} - {_url(rng, kw)}")
    lines.append("Related searches: " + ", ".join(rng.sample(KEYWORDS, 6)))
    return "\n".join(lines)


def promo_repeat(rng: random.Random, _badwords: Sequence[str]) -> str:
    kw = rng.choice(KEYWORDS)
    template = rng.choice(PROMO_LINES)
    lines = []
    for _ in range(rng.randint(12, 50)):
        lines.append(
            _fill(template, rng, kw) if rng.random() < 0.8 else _fill(rng.choice(SEO_SENTENCES), rng, kw)
        )
    return "\n".join(lines)


def lorem_ipsum(rng: random.Random, _badwords: Sequence[str]) -> str:
    paragraphs = ["Welcome to our new website!", "Lorem ipsum dolor sit amet, consectetur adipiscing elit."]
    for _ in range(rng.randint(3, 10)):
        sentences = []
        for _ in range(rng.randint(3, 8)):
            words = [rng.choice(LOREM) for _ in range(rng.randint(6, 16))]
            sentences.append(" ".join(words).capitalize() + ".")
        paragraphs.append(" ".join(sentences))
    paragraphs.append("Contact us today for a free quote.")
    return "\n".join(paragraphs)


def bad_words(rng: random.Random, badwords: Sequence[str]) -> str:
    lines = []
    for _ in range(rng.randint(8, 40)):
        template = rng.choice(BAD_WORD_SENTENCES)
        lines.append(template.format(bw=rng.choice(badwords), bw2=rng.choice(badwords)))
    return "\n".join(lines)


def seo_article(rng: random.Random, _badwords: Sequence[str]) -> str:
    kw = rng.choice(KEYWORDS)
    paragraphs = [f"The Ultimate Guide to {kw.title()} in {rng.randint(2019, 2024)}"]
    for _ in range(rng.randint(4, 12)):
        paragraphs.append(
            " ".join(_fill(rng.choice(SEO_SENTENCES), rng, kw) for _ in range(rng.randint(3, 7)))
        )
    paragraphs.append(f"Visit {_url(rng, kw)} to learn more.")
    return "\n".join(paragraphs)


SPAM_KINDS: dict[str, Callable[[random.Random, Sequence[str]], str]] = {
    "keyword-stuffing": keyword_stuffing,
    "link-list": link_list,
    "promo-repeat": promo_repeat,
    "lorem-ipsum": lorem_ipsum,
    "bad-words": bad_words,
    "seo-article": seo_article,
}


def spam_pages(rng: random.Random, count: int, badwords: Sequence[str]) -> list[Doc]:
    """`count` spam pages, the kinds in equal shares (a round-robin, so small counts cover them all)."""
    kinds = list(SPAM_KINDS)
    docs = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        text = SPAM_KINDS[kind](rng, badwords)
        docs.append(Doc(id=f"spam/{kind}/{i:05d}", text=text, origin="spam", source=f"spam:{kind}"))
    return docs


# ---------------------------------------------------------------------------- boilerplate


def site_names(rng: random.Random, count: int) -> list[str]:
    return [
        f"{rng.choice(SYLLABLES).title()}{rng.choice(SYLLABLES)} {rng.choice(SITE_SUFFIXES)}"
        for _ in range(count)
    ]


def _teaser(rng: random.Random, sentences: Sequence[str], low: int, high: int) -> str:
    start = rng.randrange(len(sentences))
    return " ".join(sentences[start : start + rng.randint(low, high)])


def _footer(rng: random.Random, site: str) -> list[str]:
    year = rng.randint(2012, 2024)
    return [line.format(year=year, site=site) for line in rng.sample(LEGAL_LINES, rng.randint(1, 3))]


def navigation(rng: random.Random, site: str, sentences: Sequence[str]) -> str:
    menu = rng.sample(NAV_ITEMS, rng.randint(6, 14))
    category = rng.choice(("News", "Blog", "Stories", "Articles"))
    lines = [
        site,
        "Skip to content",
        *menu,
        f"Home \u00bb {category}",
        _teaser(rng, sentences, 1, 3),
        "Read more \u00bb",
    ]
    return "\n".join(lines + rng.sample(menu, 4) + _footer(rng, site))


def cookie_legal(rng: random.Random, site: str, sentences: Sequence[str]) -> str:
    lines = [site, rng.choice(COOKIE_NOTICES), rng.choice(COOKIE_BUTTONS)]
    if rng.random() < 0.5:
        lines.append(_teaser(rng, sentences, 1, 2))
    return "\n".join(lines + _footer(rng, site))


def share_footer(rng: random.Random, site: str, sentences: Sequence[str]) -> str:
    lines = [_teaser(rng, sentences, 2, 4), *rng.sample(SHARE_LINES, rng.randint(5, 10))]
    return "\n".join(lines + _footer(rng, site))


def short_fragment(rng: random.Random, site: str, _sentences: Sequence[str]) -> str:
    return f"{site}\n{rng.choice(FRAGMENT_PAGES)}"


BOILERPLATE_KINDS: dict[str, Callable[[random.Random, str, Sequence[str]], str]] = {
    "navigation": navigation,
    "cookie-legal": cookie_legal,
    "share-footer": share_footer,
    "short-fragment": short_fragment,
}


def split_sentences(texts: Sequence[str]) -> list[str]:
    """Prose sentences for the teasers boilerplate pages carry: 5-50 words, mostly letters.

    The letter test keeps ASCII tables and shell listings (Debian Reference) out of the teasers.
    """
    found = []
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
            letters = sum(c.isalpha() or c == " " for c in sentence)
            if 5 <= len(sentence.split()) <= 50 and letters >= 0.9 * len(sentence):
                found.append(sentence)
    return found


def boilerplate_pages(rng: random.Random, count: int, sentences: Sequence[str]) -> list[Doc]:
    """`count` boilerplate pages from a few sites (pages of one site share its menu and footer)."""
    sites = site_names(rng, max(3, count // 15))
    kinds = list(BOILERPLATE_KINDS)
    docs = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        text = BOILERPLATE_KINDS[kind](rng, rng.choice(sites), sentences)
        docs.append(
            Doc(
                id=f"boilerplate/{kind}/{i:05d}",
                text=text,
                origin="boilerplate",
                source=f"boilerplate:{kind}",
            )
        )
    return docs


# ------------------------------------------------------------------------- near-duplicates


def _typos(rng: random.Random, text: str) -> str:
    spans = [m.span() for m in re.finditer(r"[A-Za-z]{4,}", text)]
    for start, end in sorted(rng.sample(spans, min(len(spans), rng.randint(1, 3))), reverse=True):
        i = rng.randrange(start, end - 1)
        text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]  # swap two neighbouring letters
    return text


def _whitespace(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    return "\n".join(("  " + line + " ") if rng.random() < 0.5 else line for line in lines) + "\n\n"


def _header_footer(rng: random.Random, text: str, site: str) -> str:
    date = f"{rng.randint(2010, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return f"{rng.choice(BYLINES).format(site=site, date=date)}\n{text}\n\u00a9 {date[:4]} {site}"


def _truncate(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    keep = max(1, int(len(words) * (1 - rng.uniform(0.01, 0.05))))
    return " ".join(words[:keep])


def edit_copy(rng: random.Random, text: str, edit: str, site: str) -> str:
    if edit == "exact":
        return text
    if edit == "whitespace":
        return _whitespace(rng, text)
    if edit == "typos":
        return _typos(rng, text)
    if edit == "header-footer":
        return _header_footer(rng, text, site)
    if edit == "truncate":
        return _truncate(rng, text)
    raise ValueError(f"unknown edit {edit!r}")


def near_duplicates(rng: random.Random, count: int, originals: Sequence[Doc]) -> list[Doc]:
    """`count` edited copies of `originals`, each original copied 1-20 times (heavy-tailed).

    Originals are drawn without replacement, so every planted group is one original plus its copies.
    """
    order = list(originals)
    rng.shuffle(order)
    sites = site_names(rng, 20)
    docs: list[Doc] = []
    for original in order:
        if len(docs) >= count:
            break
        copies = min(int(_pick(rng, MULTIPLICITY)), count - len(docs))  # type: ignore[call-overload]
        for k in range(copies):
            edit = str(_pick(rng, EDITS))
            text = edit_copy(rng, original.text, edit, rng.choice(sites))
            doc_id = f"duplicate/{original.id}/{k}"
            docs.append(
                Doc(
                    id=doc_id,
                    text=text,
                    origin="duplicate",
                    source=original.source,
                    dup_of=original.id,
                    edit=edit,
                )
            )
    return docs
