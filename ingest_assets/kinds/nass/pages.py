"""The Quick Stats page formats (quoted CSV and ``{"data": [...]}`` JSON, and the Arrow IPC
pages of a split bulk file), read without Python objects per record.

Shared by the network source (which counts a page's records while fetching) and the cleaner
(which types a staged page offline), so the cleaner never imports the network module.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from ingest_assets.errors import SourceError


def records_of(data: Any, what: str) -> list[dict[str, Any]]:
    """The records of an ``api_GET`` body, refusing any other shape with a clear error."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        keys = list(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise SourceError(f"{what}: expected a JSON object with a 'data' list, got {keys}")
    return data["data"]


@dataclass(frozen=True)
class RecordCount:
    """An ``api_GET`` body checked to be a whole page of ``rows`` records."""

    rows: int


def is_csv(body: bytes) -> bool:
    """Quick Stats CSV quotes every field, its header included; JSON and error bodies start
    with ``{``, outage pages with ``<``.
    """
    return body[:1] == b'"'


CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)
_IPC_CONTINUATION = b"\xff\xff\xff\xff"


def is_arrow(body: bytes) -> bool:
    """An Arrow IPC stream (a bulk file's pages: columns already decoded) starts with the IPC
    continuation marker; no CSV, JSON or error body does.
    """
    return body[:4] == _IPC_CONTINUATION


def arrow_batches(body: bytes) -> pa.RecordBatchStreamReader:
    """The record batches of an Arrow IPC page, read in place."""
    return pa.ipc.open_stream(pa.py_buffer(body))


def csv_header(body: bytes) -> list[str]:
    """The column names of a CSV page (its first line)."""
    line = body.split(b"\n", 1)[0]
    return next(csv.reader([line.decode("utf-8", "replace")]), [])


def count_csv(body: bytes) -> int:
    """Rows of a CSV page, parsed in C++ across threads; a page cut inside a row or a quoted
    field (or any line with a different number of fields) raises ``pa.ArrowInvalid``.
    """
    first = csv_header(body)[:1]
    table = pacsv.read_csv(
        pa.py_buffer(body),
        parse_options=CSV_PARSE,
        convert_options=pacsv.ConvertOptions(
            include_columns=first, column_types=dict.fromkeys(first, pa.string())
        ),
    )
    return table.num_rows


_COUNT_OPTIONS = pajson.ParseOptions(
    explicit_schema=pa.schema([pa.field("data", pa.list_(pa.struct([])))]),
    unexpected_field_behavior="ignore",
)


def arrow_records(body: bytes, options: pajson.ParseOptions) -> pa.Array | None:
    """The ``data`` list of a ``{"data": [...]}`` body as one Arrow struct array, parsed in C++
    against ``options`` (no Python object per record); None if the body is anything else.
    """
    try:
        table = pajson.read_json(
            pa.py_buffer(body),
            read_options=pajson.ReadOptions(block_size=len(body) + 1, use_threads=False),
            parse_options=options,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    pages = table.column("data")
    if table.num_rows != 1 or pages.null_count:
        return None
    return pages.combine_chunks().flatten()


def count_or_decode(body: bytes) -> RecordCount | Any:
    """Count a page's records without building them (a 50,000-record JSON page would cost
    ~150 MB and twice the time as Python dicts). Any other body (an error object, another
    shape) is decoded with orjson, so one that is neither CSV nor JSON still raises ValueError
    (``pa.ArrowInvalid`` is one), and the client retries it as a cut-off transfer.
    """
    if is_csv(body):
        return RecordCount(count_csv(body))
    records = arrow_records(body, _COUNT_OPTIONS)
    return orjson.loads(body) if records is None else RecordCount(len(records))
