"""Golden test: our signals equal RedPajama-V2's reference outputs exactly.

golden/rpv2_reference.json holds the input documents and the values RPv2's own code computed
for them (see golden/make_golden.py). Every float is compared with `==`: RPv2 rounds most scores
to 8 decimals and we reproduce its arithmetic (including the summation order of the entropy and
Counter's tie-breaking of the top n-gram), so no tolerance is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redpajama.quality_signals.registry import HEURISTIC_SIGNALS, SIGNALS, compute
from redpajama.quality_signals.resources import Resources
from redpajama.quality_signals.view import DocView

GOLDEN = Path(__file__).resolve().parent / "golden" / "rpv2_reference.json"


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resources(golden) -> Resources:
    base = Resources.load()
    return Resources(stop_words=base.stop_words, ldnoobw=base.ldnoobw, ut1=golden["ut1_map"])


def test_golden_covers_every_signal_and_enough_documents(golden):
    docs = golden["documents"]
    assert len(docs) >= 150
    for d in docs:
        assert set(d["expected"]) == set(HEURISTIC_SIGNALS)  # ccnet_* and ML signals: own tests


def test_golden_values_equal_reference(golden, resources):
    mismatches = []
    for d in golden["documents"]:
        view = DocView(d["text"], language=d["language"], source_domain=d["source_domain"])
        got = compute(view, resources, HEURISTIC_SIGNALS)
        n = len(d["text"])
        for name, expected in d["expected"].items():
            sig = SIGNALS[name]
            value = got[name]
            if sig.level == "document":
                assert len(expected) == 1 and expected[0][:2] == [0, n], (d["source"], name)
                exp = expected[0][2]
                ok = value == exp and (exp is None or type(value) is type(exp))
            else:
                ok = [list(s) for s in value] == expected and all(
                    type(s[2]) is type(e[2]) for s, e in zip(value, expected, strict=True)
                )
            if not ok:
                mismatches.append((d["source"], name, value if sig.level == "document" else "...", expected))
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"
