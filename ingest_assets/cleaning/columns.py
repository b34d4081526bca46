"""The column model shared by cleaning and the warehouse: a name and its PostgreSQL type.

A column is declared once, with its PostgreSQL type; the Arrow type used in Parquet and the
cleaning cast (``casts``) are derived from it, so the cleaned frame and the facts table cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

PG_TO_ARROW: dict[str, pa.DataType] = {
    "text": pa.string(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "smallint": pa.int16(),
    "double precision": pa.float64(),
    "real": pa.float32(),
    "numeric": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "jsonb": pa.string(),
}
PG_TYPES = tuple(PG_TO_ARROW)


@dataclass(frozen=True)
class Column:
    """A warehouse column: its name and PostgreSQL type, and the Arrow type it is cleaned to."""

    name: str
    pg_type: str

    @property
    def arrow_type(self) -> pa.DataType:
        return PG_TO_ARROW[self.pg_type]


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema the cleaned frames of these columns are written with."""
    return pa.schema([pa.field(c.name, c.arrow_type) for c in columns])
