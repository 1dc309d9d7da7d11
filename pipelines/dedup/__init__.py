"""Deduplication: fuzzy (MinHash LSH -> connected components -> keep policy) and exact (Bloom filter).

    minhash/<snapshot>/<shard>/<lang>_<bucket>.parquet
        -> clusters/fuzzy-<t>/<snapshot>/<shard>/<lang>_<bucket>.parquet    (id, id_int, cluster_id, shard_id)
        -> duplicates/fuzzy-<t>/<snapshot>/<shard>/<lang>_<bucket>.parquet  (id, id_int, cluster_id, shard_id)
    documents/<snapshot>/<shard>/<lang>_<bucket>.parquet
        -> duplicates/exact/<snapshot>/<shard>/<lang>_<bucket>.parquet
           (shard_id, doc_id, digest, id, id_int)

Both `duplicates/` trees list every document to drop (all members of a group except the kept
one), so a user filters with an anti-join on `id`. The extra `fuzzy-<t>` / `exact` level keeps
the two kinds of output, and fuzzy runs at different thresholds, from overwriting each other.

Modules: `lsh` (band keys, disk partitions, per-partition star edges), `components` (union-find
over dense row indices), `keep` (which member of a cluster survives), `stage` (the fuzzy run),
`exact` (Bloom filter and the exact run), `synthetic` (planted-duplicate minhash trees for
tests and benchmarks).
"""
