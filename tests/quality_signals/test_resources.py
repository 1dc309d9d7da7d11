"""Word lists, the UT1 category-combination ids, and the UT1 domain map builder."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from redpajama.quality_signals.resources import (
    RPV2_UT1_CATEGORIES,
    Resources,
    UT1DomainMap,
    build_ut1_domain_map,
    canonical_language,
    load_ldnoobw,
    load_stop_words,
    load_ut1_domain_map,
    save_ut1_domain_map,
    ut1_category_index,
)

DATATROVE_UT1 = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "ut1-blocklist-datatrove"
    / "url_filterblacklistsv0_3_0.tar.gz"
)


def _tarball(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_category_index_matches_rpv2_ids():
    index = ut1_category_index(RPV2_UT1_CATEGORIES)
    assert len(index) == 2**13 - 1
    singles = [c for (c,) in (k for k in index if len(k) == 1)]
    assert singles == sorted(RPV2_UT1_CATEGORIES)
    assert index[("adult",)] == 0 and index[("agressif",)] == 1 and index[("violence",)] == 12
    assert index[("adult", "agressif")] == 13
    assert index[("adult", "mixed_adult")] == 21
    assert index[("adult", "porn")] == 23
    assert index[tuple(sorted(RPV2_UT1_CATEGORIES))] == 8190


def test_build_from_ut1_layout(tmp_path):
    tar = _tarball(
        tmp_path / "blacklists.tar.gz",
        {
            "blacklists/adult/domains": "a.com\nb.com\n\n",
            "blacklists/adult/urls": "a.com/x\n",
            "blacklists/porn/domains": "b.com\r\nc.com\n",
            "blacklists/gambling/domains": "d.com",
            "blacklists/other/domains": "e.com\n",
        },
    )
    m = build_ut1_domain_map(tar)
    assert m == {"a.com": 0, "b.com": 23, "c.com": 11, "d.com": 8}


@pytest.mark.parametrize("links_first", (False, True))
def test_symlinked_category_folders_hold_their_targets_domains(tmp_path, links_first):
    # UT1 ships blacklists/porn as a symlink to adult: RPv2 extracts the tarball and walks the
    # folders following links, so every adult domain is also a porn domain ({adult, porn} = 23).
    # A symlinked domains file holds its target's domains. Links may come before their targets.
    path = tmp_path / "ut1.tar.gz"
    files = {
        "blacklists/adult/domains": "sex.example\nboth.example\n",
        "blacklists/violence/domains": "both.example\n",
    }
    links = (("blacklists/porn", "adult"), ("./blacklists/gambling/domains", "../violence/domains"))

    def add_files(tar):
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))

    def add_links(tar):
        for name, target in links:
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tar.addfile(link)

    with tarfile.open(path, "w:gz") as tar:
        for add in (add_links, add_files) if links_first else (add_files, add_links):
            add(tar)
    index = ut1_category_index(RPV2_UT1_CATEGORIES)
    assert build_ut1_domain_map(path) == {
        "sex.example": index[("adult", "porn")],
        "both.example": index[("adult", "gambling", "porn", "violence")],
    }
    assert index[("adult", "porn")] == 23


def test_build_from_flat_layout(tmp_path):
    tar = _tarball(tmp_path / "flat.tar.gz", {"domains": "x.com\ny.com\n", "urls": "x.com/a\n"})
    assert build_ut1_domain_map(tar) == {"x.com": 0, "y.com": 0}
    assert build_ut1_domain_map(tar, flat_category="porn") == {"x.com": 11, "y.com": 11}
    # a category list of its own renumbers the ids
    assert build_ut1_domain_map(tar, categories=("porn", "adult"), flat_category="porn") == {
        "x.com": 1,
        "y.com": 1,
    }


def test_save_load_roundtrip_and_lookup(tmp_path):
    mapping = {"a.com": 0, "b.com": 23, "c.com": 11, "ünï.example": 5}
    path = save_ut1_domain_map(mapping, tmp_path / "ut1.parquet")
    loaded = load_ut1_domain_map(path)
    assert isinstance(loaded, UT1DomainMap)
    assert dict(loaded.items()) == mapping
    assert loaded.get("b.com") == 23 and loaded.get("www.b.com") is None and loaded.get(None) is None
    assert "c.com" in loaded and len(loaded) == 4
    res = Resources.load(ut1_path=path)
    assert res.ut1.get("ünï.example") == 5


def test_shipped_word_lists():
    stop = load_stop_words()
    assert {"en", "de", "fr", "es", "it"} <= set(stop)
    assert "the" in stop["en"] and "The" not in stop["en"]
    bad = load_ldnoobw()
    assert set(bad) == {"en", "de", "fr", "es", "it"}
    assert len(bad["en"]) >= 400
    assert any(" " in w for w in bad["en"])  # multi-word entries


def test_language_canonicalization():
    assert canonical_language(None) == "en"
    assert canonical_language("") == "en"
    assert canonical_language("DE") == "de"
    assert canonical_language("fr_CA") == "fr"
    res = Resources.load()
    assert res.stop_words_for("zz") == res.stop_words["en"]
    assert res.blocklist_for("zz").words == frozenset()


@pytest.mark.slow
@pytest.mark.skipif(not DATATROVE_UT1.exists(), reason="shared UT1 tarball not found")
def test_datatrove_ut1_tarball():
    m = build_ut1_domain_map(DATATROVE_UT1)  # flat 'adult' tarball: ~4.56 M domains, ~8 s
    assert len(m) > 4_500_000
    assert set(m.values()) == {0}
    assert m.get("0-1avsex.com") == 0
