"""Perplexity as CCNet computes it, and the buckets at the cutoffs."""

import random

import kenlm
import pytest

from redpajama.artifacts.bundle import Bundle
from redpajama.pipelines.ccnet.buckets import bucket_of
from redpajama.pipelines.ccnet.normalize import normalize
from redpajama.pipelines.ccnet.perplexity import LanguageModel
from redpajama.pipelines.ccnet.toy_lm import write_arpa

PROSE = [
    "I was sent to the country as a teacher of mathematics in a middle school.",
    "The headmaster told me that I must be a model to the boys, and I said nothing.",
    "When I went back to my lodging the old woman brought me some tea.",
]


@pytest.fixture(scope="module")
def model(en_bundle) -> LanguageModel:
    return LanguageModel.load(*Bundle(en_bundle).language_model("en"))


def _tokenized(model: LanguageModel, text: str) -> str:
    return " ".join(model.sp.encode_as_pieces(normalize(text)))


def test_one_line_doc_equals_kenlm_perplexity(model):
    line = PROSE[0]
    expected = round(model.lm.perplexity(_tokenized(model, line)), 1)
    assert model.perplexities([line]) == [expected]


def test_multi_line_doc_matches_hand_computation(model):
    doc = "\n".join(PROSE)
    # mine.py: the whole document normalized (newlines deleted), tokenized, scored as one line
    glued = _tokenized(model, doc)
    assert "\n" not in glued
    expected = round(10 ** (-model.lm.score(glued) / (len(glued.split()) + 1)), 1)
    assert model.perplexities([doc]) == [expected]
    # per-line variant: sum of kenlm scores over lines, words + 1 per line
    lines = [_tokenized(model, line) for line in PROSE]
    score = sum(model.lm.score(t) for t in lines)
    length = sum(len(t.split()) + 1 for t in lines)
    assert model.perplexities([doc], per_line=True) == [round(10 ** (-score / length), 1)]


def test_prose_scores_far_below_shuffled_words_and_spam(model):
    prose = " ".join(PROSE)
    words = prose.split()
    random.Random(0).shuffle(words)
    spam = "BUY CHEAP pills now!!! best price casino bonus click here free $$$ viagra 24/7 deals"
    pp_prose, pp_shuffled, pp_spam = model.perplexities([prose, " ".join(words), spam])
    assert pp_prose * 2 < pp_shuffled
    assert pp_prose * 2 < pp_spam


def test_empty_normalized_text_has_no_perplexity(model):
    assert model.perplexities(["\n\x01\n"]) == [None]


def test_toy_lm_loads_in_kenlm(tmp_path):
    model = kenlm.Model(str(write_arpa(["a b c", "a b"], tmp_path / "t.arpa")))
    assert model.order == 2 and model.score("a b") < 0


def test_buckets_at_the_cutoffs():
    cutoffs = {"en": (340.0, 520.0)}
    assert bucket_of(339.9, "en", cutoffs) == "head"
    assert bucket_of(340.0, "en", cutoffs) == "middle"
    assert bucket_of(519.9, "en", cutoffs) == "middle"
    assert bucket_of(520.0, "en", cutoffs) == "tail"
    assert bucket_of(None, "en", cutoffs) == "all"
    assert bucket_of(100.0, "xx", cutoffs) == "all"
