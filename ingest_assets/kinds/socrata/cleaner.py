"""Socrata pages → typed columns.

A staged Socrata page is the JSON list of row objects exactly as received: every value a string
(booleans real JSON booleans, ``location``/``url`` objects), a null an absent key. The generic
typed-columns cleaner does the rest from the catalog's ``columns``.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest_assets.cleaning.typed_columns import TypedColumnsCleaner
from ingest_assets.errors import CleaningError


class SocrataCleaner(TypedColumnsCleaner):
    """Types staged SODA JSON pages by the declared columns."""

    def page_fields(self, body: bytes) -> set[str]:
        """The row fields, without system fields (``:id``, which keyset paging selects)."""
        return {name for name in super().page_fields(body) if not name.startswith(":")}

    def parse_page(self, body: bytes) -> list[dict[str, Any]]:
        try:
            rows = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise CleaningError(f"staged Socrata page is not JSON: {exc}") from None
        if not isinstance(rows, list):
            raise CleaningError(f"staged Socrata page is a {type(rows).__name__}, not a list")
        return rows
