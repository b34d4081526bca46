"""The catalog entry of a Quick Stats dataset: its query, split dimensions and response format.

Quick Stats silently ignores filter names it does not know (a typo would fetch the unfiltered
database) and the year comes from the partition, so both are refused here, when the catalog
loads, not at the first request.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ingest_assets.kinds.base import DatasetConfig
from ingest_assets.kinds.nass.fields import QUERY_PARAMETERS

DEFAULT_BASE_URL = "https://quickstats.nass.usda.gov/api"

OPERATORS = ("__LE", "__LT", "__GT", "__GE", "__LIKE", "__NOT_LIKE", "__NE")

QueryValue = str | int | list[str | int]


def split_operator(parameter: str) -> tuple[str, str]:
    """A filter name as (field, operator): ``year__GE`` → (``year``, ``GE``); no suffix → EQ."""
    for suffix in OPERATORS:
        if parameter.endswith(suffix):
            return parameter[: -len(suffix)], suffix[2:]
    return parameter, "EQ"


def check_query(query: dict[str, QueryValue]) -> dict[str, QueryValue]:
    """Refuse filter names Quick Stats does not know, and any year filter (the partition's)."""
    for name in query:
        base, _ = split_operator(name)
        if base == "year":
            raise ValueError(f"{name!r}: the year comes from the partition; remove it")
        if base not in QUERY_PARAMETERS:
            raise ValueError(f"{name!r} is not a Quick Stats parameter")
    return query


class NassDatasetConfig(DatasetConfig):
    """A Quick Stats query, partitioned by year."""

    source: Literal["nass"] = Field(description="`nass`.")
    query: dict[str, QueryValue] = Field(
        description="Quick Stats filters, passed through; operator suffixes (year__GE...) allowed."
    )
    base_url: str = Field(
        DEFAULT_BASE_URL,
        description="The API root; `NASS_BASE_URL` overrides it for every NASS dataset.",
    )
    split_dimensions: list[str] = Field(
        default_factory=lambda: ["state_alpha", "county_code", "commodity_desc", "short_desc"],
        description="Dimensions a year is split along, in order, while a piece exceeds 50,000.",
    )
    response_format: Literal["csv", "json"] = Field(
        "csv",
        description="Format of api_GET responses: CSV is about 45% of JSON's size and parses "
        "in parallel; pages are staged exactly as received in either.",
    )

    @property
    def filters(self) -> dict[str, Any]:
        return dict(self.query)

    @property
    def page_format(self) -> str:
        return self.response_format

    @field_validator("query")
    @classmethod
    def _known_parameters(cls, query: dict[str, QueryValue]) -> dict[str, QueryValue]:
        return check_query(query)

    @field_validator("split_dimensions")
    @classmethod
    def _known_dimensions(cls, dims: list[str]) -> list[str]:
        unknown = [d for d in dims if d not in QUERY_PARAMETERS or d == "year"]
        if unknown:
            raise ValueError(f"unknown split dimension(s): {', '.join(unknown)}")
        return dims
