"""The catalog entry of a Socrata dataset: its portal, its dataset id(s) and how a year is picked.

A portal either publishes one dataset per year (``dataset_ids``) or one dataset whose
``year_column`` selects the year (``dataset_id``); exactly one is given, and the year column must
be declared with a type a year can be compared with, so a bad entry fails the definitions load.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ingest_assets.kinds.typed import TypedDatasetConfig

DEFAULT_PAGE_SIZE = 50_000
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
TIME_TYPES = ("timestamp", "timestamptz", "date")
NUMBER_TYPES = ("integer", "bigint", "smallint", "numeric")
YEAR_COLUMN_TYPES = (*TIME_TYPES, *NUMBER_TYPES, "text")


def _check_id(value: str) -> str:
    if not value or not set(value.lower()) <= _ID_CHARS:
        raise ValueError(f"{value!r} is not a Socrata dataset id (like 'jguv-t9rb')")
    return value


class SocrataDatasetConfig(TypedDatasetConfig):
    """A Socrata dataset: one id per year, or one id whose ``year_column`` picks the year."""

    source: Literal["socrata"] = Field(description="`socrata`.")
    domain: str = Field(description="The portal's host, e.g. data.lacity.org.")
    dataset_ids: dict[int, str] | None = Field(
        None, description="Year -> dataset id, for portals that publish one dataset per year."
    )
    dataset_id: str | None = Field(
        None, validate_default=True, description="One dataset id holding every year."
    )
    year_column: str | None = Field(
        None,
        validate_default=True,
        description="With dataset_id: the declared column whose year selects the partition.",
    )
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=1_000_000, description="Rows per request.")
    api: Literal["soda3", "soda2", "auto"] = Field(
        "auto",
        description=(
            "Which read API: soda3 (POST /api/v3/views/{id}/query.json, needs SOCRATA_APP_TOKEN), "
            "soda2 (GET /resource/{id}.json, anonymous allowed) or auto (soda3 when a token is "
            "set, else soda2)."
        ),
    )
    anonymous: bool = Field(
        False,
        description="Fetch from the real portal without SOCRATA_APP_TOKEN (Socrata throttles "
        "anonymous clients). Without it and without a token, nothing is sent to the portal.",
    )

    @property
    def filters(self) -> dict[str, Any]:
        dataset = self.dataset_id or self.dataset_ids
        return {"domain": self.domain, "dataset": dataset, "year_column": self.year_column}

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        host = value.removeprefix("https://").rstrip("/")
        if not host or "/" in host or not set(host.lower()) <= _ID_CHARS | {".", ":"}:
            raise ValueError(f"{value!r} is not a host name like data.lacity.org")
        return host

    @field_validator("dataset_ids")
    @classmethod
    def _ids(cls, ids: dict[int, str] | None) -> dict[int, str] | None:
        for dataset in (ids or {}).values():
            _check_id(dataset)
        if ids is not None and not ids:
            raise ValueError("give at least one year: dataset id")
        return ids

    @field_validator("dataset_id")
    @classmethod
    def _one_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        per_year = info.data.get("dataset_ids")
        if value is None and per_year is None and "dataset_ids" in info.data:
            raise ValueError("give dataset_id (with year_column) or dataset_ids (one per year)")
        if value is not None and per_year is not None:
            raise ValueError("give either dataset_id or dataset_ids, not both")
        return value if value is None else _check_id(value)

    @field_validator("year_column")
    @classmethod
    def _year_column(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("dataset_id") is None or "columns" not in info.data:
            return value  # (a mistake in columns is reported once, there)
        columns = info.data["columns"]
        if value is None:
            raise ValueError("dataset_id needs a year_column to filter each year on")
        if columns.get(value) not in YEAR_COLUMN_TYPES:
            raise ValueError(
                f"{value!r} must be a declared column of type {', '.join(YEAR_COLUMN_TYPES)}"
            )
        return value
