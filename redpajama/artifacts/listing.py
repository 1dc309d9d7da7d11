"""What a bundle holds (artifact, language, path, size, sha256, source) and what it lacks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from redpajama.artifacts.catalogue import CCNET_LANGUAGES, GROUPS, by_path
from redpajama.artifacts.manifest import is_payload, read_manifest, sha256_file

_KINDS: list[tuple[str, re.Pattern[str]]] = [
    ("lid", re.compile(r"^lid/(?P<name>lid\.176\.(bin|ftz))$")),
    ("kenlm", re.compile(r"^lm/(?P<lang>[^/.]+)\.(arpa|arpa\.bin|binary)$")),
    ("sentencepiece", re.compile(r"^lm/(?P<lang>[^/.]+)\.sp\.model$")),
    ("classifier", re.compile(r"^classifiers/(?P<lang>[^/]+)/(?P<name>[^/]+)\.model\.bin$")),
    ("dsir-counts", re.compile(r"^dsir/(?P<lang>[^/]+)/(?P<name>[^/.]+)\.[^.]+\.\d+\.counts\.npy$")),
    ("dsir-lambda", re.compile(r"^dsir/(?P<lang>[^/]+)/(?P<name>[^/.]+)\.[^.]+\.lambda\.npy$")),
    ("cutoffs", re.compile(r"^cutoffs\.csv$")),
]


@dataclass(frozen=True)
class Row:
    artifact: str
    language: str
    path: str
    bytes: int
    sha256: str
    source: str


@dataclass(frozen=True)
class Missing:
    artifact: str
    language: str
    path: str
    hint: str


def classify(rel: str) -> tuple[str, str]:
    """(artifact kind with name, language) of a bundle-relative path; ("other", "") if unknown."""
    for kind, pattern in _KINDS:
        match = pattern.match(rel)
        if match:
            groups = match.groupdict()
            name = groups.get("name")
            return (f"{kind}:{name}" if name and kind != "lid" else kind), groups.get("lang") or ""
    return "other", ""


def installed(root: Path) -> list[Row]:
    manifest = read_manifest(root)
    listed = {entry["path"]: entry for entry in manifest.get("files", [])}
    sources = manifest.get("sources", {})
    built = (
        f"built: {manifest.get('name', '?')} {manifest.get('version', '?')}" if manifest else "no manifest"
    )
    rows = []
    for path in sorted(p for p in root.rglob("*") if is_payload(p, root)):
        rel = path.relative_to(root).as_posix()
        entry = listed.get(rel)
        digest = entry["sha256"] if entry else sha256_file(path)
        fetched = sources.get(rel)
        source = fetched["url"] if isinstance(fetched, dict) and "url" in fetched else built
        if entry is None:
            source = "not in manifest"
        artifact, lang = classify(rel)
        rows.append(Row(artifact, lang, rel, path.stat().st_size, digest, source))
    return rows


def expected_paths(languages: tuple[str, ...] = CCNET_LANGUAGES) -> list[tuple[str, str, tuple[str, ...]]]:
    """(artifact, language, alternative paths) of everything RPv2's signals can use."""
    out: list[tuple[str, str, tuple[str, ...]]] = [("lid", "", ("lid/lid.176.bin", "lid/lid.176.ftz"))]
    for lang in languages:
        out.append(("kenlm", lang, (f"lm/{lang}.arpa.bin", f"lm/{lang}.arpa", f"lm/{lang}.binary")))
        out.append(("sentencepiece", lang, (f"lm/{lang}.sp.model",)))
        names = ("palm", "wikiref") if lang == "en" else ("wikipedia",)
        out += [(f"classifier:{n}", lang, (f"classifiers/{lang}/{n}.model.bin",)) for n in names]
        datasets = ("wikipedia", "books", "openwebtext", "ccnet") if lang == "en" else ("wikipedia", "ccnet")
        for dataset in datasets:
            out.append((f"dsir:{dataset}", lang, (f"dsir/{lang}/{dataset}.{lang}.10000.counts.npy",)))
    return out


def missing(root: Path, languages: tuple[str, ...] = CCNET_LANGUAGES) -> list[Missing]:
    fetchable = by_path()
    group_of: dict[str, str] = {}
    for group, members in GROUPS.items():  # the first (smallest) group naming a file wins; never "all"
        if group == "all":
            continue
        for member in members:
            group_of.setdefault(member, group)
    out = []
    for artifact, lang, alternatives in expected_paths(languages):
        if any((root / rel).is_file() for rel in alternatives):
            continue
        entry = next((fetchable[rel] for rel in alternatives if rel in fetchable), None)
        if entry:
            hint = f"redpajama artifacts fetch {group_of.get(entry.name, entry.name)}"
        else:
            hint = "redpajama artifacts build (needs reference corpora)"
        out.append(Missing(artifact, lang, alternatives[0], hint))
    return out
