"""The generic cleaner for kinds whose columns the catalog declares (Socrata, files).

Every declared column is read from each record as a string (a missing field is NULL), then cast
to its declared PostgreSQL type with the shared casts of ``cleaning.casts``. A value that does
not parse fails the year with the column, the row's key and the value, unless the catalog lists
the column in ``null_on_error``. ``year`` comes from the partition. Kinds differ only in how a
staged page turns back into records (``parse_page``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
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

    def _row_keys(self, records: Sequence[dict[str, Any]]) -> pa.Array | None:
        """What names a row in errors: its key columns joined with '/', else its position."""
        if not self.config.key:
            return None
        parts = [strings(records, name) for name in self.config.key]
        if len(parts) == 1:
            return parts[0]
        return pc.binary_join_element_wise(*parts, "/", null_handling="replace")

    def clean(self, records: list[dict[str, Any]], year: int, where: str) -> pa.Table:
        columns = self.columns()
        schema = arrow_schema(columns)
        if not records:
            return schema.empty_table()
        keys = self._row_keys(records)
        lenient = set(self.config.null_on_error)
        arrays = [pa.array([year] * len(records), pa.int32())]
        for column in columns[1:]:
            arrays.append(
                cast_column(
                    strings(records, column.name),
                    column,
                    where,
                    keys,
                    null_on_error=column.name in lenient,
                )
            )
        return pa.table(arrays, schema=schema)
