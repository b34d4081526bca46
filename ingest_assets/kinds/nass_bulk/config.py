"""The catalog entry of a bulk-file dataset: which file, and the same ``query`` as a NASS one.

The file is named by its sector (``crops`` …) or census year (``census2022``); the dated name
is discovered from the listing page at run time, so it is never written in the catalog.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ingest_assets.kinds.base import DatasetConfig
from ingest_assets.kinds.nass.config import QueryValue, check_query
from ingest_assets.kinds.nass_bulk.layout import check_file


class NassBulkDatasetConfig(DatasetConfig):
    """A Quick Stats bulk file filtered by ``query`` while streaming, partitioned by year."""

    source: Literal["nass_bulk"] = Field(description="`nass_bulk`.")
    file: str = Field(
        description="A sector (crops, animals_products, economics, demographics, "
        "environmental) or a census file (census2002 … census2022)."
    )
    query: dict[str, QueryValue] = Field(
        default_factory=dict,
        description="Quick Stats filters (exact values, lists, operator suffixes) applied to "
        "every row of the file.",
    )
    page_rows: int = Field(50_000, ge=1, description="Most rows per staged page of a year.")

    @property
    def page_format(self) -> str:
        return "arrow"

    @field_validator("file")
    @classmethod
    def _known_file(cls, file: str) -> str:
        return check_file(file)

    @field_validator("query")
    @classmethod
    def _known_parameters(cls, query: dict[str, QueryValue]) -> dict[str, QueryValue]:
        return check_query(query)
