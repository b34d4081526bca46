"""Values PostgreSQL cannot store, caught in the cleaned Arrow tables before any COPY.

Everything else (backslashes, tabs, newlines, CRs, quotes, non-ASCII, megabyte strings) passes
through untouched; the COPY format quotes it. A NUL byte in text is the one thing a ``text``
column refuses, and psycopg's raw error would name no dataset, column or row, so it is found here
with pyarrow.compute (one vectorized pass per text column, only for pages whose bytes hold one)
and either refused with the column, the row's key and ``repr`` of the value, or stripped when
the catalog says ``nul_bytes: strip``.
Out-of-range numbers are refused in ``casts``, where the source text is still at hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.errors import CleaningError

NUL = "\x00"
_NUL_SPELLINGS = (b"\x00", b"\\u0000")  # raw, and as a JSON escape


def may_hold_nul(body: bytes) -> bool:
    """False when a staged page cannot hold a NUL byte in any value (a C-speed byte search), so
    the per-column pass is skipped for the pages (nearly all) that have none.
    """
    return any(spelling in body for spelling in _NUL_SPELLINGS)


def row_key(table: pa.Table, index: int, key_columns: Sequence[str]) -> str:
    """How an error names a row: its key columns' values, else its position in the chunk."""
    if not key_columns:
        return f"row {index}"
    return "key " + "/".join(str(table.column(c)[index].as_py()) for c in key_columns)


def check_storable(
    table: pa.Table, where: str, nul_bytes: str, key_columns: Sequence[str] = ()
) -> pa.Table:
    """The table with NUL bytes refused (``nul_bytes='fail'``) or stripped (``'strip'``)."""
    for position, field in enumerate(table.schema):
        if not pa.types.is_string(field.type):
            continue
        values = table.column(position)
        found = pc.match_substring(values, NUL)
        if not pc.any(found).as_py():
            continue
        if nul_bytes == "strip":
            stripped = pc.replace_substring(values, NUL, "")
            table = table.set_column(position, field, stripped)
            continue
        index = pc.index(found, True).as_py()
        raise CleaningError(
            f"{where}: column {field.name!r} holds a NUL byte, which PostgreSQL text cannot "
            f"store: {values[index].as_py()!r} ({row_key(table, index, key_columns)}); set "
            "nul_bytes: strip in the catalog to remove NUL bytes"
        )
    return table
