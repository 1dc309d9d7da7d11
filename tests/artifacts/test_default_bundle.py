from __future__ import annotations

import fasttext
import kenlm
import pytest

from redpajama.artifacts.bundle import DEFAULT_BUNDLE, Bundle
from redpajama.artifacts.manifest import verify
from redpajama.quality_signals.dsir_features import resolve_hash_mode


@pytest.fixture()
def bundle(monkeypatch) -> Bundle:
    monkeypatch.delenv("REDPAJAMA_ARTIFACTS", raising=False)
    return Bundle.default()


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_manifest_verifies(bundle):
    assert bundle.root == DEFAULT_BUNDLE
    assert verify(bundle.root) == []
    assert sum(entry["bytes"] for entry in bundle.manifest["files"]) < 8_000_000
    assert resolve_hash_mode(bundle.manifest) == "stable"
    # Paths in a shipped manifest are relative: nothing of the machine that built it.
    assert not [v for v in _strings(bundle.manifest) if v.startswith("/") or v[1:3] == ":\\"]


def test_every_model_the_consumers_look_up_is_there(bundle):
    assert bundle.lid_model().name == "lid.176.ftz"
    assert bundle.language_model("en") and bundle.classifier("en", "palm") and bundle.dsir("en", "wikipedia")
    assert bundle.dsir("en", "ccnet") and "en" in bundle.cutoffs


def test_lid_predicts_en_de_fr(bundle):
    model = fasttext.load_model(str(bundle.lid_model()))
    samples = {
        "en": "The committee will publish its report on the new railway line next spring.",
        "de": "Die Kommission wird ihren Bericht über die neue Bahnstrecke im Frühjahr veröffentlichen.",
        "fr": "La commission publiera son rapport sur la nouvelle ligne de chemin de fer au printemps.",
    }
    for lang, text in samples.items():
        labels, _ = model.predict(text)
        assert labels[0] == f"__label__{lang}"


def test_language_model_loads(bundle):
    lm_path, _ = bundle.language_model("en")
    model = kenlm.Model(str(lm_path))
    assert model.order == 5
