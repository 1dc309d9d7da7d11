from __future__ import annotations

import random

import kenlm
import pytest

from redpajama.pipelines.artifacts.kneser_ney import estimate, write_arpa

WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "fast", "slow", "big", "small", "red"]


def corpus(n: int = 400) -> list[list[str]]:
    rng = random.Random(0)
    return [[rng.choice(WORDS) for _ in range(rng.randint(3, 9))] for _ in range(n)]


@pytest.mark.parametrize("prune", [[1, 1, 1, 1, 1], [1, 2, 2, 3, 3]])
def test_every_conditional_distribution_sums_to_one(tmp_path, prune):
    path = tmp_path / "lm.arpa"
    write_arpa(estimate(corpus(), 5, prune), path)
    model = kenlm.Model(str(path))
    for context in ([], ["the", "cat"], ["sat", "on", "the"], ["red"] * 4, ["unseen"]):
        state = kenlm.State()
        model.BeginSentenceWrite(state)
        for word in context:
            out = kenlm.State()
            model.BaseScore(state, word, out)
            state = out
        total = sum(10 ** model.BaseScore(state, w, kenlm.State()) for w in [*WORDS, "</s>", "<unk>"])
        assert total == pytest.approx(1.0, abs=1e-4)


def test_same_input_same_bytes(tmp_path):
    a, b = tmp_path / "a.arpa", tmp_path / "b.arpa"
    write_arpa(estimate(corpus(), 3), a)
    write_arpa(estimate(corpus(), 3), b)
    assert a.read_bytes() == b.read_bytes()


def test_matches_lmplz_on_botchan(shared_data, tmp_path):
    """lmplz -o 3 on botchan.txt (shared kenlm-arpa-models) and our estimator agree."""
    import gzip

    text = shared_data / "sentencepiece-test-models-botchan" / "botchan.txt"
    sentences = [line.split() for line in text.read_text("utf-8").splitlines() if line.split()]
    ours = tmp_path / "ours.arpa"
    write_arpa(estimate(sentences, 3), ours)
    ref = tmp_path / "ref.arpa"
    ref.write_bytes(
        gzip.decompress((shared_data / "kenlm-arpa-models" / "botchan-3gram.arpa.gz").read_bytes())
    )
    a, b = kenlm.Model(str(ours)), kenlm.Model(str(ref))
    for sentence in (
        "I was sent to the country as a teacher .",
        "asdf qwer zxcv uiop",
        " ".join(sentences[100]),
    ):
        assert a.perplexity(sentence) == pytest.approx(b.perplexity(sentence), rel=1e-4)
