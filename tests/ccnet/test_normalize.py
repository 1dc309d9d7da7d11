"""CCNet's normalizers: expected strings from cc_net/tests/test_normalizer.py and its code."""

from redpajama.pipelines.ccnet.normalize import normalize, normalize_for_dedup, strip_accents


def test_unicode_punct_map_as_ccnet_test():
    weird = "，。、„”“«»１」「《》´∶：？！（）；–—．～’…━〈〉【】％"
    # "１" is a digit first (CCNet replaces digits before punctuation), the rest follow the map.
    assert normalize(weird) == ',.,"""""0""""\'::?!();- - . ~\'...-<>[]%'
    assert normalize_for_dedup(weird) == "0"


def test_numbers_as_ccnet_test():
    assert normalize("０２３４５６７８９ | 0123456789") == "000000000 | 0000000000"


def test_normalize_for_dedup_as_ccnet_test():
    assert normalize_for_dedup("０２３´∶：\x10 | ;012 hèllo") == "000 | ;000 hèllo"


def test_normalize_lowercases_strips_accents_and_control_chars():
    assert normalize("  Héllo  WÖRLD\t2024 “ok” — done…  ") == 'hello  world0000 "ok"  -  done...'
    assert normalize("line one\nLine Two") == "line oneline two"  # newlines are control chars
    assert normalize("   ") == ""
    assert strip_accents("crème brûlée") == "creme brulee"


def test_dedup_key_keeps_accents_and_drops_punct():
    assert normalize_for_dedup("  Crème, «brûlée» 12  ") == "crème, brûlée 00"
    assert normalize_for_dedup("Click HERE 2023") == normalize_for_dedup("click here 1999")
