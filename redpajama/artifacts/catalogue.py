"""The official artifacts a real run wants, where they live upstream, and where they go in a bundle.

Sizes and sha256 are filled in only where they are known from a verified local copy; everything
else is None and the download is trusted as served (HTTPS) and recorded in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

CCNET_LANGUAGES = ("en", "de", "fr", "es", "it")  # RPv2's languages (REFERENCE A.4)


@dataclass(frozen=True)
class Artifact:
    name: str
    url: str
    path: str  # relative path inside a bundle (bundle.py layout)
    licence: str
    size: int | None = None
    sha256: str | None = None


FASTTEXT_LICENCE = "CC BY-SA 3.0 (fastText language identification, Facebook)"
CCNET_LICENCE = "MIT (facebookresearch/cc_net); trained on Wikipedia text (CC BY-SA 3.0)"
RPV2_LICENCE = "Apache-2.0 (togethercomputer/RedPajama-Data)"

_ENTRIES: list[Artifact] = [
    Artifact(
        "lid.176.bin",
        "https://dl.fbaipublicfiles.com/fasttext/supervised-models/lid.176.bin",
        "lid/lid.176.bin",
        FASTTEXT_LICENCE,
    ),
    Artifact(
        "lid.176.ftz",
        "https://dl.fbaipublicfiles.com/fasttext/supervised-models/lid.176.ftz",
        "lid/lid.176.ftz",
        FASTTEXT_LICENCE,
        # Known from the byte-identical copy shipped in redpajama/artifacts/default (SOURCE.md).
        size=938_013,
        sha256="8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83",
    ),
    Artifact(
        "wikiref",
        "https://data.together.xyz/redpajama-data-v2/v1.0.0/artifacts/wikiref.model.bin",
        "classifiers/en/wikiref.model.bin",
        RPV2_LICENCE,
    ),
]
for _lang in CCNET_LANGUAGES:
    _ENTRIES += [
        Artifact(
            f"ccnet-lm-{_lang}",
            f"https://dl.fbaipublicfiles.com/cc_net/lm/{_lang}.arpa.bin",
            f"lm/{_lang}.arpa.bin",
            CCNET_LICENCE,
        ),
        Artifact(
            f"ccnet-sp-{_lang}",
            f"https://dl.fbaipublicfiles.com/cc_net/lm/{_lang}.sp.model",
            f"lm/{_lang}.sp.model",
            CCNET_LICENCE,
        ),
    ]

CATALOGUE: dict[str, Artifact] = {entry.name: entry for entry in _ENTRIES}

#: Names that stand for several entries.
GROUPS: dict[str, tuple[str, ...]] = {
    "lid": ("lid.176.bin",),
    **{f"ccnet-{lang}": (f"ccnet-lm-{lang}", f"ccnet-sp-{lang}") for lang in CCNET_LANGUAGES},
    "ccnet": tuple(n for lang in CCNET_LANGUAGES for n in (f"ccnet-lm-{lang}", f"ccnet-sp-{lang}")),
    "all": tuple(CATALOGUE),
}

#: What `redpajama artifacts fetch` gets when no name is given: an English RPv2 run.
DEFAULT_NAMES = ("lid", "ccnet-en", "wikiref")


def resolve(names: list[str] | tuple[str, ...]) -> list[Artifact]:
    """Catalogue entries for names and group names, in order, each once."""
    out: dict[str, Artifact] = {}
    for name in names:
        members = GROUPS.get(name, (name,))
        for member in members:
            if member not in CATALOGUE:
                known = ", ".join([*GROUPS, *CATALOGUE])
                raise KeyError(f"unknown artifact {name!r}; known: {known}")
            out[member] = CATALOGUE[member]
    return list(out.values())


def by_path() -> dict[str, Artifact]:
    return {entry.path: entry for entry in _ENTRIES}
