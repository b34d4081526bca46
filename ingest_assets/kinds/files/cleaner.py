"""Staged file pages → typed columns.

A staged page of the files kind is CSV written by the source from the year's rows (``pages``).
Reading it back with every column as a string and handing the records to the generic
typed-columns cleaner keeps one set of casts (and one set of error messages) for every
declared-columns kind.
"""

from __future__ import annotations

from typing import Any

from ingest_assets.cleaning.typed_columns import TypedColumnsCleaner
from ingest_assets.kinds.files.pages import page_header, read_page


class FilesCleaner(TypedColumnsCleaner):
    """Types staged CSV pages of the files kind by the declared columns."""

    def parse_page(self, body: bytes) -> list[dict[str, Any]]:
        return read_page(body, [*self.config.columns, *self.added])

    def page_fields(self, body: bytes) -> set[str]:
        return set(page_header(body))
