"""A year's part regrouped into Arrow pages: every row once, in order, under the part's schema,
whatever the sizes of the blocks the pass wrote."""

from pathlib import Path

import pyarrow as pa
import pytest

from ingest_assets.kinds.nass.pages import arrow_batches, is_arrow
from ingest_assets.kinds.nass_bulk import split

pytestmark = pytest.mark.unit

SCHEMA = pa.schema([("year", pa.string()), ("Value", pa.string())])


def write_part(path: Path, count: int, block: int) -> list[str]:
    """A part of ``count`` rows in blocks of ``block`` rows, as the pass writes one."""
    values = [f"{i:,}" for i in range(count)]
    part = split.YearPart.open(path, SCHEMA)
    for start in range(0, count, block):
        chunk = values[start : start + block]
        part.writer.write_batch(pa.record_batch([["2020"] * len(chunk), chunk], schema=SCHEMA))
        part.rows += len(chunk)
    part.close()
    return values


@pytest.mark.parametrize(
    ("count", "block", "per_page"), [(10, 4, 3), (9, 3, 3), (1, 1, 5), (2_000, 333, 700)]
)
def test_pages_hold_every_row_once_under_the_schema(count, block, per_page, tmp_path):
    values = write_part(tmp_path / split.part_name(2020), count, block)
    pages = list(split.arrow_pages(tmp_path / split.part_name(2020), per_page))
    assert [n for _, n in pages] == [min(per_page, count - i) for i in range(0, count, per_page)]
    assert all(is_arrow(body) for body, _ in pages)
    tables = [arrow_batches(body).read_all() for body, _ in pages]
    assert all(table.schema == SCHEMA for table in tables)
    assert [n for _, n in pages] == [table.num_rows for table in tables]
    assert [v for table in tables for v in table.column("Value").to_pylist()] == values


def test_a_part_is_compressed_and_checksummed(tmp_path):
    path = tmp_path / split.part_name(2020)
    write_part(path, 5_000, 1_000)
    part = split.YearPart.open(tmp_path / "again.arrow", SCHEMA)
    entry = part.close()
    assert entry["rows"] == 0 and len(entry["sha256"]) == 64
    # 5,000 repetitive rows: zstd buffers keep the part far below the raw text's size
    assert path.stat().st_size < 5_000 * len("2020") + sum(len(f"{i:,}") for i in range(5_000))
