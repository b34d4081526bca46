"""Catalog fields of the kinds whose columns are declared in the catalog (Socrata, files).

Those kinds have no fixed schema of their own: the entry lists ``columns: {name: pg_type}``, which
become the cleaned frame's and the facts table's columns, and optionally a ``key`` and an
``updated_column`` for incremental loads. Every name is checked as an identifier and every type
against ``cleaning.columns.PG_TYPES`` here, so a bad entry fails the definitions load.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, ValidationInfo, field_validator

from ingest_assets.cleaning.columns import PG_TYPES, Column
from ingest_assets.kinds.base import DatasetConfig, check_identifier

YEAR_COLUMN = Column("year", "integer")
WATERMARK_TYPES = ("timestamp", "timestamptz", "date")
_INTERVAL = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week)s?\s*$")


def parse_interval(text: str) -> timedelta:
    """``"1 day"``, ``"12 hours"``, ``"30 minutes"`` ... as a timedelta."""
    match = _INTERVAL.fullmatch(text.lower())
    if match is None:
        raise ValueError(
            f"{text!r} is not an interval; write a number and a unit, e.g. '1 day', '12 hours'"
        )
    return timedelta(**{f"{match[2]}s": int(match[1])})


def _check_declared(names: list[str], info: ValidationInfo) -> list[str]:
    """Names that must be declared columns (unchecked when ``columns`` itself was refused)."""
    columns = info.data.get("columns")
    unknown = [n for n in names if columns is not None and n not in columns]
    if unknown:
        raise ValueError(f"not declared in columns: {', '.join(unknown)}")
    return names


class TypedDatasetConfig(DatasetConfig):
    """An entry that declares its columns, and for ``mode: incremental`` its key and watermark."""

    columns: dict[str, str] = Field(
        description="Column name -> PostgreSQL type; the facts table's columns (plus 'year')."
    )
    null_on_error: list[str] = Field(
        default_factory=list,
        description="Columns whose unparsable values become NULL instead of failing the year.",
    )
    key: list[str] = Field(
        default_factory=list,
        validate_default=True,
        description="Columns that identify a row (incremental upserts).",
    )
    updated_column: str | None = Field(
        None,
        validate_default=True,
        description="The column whose value moves when a row changes (the watermark).",
    )
    overlap: str = Field(
        "1 day", description="How far before the watermark an incremental fetch starts."
    )

    @field_validator("columns")
    @classmethod
    def _columns(cls, columns: dict[str, str]) -> dict[str, str]:
        problems = []
        for name, pg_type in columns.items():
            try:
                check_identifier(name)
            except ValueError as exc:
                problems.append(str(exc))
            if name == YEAR_COLUMN.name:
                problems.append("'year' is added from the partition; do not declare it")
            if pg_type not in PG_TYPES:
                problems.append(
                    f"column {name!r}: unknown type {pg_type!r}; expected one of "
                    f"{', '.join(PG_TYPES)}"
                )
        if not columns:
            problems.append("declare at least one column")
        if problems:
            raise ValueError("; ".join(problems))
        return columns

    @field_validator("null_on_error")
    @classmethod
    def _declared(cls, names: list[str], info: ValidationInfo) -> list[str]:
        return _check_declared(names, info)

    @field_validator("key", mode="after")
    @classmethod
    def _key(cls, key: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("mode") == "incremental" and not key:
            raise ValueError(
                "mode 'incremental' needs a key: the list of columns identifying a row"
            )
        return _check_declared(key, info)

    @field_validator("updated_column", mode="after")
    @classmethod
    def _updated(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is None:
            if info.data.get("mode") == "incremental":
                raise ValueError("mode 'incremental' needs an updated_column (the watermark)")
            return name
        columns = info.data.get("columns")
        if columns is not None and columns.get(name) not in WATERMARK_TYPES:
            raise ValueError(
                f"{name!r} must be a declared column of type {', '.join(WATERMARK_TYPES)}"
            )
        return name

    @field_validator("overlap")
    @classmethod
    def _overlap(cls, text: str) -> str:
        parse_interval(text)
        return text

    def typed_columns(self) -> tuple[Column, ...]:
        """The facts table's columns: ``year`` first, then the declared ones in order."""
        return (YEAR_COLUMN, *(Column(n, t) for n, t in self.columns.items()))
