"""The generic cleaner for kinds whose columns the catalog declares (Socrata, files).

Every declared column is read from each record as a string (a missing field is NULL), then cast
to its declared PostgreSQL type with the shared casts of ``cleaning.casts``. A value that does
not parse fails the year with the column, the row's key and the value, unless the catalog lists
the column in ``null_on_error``. ``year`` comes from the partition. Kinds differ only in how a
staged page turns back into strings: records (``parse_page``), or, for a kind whose pages are
columnar already, string columns typed by ``type_strings`` without a detour through Python
objects (the files kind's CSV pages).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.cleaning.casts import cast_column, strings
from ingest_assets.cleaning.columns import Column, arrow_schema
from ingest_assets.kinds.base import Cleaner
from ingest_assets.kinds.typed import TypedDatasetConfig


class TypedColumnsCleaner(Cleaner):
    """The cleaner of kinds whose catalog entries declare their columns (socrata, files)."""

    config: TypedDatasetConfig

    def base_columns(self) -> tuple[Column, ...]:
        return self.config.typed_columns()

    @property
    def row_key(self) -> tuple[str, ...]:
        return tuple(self.config.key)

    def expected_fields(self) -> tuple[str, ...]:
        return tuple(self.config.columns)

    def page_fields(self, body: bytes) -> set[str]:
        return {name for record in self.parse_page(body) for name in record}

    @abstractmethod
    def parse_page(self, body: bytes) -> list[dict[str, Any]]:
        """Turn a staged page back into records of strings."""

    def _row_keys(self, text: pa.Table) -> pa.Array | None:
        """What names a row in errors: its key columns joined with '/', else its position."""
        if not self.config.key:
            return None
        parts = [_column(text, name) for name in self.config.key]
        if len(parts) == 1:
            return parts[0]
        return pc.binary_join_element_wise(*parts, "/", null_handling="replace")

    def clean(self, records: list[dict[str, Any]], year: int, where: str) -> pa.Table:
        names = dict.fromkeys([*(c.name for c in self.columns()[1:]), *self.config.key])
        return self.type_strings(pa.table({n: strings(records, n) for n in names}), year, where)

    def type_strings(self, text: pa.Table, year: int, where: str) -> pa.Table:
        """Cast a table of string columns (an absent one is NULL) to the declared columns."""
        columns = self.columns()
        schema = arrow_schema(columns)
        if not text.num_rows:
            return schema.empty_table()
        keys = self._row_keys(text)
        lenient = set(self.config.null_on_error)
        arrays = [pc.fill_null(pa.nulls(text.num_rows, pa.int32()), year)]
        for column in columns[1:]:
            arrays.append(
                cast_column(
                    _column(text, column.name),
                    column,
                    where,
                    keys,
                    null_on_error=column.name in lenient,
                )
            )
        return pa.table(arrays, schema=schema)


def _column(text: pa.Table, name: str) -> pa.Array:
    """One string column as a single array; NULLs when the page has no such field."""
    if name not in text.column_names:
        return pa.nulls(text.num_rows, pa.string())
    return text.column(name).combine_chunks()
