"""Staged file pages → typed columns.

A staged page of the files kind is CSV written by the source from the year's rows (``pages``).
Its blocks are read as string columns and handed to the generic typed-columns cleaner, which
keeps one set of casts (and one set of error messages) for every declared-columns kind; they
never become Python records on the way (at a million rows that detour cost seconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from ingest_assets.cleaning.typed_columns import TypedColumnsCleaner
from ingest_assets.kinds.files.pages import page_blocks, page_header, read_page


class FilesCleaner(TypedColumnsCleaner):
    """Types staged CSV pages of the files kind by the declared columns."""

    def _fields(self) -> list[str]:
        return [*self.config.columns, *self.added]

    def parse_page(self, body: bytes) -> list[dict[str, Any]]:
        return read_page(body, self._fields())

    def page_fields(self, body: bytes) -> set[str]:
        return set(page_header(body))

    def clean_page(self, body: bytes, year: int, where: str) -> pa.Table:
        return pa.concat_tables(self.clean_chunks(body, year, where))

    def clean_chunks(self, body: bytes, year: int, where: str) -> Iterator[pa.Table]:
        yielded = False
        for block in page_blocks(body, self._fields()):
            yielded = True
            yield self.type_strings(block, year, where)
        if not yielded:  # a page of a header only
            yield self.type_strings(pa.table({}), year, where)
