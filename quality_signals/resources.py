"""Word lists and block lists used by the content signals, and the UT1 domain map builder.

Shipped (see resources/SOURCE.md): RPv2's stop-word sets (`resources/stop_words.json`) and the
LDNOOBW lists for en, de, fr, es, it (`resources/ldnoobw/`). The UT1 domain map is not shipped:
build it once from a UT1 blacklists tarball with `build_ut1_domain_map`, save it with
`save_ut1_domain_map`, and load it with `load_ut1_domain_map` (or `Resources.load(ut1_path=...)`).

UT1 category ids (REFERENCE A.1.5): every non-empty combination of the sorted category list,
enumerated by combination size, then lexicographically; a domain's id is the id of the sorted set
of categories it is listed under. With RPv2's 13 categories adult alone is 0, porn alone 11 and
{adult, porn} 23.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import posixpath
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path, PurePosixPath

import numpy as np

from redpajama.artifacts.bundle import Bundle
from redpajama.quality_signals.dsir_features import resolve_hash_mode

__all__ = [
    "RESOURCES_DIR",
    "LDNOOBW_LANGUAGES",
    "RPV2_UT1_CATEGORIES",
    "Resources",
    "UT1DomainMap",
    "canonical_language",
    "load_stop_words",
    "load_ldnoobw",
    "ut1_category_index",
    "build_ut1_domain_map",
    "save_ut1_domain_map",
    "load_ut1_domain_map",
]

RESOURCES_DIR = Path(__file__).resolve().parent / "resources"
DEFAULT_LANGUAGE = "en"
# RPv2 loads LDNOOBW only for these; every other language gets an empty block list.
LDNOOBW_LANGUAGES = ("en", "fr", "it", "es", "de")
# DOMAIN_BLACKLIST_CATEGORIES of configs/rp_v2.0.conf
RPV2_UT1_CATEGORIES = (
    "adult",
    "agressive",
    "agressif",
    "arjel",
    "chat",
    "dating",
    "ddos",
    "filehosting",
    "gambling",
    "porn",
    "mixed_adult",
    "phishing",
    "violence",
)


def canonical_language(language: str | None) -> str:
    """'en', 'EN', 'en-US', 'en_GB' -> 'en'; None or '' -> 'en' (the default language)."""
    if not language:
        return DEFAULT_LANGUAGE
    return language.replace("_", "-").split("-", 1)[0].strip().lower() or DEFAULT_LANGUAGE


@cache
def load_stop_words(path: str | None = None) -> dict[str, frozenset[str]]:
    """language -> stop-word set (RPv2's sets; matched case-sensitively against raw tokens)."""
    p = Path(path) if path else RESOURCES_DIR / "stop_words.json"
    with open(p, encoding="utf-8") as f:
        return {lang: frozenset(words) for lang, words in json.load(f).items()}


def _read_ldnoobw_file(p: Path) -> frozenset[str]:
    # RPv2 keeps the raw entries (stripped): entries with punctuation, uppercase or precomposed
    # accents can never match the normalized (NFD, punctuation-free) words; we keep them anyway.
    with open(p, encoding="utf-8") as f:
        return frozenset(line.strip() for line in f.read().splitlines())


@cache
def load_ldnoobw(directory: str | None = None) -> dict[str, frozenset[str]]:
    """language -> LDNOOBW entries for RPv2's five languages (files `<lang>.txt`)."""
    d = Path(directory) if directory else RESOURCES_DIR / "ldnoobw"
    return {lang: _read_ldnoobw_file(d / f"{lang}.txt") for lang in LDNOOBW_LANGUAGES}


@dataclass(frozen=True)
class BlockList:
    """An LDNOOBW list split by entry word count n = 1 + entry.count(' ') (as RPv2 does)."""

    words: frozenset[str]  # entries with n == 1
    phrases: frozenset[str]  # entries with n > 1
    # first word of a phrase -> the distinct n of the phrases starting with it
    first_word_ns: dict[str, tuple[int, ...]]

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> BlockList:
        words, phrases, first = set(), set(), {}
        for e in entries:
            n = 1 + e.count(" ")
            if n == 1:
                words.add(e)
            else:
                phrases.add(e)
                first.setdefault(e.split(" ", 1)[0], set()).add(n)
        return cls(
            words=frozenset(words),
            phrases=frozenset(phrases),
            first_word_ns={w: tuple(sorted(ns)) for w, ns in first.items()},
        )


EMPTY_BLOCKLIST = BlockList(words=frozenset(), phrases=frozenset(), first_word_ns={})


# ------------------------------------------------------------------------------------- UT1
def ut1_category_index(categories: Iterable[str] = RPV2_UT1_CATEGORIES) -> dict[tuple[str, ...], int]:
    """Sorted category combination -> id, by size then lexicographic order (RPv2's scheme)."""
    cats = sorted(set(categories))
    combos = itertools.chain.from_iterable(itertools.combinations(cats, r) for r in range(1, len(cats) + 1))
    return {combo: i for i, combo in enumerate(combos)}


def _category_of_member(name: str, categories: frozenset[str], flat_category: str) -> str | None:
    """The category of a tar member holding domains, or None when it holds none we want."""
    parts = [p for p in PurePosixPath(name).parts if p not in (".", "")]
    if not parts or parts[-1] != "domains":
        return None
    if len(parts) == 1:  # flat single-category tarball (datatrove's copy: members 'domains', 'urls')
        category = flat_category
    else:  # UT1 layout: blacklists/<category>/domains
        category = parts[-2]
    return category if category in categories else None


def _clean(name: str) -> str:
    return "/".join(p for p in PurePosixPath(name).parts if p not in (".", ""))


def _folder_aliases(members: Sequence[tarfile.TarInfo]) -> dict[str, list[str]]:
    """Folder -> the symlinks in the archive that point at it (relative links resolved)."""
    aliases: dict[str, list[str]] = {}
    for member in members:
        if member.issym():
            name = _clean(member.name)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            aliases.setdefault(_clean(target), []).append(name)
    return aliases


def _add_domains(domain_cats: dict[str, set[str] | str], text: str, category: str) -> None:
    for dom in text.splitlines():
        dom = dom.strip()
        if not dom:
            continue
        got = domain_cats.get(dom)
        if got is None:
            domain_cats[dom] = category  # a str while single-category (saves memory)
        elif isinstance(got, str):
            if got != category:
                domain_cats[dom] = {got, category}
        else:
            got.add(category)


def build_ut1_domain_map(
    tar_path: str | Path,
    categories: Iterable[str] = RPV2_UT1_CATEGORIES,
    flat_category: str = "adult",
) -> dict[str, int]:
    """Read a UT1 blacklists tarball and return domain -> category-combination id.

    Members `<...>/<category>/domains` are read for the wanted categories; a flat tarball whose
    member is just `domains` counts as `flat_category`. A category folder that is a symlink to
    another (UT1's `blacklists/porn -> adult`) holds that folder's domains under its own name too,
    as RPv2 sees it after extracting (`iterdir()` and `is_dir()` follow the link); symlinked
    `domains` files are read through their target. Domains are stripped lines, as in RPv2; unlike
    RPv2, empty lines are skipped (RPv2 would map the empty domain).
    """
    cats = frozenset(categories)
    index = ut1_category_index(cats)
    domain_cats: dict[str, set[str] | str] = {}
    with tarfile.open(tar_path, mode="r:*") as tar:
        members = tar.getmembers()
        aliases = _folder_aliases(members)
        for member in members:
            if not (member.isfile() or member.issym() or member.islnk()):
                continue
            name = _clean(member.name)
            folder, _, leaf = name.rpartition("/")
            names = [name, *(f"{alias}/{leaf}" for alias in aliases.get(folder, ()))]
            found = {c for n in names if (c := _category_of_member(n, cats, flat_category)) is not None}
            if not found:
                continue
            try:
                f = tar.extractfile(member)
            except KeyError:  # a link whose target is not in the archive
                continue
            if f is None:
                continue
            text = f.read().decode("utf-8", errors="replace")
            for category in sorted(found):
                _add_domains(domain_cats, text, category)
    single = {(c,): index[(c,)] for c in cats}
    out: dict[str, int] = {}
    for dom, got in domain_cats.items():
        if isinstance(got, str):
            out[dom] = single[(got,)]
        else:
            out[dom] = index[tuple(sorted(got))]
    return out


def _domain_key(domain: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(domain.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )


class UT1DomainMap(Mapping):
    """Compact exact domain -> id map: sorted 64-bit keys + ids, domains kept to verify hits.

    Memory is ~20 bytes per domain plus the domain text (a dict of 4.5 M domains would take
    ~0.5 GB per worker process)."""

    def __init__(self, domains, ids, keys=None):
        import pyarrow as pa

        domains = pa.array(domains, type=pa.large_string()) if not isinstance(domains, pa.Array) else domains
        ids = np.asarray(ids, dtype=np.int32)
        if keys is None:
            keys = np.fromiter(map(_domain_key, domains.to_pylist()), dtype=np.uint64, count=len(domains))
        keys = np.asarray(keys, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        if not np.all(order == np.arange(len(order))):
            domains = domains.take(pa.array(order))
            ids = ids[order]
            keys = keys[order]
        self._domains = domains
        self._ids = ids
        self._keys = keys

    @classmethod
    def from_dict(cls, mapping: Mapping[str, int]) -> UT1DomainMap:
        return cls(list(mapping.keys()), np.fromiter(mapping.values(), dtype=np.int32, count=len(mapping)))

    def get(self, domain, default=None):
        if not isinstance(domain, str):
            return default
        key = np.uint64(_domain_key(domain))
        keys = self._keys
        i = int(np.searchsorted(keys, key))
        while i < len(keys) and keys[i] == key:
            if self._domains[i].as_py() == domain:
                return int(self._ids[i])
            i += 1
        return default

    def __getitem__(self, domain):
        value = self.get(domain, None)
        if value is None:
            raise KeyError(domain)
        return value

    def __contains__(self, domain) -> bool:
        return self.get(domain, None) is not None

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self):
        return iter(self._domains.to_pylist())

    def to_table(self):
        import pyarrow as pa

        return pa.table(
            {
                "domain": self._domains,
                "category_id": pa.array(self._ids, pa.int32()),
                "key": pa.array(self._keys),
            }
        )


def save_ut1_domain_map(mapping: Mapping[str, int], path: str | Path, categories=RPV2_UT1_CATEGORIES) -> Path:
    """Write the map as Parquet (domain, category_id, key); the category list goes in metadata."""
    import pyarrow.parquet as pq

    m = mapping if isinstance(mapping, UT1DomainMap) else UT1DomainMap.from_dict(mapping)
    table = m.to_table()
    meta = {b"ut1_categories": json.dumps(sorted(set(categories))).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    from redpajama.io import atomic

    path = Path(path)
    with atomic.atomic_path(path) as temp:
        pq.write_table(table, temp, compression="zstd")
    return path


def load_ut1_domain_map(path: str | Path) -> UT1DomainMap:
    """Load a map written by `save_ut1_domain_map` (or any Parquet/JSON domain -> id map)."""
    path = Path(path)
    if path.suffix == ".json":  # RPv2's domain_to_category_id.json
        with open(path, encoding="utf-8") as f:
            return UT1DomainMap.from_dict(json.load(f))
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    domains = table.column("domain").combine_chunks()
    keys = table.column("key").to_numpy() if "key" in table.column_names else None
    return UT1DomainMap(domains, table.column("category_id").to_numpy(), keys)


# ------------------------------------------------------------------------------------- Resources
@dataclass(frozen=True)
class Resources:
    """Everything the content signals look up. `Resources.load()` gives the shipped lists.

    stop_words: language -> set; languages without a list fall back to English.
    ldnoobw: language -> entries; languages without a list get an empty list (as in RPv2).
    ut1: domain -> category id (dict or UT1DomainMap); None -> rps_doc_ut1_blacklist is null.
    bundle: the artifact bundle holding the fastText classifiers and DSIR counts
        (redpajama.artifacts.bundle.Bundle); None -> the ML signals are null.
    dsir_hash: the hash mode the bundle's DSIR counts were built with (dsir_features).
    """

    stop_words: Mapping[str, frozenset[str]]
    ldnoobw: Mapping[str, frozenset[str]]
    ut1: Mapping[str, int] | None = None
    bundle: Bundle | None = None
    dsir_hash: str = "stable"
    _blocklists: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def load(
        cls,
        ut1_path: str | Path | None = None,
        stop_words_path: str | Path | None = None,
        ldnoobw_dir: str | Path | None = None,
        artifacts: str | Path | None = None,
        rpv2_compat: bool = False,
    ) -> Resources:
        """artifacts: a bundle folder; None -> `Bundle.default()` (REDPAJAMA_ARTIFACTS or the
        shipped bundle). rpv2_compat: the bundle's DSIR counts must use RPv2's hashing."""
        ut1 = load_ut1_domain_map(ut1_path) if ut1_path is not None else None
        bundle = Bundle.at(artifacts)
        return cls(
            stop_words=load_stop_words(str(stop_words_path) if stop_words_path else None),
            ldnoobw=load_ldnoobw(str(ldnoobw_dir) if ldnoobw_dir else None),
            ut1=ut1,
            bundle=bundle,
            dsir_hash=resolve_hash_mode(bundle.manifest, rpv2_compat),
        )

    def stop_words_for(self, language: str | None) -> frozenset[str]:
        lang = canonical_language(language)
        got = self.stop_words.get(lang)
        return got if got is not None else self.stop_words[DEFAULT_LANGUAGE]

    def blocklist_for(self, language: str | None) -> BlockList:
        lang = canonical_language(language)
        got = self._blocklists.get(lang)
        if got is None:
            entries = self.ldnoobw.get(lang)
            got = BlockList.from_entries(entries) if entries else EMPTY_BLOCKLIST
            self._blocklists[lang] = got
        return got


@lru_cache(maxsize=1)
def default_resources() -> Resources:
    """The shipped word lists, no UT1 map (cached)."""
    return Resources.load()
