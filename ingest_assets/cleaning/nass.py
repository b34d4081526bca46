"""Quick Stats records → typed columns.

What is peculiar to Quick Stats: every field is a string except ``year`` (an int since 2019, a
string before); ``Value`` and ``CV (%)`` carry thousands separators or suppression codes such as
``(D)`` and ``(Z)``, sometimes whitespace-padded, which are kept in ``value_code``/``cv_code``
and never turned into 0; ``load_time`` comes with and without milliseconds; state and county
codes keep their leading zeros as text. A record with missing or new fields is schema drift and
fails with the field names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from ingest_assets.cleaning.types import (
    CleaningError,
    Column,
    arrow_schema,
    blank_to_null,
    cast_column,
    strings,
)
from ingest_assets.sources.base import Cleaner
from ingest_assets.sources.nass import arrow_records, records_of

TEXT_FIELDS = [
    "source_desc",
    "sector_desc",
    "group_desc",
    "commodity_desc",
    "class_desc",
    "prodn_practice_desc",
    "util_practice_desc",
    "statisticcat_desc",
    "unit_desc",
    "short_desc",
    "domain_desc",
    "domaincat_desc",
    "agg_level_desc",
    "state_ansi",
    "state_fips_code",
    "state_alpha",
    "state_name",
    "asd_code",
    "asd_desc",
    "county_ansi",
    "county_code",
    "county_name",
    "region_desc",
    "zip_5",
    "watershed_code",
    "watershed_desc",
    "congr_district_code",
    "country_code",
    "country_name",
    "location_desc",
]
TIME_TEXT_FIELDS = ("freq_desc", "begin_code", "end_code", "reference_period_desc")
RAW_FIELDS = frozenset(
    (*TEXT_FIELDS, "year", *TIME_TEXT_FIELDS, "week_ending", "load_time", "Value", "CV (%)")
)

COLUMNS: tuple[Column, ...] = (
    *(Column(name, "text") for name in TEXT_FIELDS),
    Column("year", "integer"),
    *(Column(name, "text") for name in TIME_TEXT_FIELDS),
    Column("week_ending", "date"),
    Column("load_time", "timestamp"),
    Column("value", "double precision"),
    Column("value_code", "text"),
    Column("cv_pct", "double precision"),
    Column("cv_code", "text"),
)
SCHEMA = arrow_schema(COLUMNS)
_BY_NAME = {c.name: c for c in COLUMNS}
_CODE = r"^\(.+\)$"


def _number_or_code(
    raw: pa.Array, number: Column, code: Column, where: str
) -> tuple[pa.Array, pa.Array]:
    """Split a Value-like field into a number and a suppression code (one of them is null)."""
    values = blank_to_null(raw)
    is_code = pc.fill_null(pc.match_substring_regex(values, _CODE), False)
    null_text = pa.scalar(None, pa.string())
    codes = pc.if_else(is_code, values, null_text)
    numbers = cast_column(pc.if_else(is_code, null_text, values), number, where)
    return numbers, codes


def _check_fields(records: Sequence[dict], where: str) -> None:
    seen: set[str] = set()
    for record in records[:1] + records[-1:]:
        seen |= record.keys()
    missing, extra = RAW_FIELDS - seen, seen - RAW_FIELDS
    if not (missing or extra):
        for record in records:
            if len(record) != len(RAW_FIELDS) or not record.keys() <= RAW_FIELDS:
                missing |= RAW_FIELDS - record.keys()
                extra |= record.keys() - RAW_FIELDS
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing field(s) {', '.join(sorted(missing))}")
        if extra:
            parts.append(f"new field(s) {', '.join(sorted(extra))}")
        raise CleaningError(f"{where}: Quick Stats schema drift: {'; '.join(parts)}")


def clean_records(records: Sequence[dict], year: int, where: str) -> pa.Table:
    """Type one page of Quick Stats records; every row must belong to ``year``."""
    if not records:
        return SCHEMA.empty_table()
    _check_fields(records, where)
    return _typed({name: strings(records, name) for name in RAW_FIELDS}, year, where)


def _typed(raw: dict[str, pa.Array], year: int, where: str) -> pa.Table:
    """The cleaned table from one array per raw field (strings, ``year`` any type)."""
    arrays = {name: raw[name] for name in (*TEXT_FIELDS, *TIME_TEXT_FIELDS)}
    years = cast_column(raw["year"], _BY_NAME["year"], where)
    if pc.any(pc.not_equal(years, year)).as_py() or years.null_count:
        bad = next(y for y in years.to_pylist() if y != year)
        raise CleaningError(f"{where}: a record of year {bad!r} arrived in partition {year}")
    arrays["year"] = years
    arrays["week_ending"] = cast_column(raw["week_ending"], _BY_NAME["week_ending"], where)
    arrays["load_time"] = cast_column(raw["load_time"], _BY_NAME["load_time"], where)
    arrays["value"], arrays["value_code"] = _number_or_code(
        raw["Value"], _BY_NAME["value"], _BY_NAME["value_code"], where
    )
    arrays["cv_pct"], arrays["cv_code"] = _number_or_code(
        raw["CV (%)"], _BY_NAME["cv_pct"], _BY_NAME["cv_code"], where
    )
    return pa.table([arrays[c.name] for c in COLUMNS], schema=SCHEMA)


_PAGE_OPTIONS = pajson.ParseOptions(
    explicit_schema=pa.schema(
        [
            pa.field(
                "data",
                pa.list_(
                    pa.struct(
                        [
                            pa.field(name, pa.int64() if name == "year" else pa.string())
                            for name in sorted(RAW_FIELDS)
                        ]
                    )
                ),
            )
        ]
    ),
    unexpected_field_behavior="error",
)


def _read_page(body: bytes) -> dict[str, pa.Array] | None:
    """Decode a compact ``{"data": [...]}`` page straight into Arrow, one array per field.

    No Python object per record or value: pyarrow's C++ JSON reader parses the page against the
    exact field list. Returns None — leaving the page to the record path, which explains what is
    wrong — for anything else: another shape, new fields, a missing field or a null value (schema
    drift), a ``year`` sent as text (before 2019).
    """
    records = arrow_records(body, _PAGE_OPTIONS)
    if records is None or records.null_count:
        return None
    fields = {records.type.field(i).name: records.field(i) for i in range(records.type.num_fields)}
    if any(array.null_count for array in fields.values()):
        return None
    return fields


class NassCleaner(Cleaner):
    def columns(self) -> tuple[Column, ...]:
        return COLUMNS

    def clean_page(self, body: bytes, year: int, where: str) -> pa.Table:
        raw = _read_page(body)
        if raw is None:
            return super().clean_page(body, year, where)
        return _typed(raw, year, where)

    def parse_page(self, body: bytes) -> list[dict[str, Any]]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise CleaningError(f"staged page is not JSON: {exc}") from None
        return records_of(data, "staged page")

    def clean(self, records: list[dict[str, Any]], year: int, where: str) -> pa.Table:
        return clean_records(records, year, where)
