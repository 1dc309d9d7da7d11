"""The CCNet stage: line dedup, language id, perplexity and bucket, as CCNet's `mine.py` runs them.

Modules, one job each: `normalize` (CCNet's text normalizers), `line_dedup` (line hashes and the
group duplicate sets), `language_id` (fastText lid.176), `perplexity` (SentencePiece + KenLM),
`buckets` (head/middle/tail), `swap` (the crash-safe shard replacement), `stage` (the two passes
and the run).
"""

# cc_net's `min_len` (mine.py): its WET reader drops documents shorter than this many characters.
CCNET_MIN_LENGTH = 300
