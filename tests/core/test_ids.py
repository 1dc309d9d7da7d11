import hashlib
import sys

import numpy as np

from redpajama import ids


def test_rpv2_uri_id_is_path_from_snapshot_on():
    path = "/data/rpv2/documents/2023-14/0000/en_head.json.gz"
    assert ids.rpv2_uri_id(path) == "2023-14/0000/en_head.json.gz"
    assert ids.rpv2_uri_id("s3://bucket/x/2014-15/4999/it_tail.json.gz") == "2014-15/4999/it_tail.json.gz"
    assert ids.rpv2_uri_id("crawl/CC-MAIN-2024-22-x.warc.gz") is None


def test_id_int_is_first_8_bytes_of_sha1_little_endian():
    doc_id = "2023-14/0000/en_head.json.gz/17"
    digest = hashlib.sha1(doc_id.encode()).digest()
    # RPv2's own formula on the (little-endian) machines it ran on.
    assert ids.id_int_of(doc_id) == int.from_bytes(digest[:8], byteorder=sys.byteorder, signed=False)
    assert ids.id_int_of(doc_id) == int.from_bytes(digest[:8][::-1], "big")
    assert ids.id_int_of(doc_id) < 2**64


def test_vectorised_id_ints_match_scalar():
    values = [f"s/{i}" for i in range(50)] + ["ünïcode/1"]
    out = ids.id_ints_of(values)
    assert out.dtype == np.uint64
    assert [int(v) for v in out] == [ids.id_int_of(v) for v in values]


def test_doc_id_forms():
    assert ids.rpv2_doc_id("2023-14/0000/en_head.json.gz", 3) == "2023-14/0000/en_head.json.gz/3"
    assert ids.local_doc_id("shardname", 0) == "shardname/0"
