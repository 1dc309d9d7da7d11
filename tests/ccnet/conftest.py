import shutil
from pathlib import Path

import pytest
from ccnet_helpers import LID, SHARED

SP_DIR = SHARED / "sentencepiece-test-models-botchan"


def _require(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            pytest.skip(f"shared test data not found: {path}")


@pytest.fixture(scope="session")
def lid_bundle(tmp_path_factory) -> Path:
    """A bundle with only the language id model (no LM: perplexity null, bucket all)."""
    _require(LID)
    root = tmp_path_factory.mktemp("lid_bundle")
    (root / "lid").mkdir()
    shutil.copy(LID, root / "lid" / "lid.176.ftz")
    return root


@pytest.fixture(scope="session")
def en_bundle(tmp_path_factory) -> Path:
    """lid.176 + an English bigram LM on SentencePiece pieces of Botchan (toy_lm)."""
    _require(LID, SP_DIR / "botchan.txt", SP_DIR / "botchan_en_unigram_1000.model")
    import sentencepiece

    from redpajama.pipelines.ccnet.normalize import normalize
    from redpajama.pipelines.ccnet.toy_lm import write_arpa

    root = tmp_path_factory.mktemp("en_bundle")
    (root / "lid").mkdir()
    (root / "lm").mkdir()
    shutil.copy(LID, root / "lid" / "lid.176.ftz")
    shutil.copy(SP_DIR / "botchan_en_unigram_1000.model", root / "lm" / "en.sp.model")
    sp = sentencepiece.SentencePieceProcessor()
    sp.load(str(root / "lm" / "en.sp.model"))
    text = (SP_DIR / "botchan.txt").read_text("utf-8")
    lines = [normalize(line) for line in text.splitlines()]
    write_arpa((" ".join(sp.encode_as_pieces(line)) for line in lines if line), root / "lm" / "en.arpa")
    return root
