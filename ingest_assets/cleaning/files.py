"""Staged file pages → typed columns.

A staged page of the files kind is CSV written by the source from the year's rows: a header of
the declared column names, every value text, NULL as an empty field. Reading it back with every
column as a string and handing the records to the generic typed-columns cleaner keeps one set of
casts (and one set of error messages) for every declared-columns kind.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from ingest_assets.cleaning.typed import TypedColumnsCleaner


class FilesCleaner(TypedColumnsCleaner):
    def parse_page(self, body: bytes) -> list[dict[str, Any]]:
        options = pacsv.ConvertOptions(
            column_types=dict.fromkeys(self.config.columns, pa.string()),
            strings_can_be_null=True,
            null_values=[""],
        )
        return pacsv.read_csv(io.BytesIO(body), convert_options=options).to_pylist()
