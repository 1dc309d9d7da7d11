"""Exported json.gz files: byte-identical on every write (no temp name or time in the gzip header)."""

import gzip

from redpajama.pipelines.export import gzip_lines


def test_gzip_header_has_no_name_and_no_time(tmp_path):
    final = tmp_path / "2023-14" / "0000" / "en_head.json.gz"
    final.parent.mkdir(parents=True)
    written = []
    for _ in range(2):
        with gzip_lines(final) as out:
            out.write(b'{"raw_content": "x"}\n')
        written.append(final.read_bytes())
    assert written[0] == written[1]
    header = written[0][:10]
    assert header[3] & 0x08 == 0  # FNAME unset: the temp file's name is not recorded
    assert header[4:8] == b"\0\0\0\0"  # mtime 0
    assert gzip.decompress(written[0]) == b'{"raw_content": "x"}\n'
