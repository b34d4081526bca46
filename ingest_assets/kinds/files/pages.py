"""The staged page format of the files kind: CSV of the declared columns, NULL as an empty field.

Written by the source from a year's rows and read back by the cleaner, so both sides of the
format live here and the cleaner never imports the source (which opens the files).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

MAX_ROW_BYTES = 16 << 20  # one CSV read block; the longest row (a value of megabytes) must fit
QUOTED_NEWLINES = pacsv.ParseOptions(newlines_in_values=True)


def write_page(table: pa.Table) -> bytes:
    """A page body: a header of the column names, then the rows, every value as text."""
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    return buffer.getvalue()


def page_header(body: bytes) -> list[str]:
    """The column names of a page (its header line)."""
    return pacsv.open_csv(io.BytesIO(body)).schema.names


def page_blocks(body: bytes, columns: Iterable[str]) -> Iterator[pa.Table]:
    """A page body as tables of string columns (an empty field is NULL), one per read block."""
    reader = pacsv.open_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(block_size=MAX_ROW_BYTES),
        parse_options=QUOTED_NEWLINES,
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()),
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    for batch in reader:
        yield pa.Table.from_batches([batch])


def read_page(body: bytes, columns: Iterable[str]) -> list[dict[str, Any]]:
    """A page body back as records of strings (an empty field is None)."""
    return [record for block in page_blocks(body, columns) for record in block.to_pylist()]
