"""A year's part cut into pages at line ends: every row once, in order, under the part's header."""

import pyarrow as pa
import pytest

from ingest_assets.kinds.nass_bulk import split

pytestmark = pytest.mark.unit

HEADER = b'"year","value"\n'


def rows(count: int) -> list[bytes]:
    return [f'"2020","{i:,}"'.encode() for i in range(count)]


@pytest.mark.parametrize(("count", "per_page"), [(10, 3), (9, 3), (1, 5), (2_000, 700)])
def test_pages_hold_every_row_once_under_the_header(count, per_page, monkeypatch):
    monkeypatch.setattr(split, "BLOCK_BYTES", 37)  # blocks end inside rows, as they do at size
    part = HEADER + b"\n".join(rows(count)) + b"\n"
    pages = list(split.line_pages(pa.BufferReader(part), per_page))
    assert [n for _, n in pages] == [min(per_page, count - i) for i in range(0, count, per_page)]
    assert all(body.startswith(HEADER) and body.endswith(b"\n") for body, _ in pages)
    assert b"".join(body.removeprefix(HEADER) for body, _ in pages) == part.removeprefix(HEADER)
