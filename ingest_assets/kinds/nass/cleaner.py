"""Quick Stats records → typed columns.

What is peculiar to Quick Stats: every field is a string except ``year`` (an int since 2019, a
string before); ``Value`` and ``CV (%)`` carry thousands separators or suppression codes such as
``(D)`` and ``(Z)``, sometimes whitespace-padded, which are kept in ``value_code``/``cv_code``
and never turned into 0; ``load_time`` comes with and without milliseconds; state and county
codes keep their leading zeros as text. A record with missing or new fields is schema drift and
fails with the field names — unless the catalog says ``on_schema_change: add_columns``: then a
new field is kept as a text column of its own name and a missing one is NULL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from ingest_assets.cleaning.casts import blank_to_null, cast_column, strings
from ingest_assets.cleaning.columns import Column, arrow_schema
from ingest_assets.errors import CleaningError
from ingest_assets.kinds.base import Cleaner
from ingest_assets.kinds.nass.fields import FIELDS, MEASURES
from ingest_assets.kinds.nass.pages import (
    CSV_PARSE,
    arrow_batches,
    arrow_records,
    csv_header,
    is_arrow,
    is_csv,
    records_of,
)

TYPED_FIELDS = {"year": "integer", "week_ending": "date", "load_time": "timestamp"}
RAW_FIELDS = frozenset(FIELDS)
TEXT_FIELDS = tuple(f for f in FIELDS if f not in TYPED_FIELDS and f not in MEASURES)

COLUMNS: tuple[Column, ...] = (
    *(Column(name, TYPED_FIELDS.get(name, "text")) for name in FIELDS if name not in MEASURES),
    Column("value", "double precision"),
    Column("value_code", "text"),
    Column("cv_pct", "double precision"),
    Column("cv_code", "text"),
)
_BY_NAME = {c.name: c for c in COLUMNS}
_CODE = r"^\(.+\)$"
ROW_KEY = ("short_desc", "state_alpha", "county_code", "reference_period_desc")


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
    for record in (*records[:1], *records[-1:]):
        seen |= record.keys()
    missing, extra = RAW_FIELDS - seen, seen - RAW_FIELDS
    if not (missing or extra):
        for record in records:
            if len(record) != len(RAW_FIELDS) or not record.keys() <= RAW_FIELDS:
                missing |= RAW_FIELDS - record.keys()
                extra |= record.keys() - RAW_FIELDS
    _refuse_drift(missing, extra, where)


def _refuse_drift(missing: Set[str], extra: Set[str], where: str) -> None:
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing field(s) {', '.join(sorted(missing))}")
        if extra:
            parts.append(f"new field(s) {', '.join(sorted(extra))}")
        raise CleaningError(f"{where}: Quick Stats schema drift: {'; '.join(parts)}")


def clean_records(
    records: Sequence[dict], year: int, where: str, added: Sequence[str] = (), evolve: bool = False
) -> pa.Table:
    """Type one page of Quick Stats records; every row must belong to ``year``.

    ``evolve`` (``on_schema_change: add_columns``) lets fields be missing (NULL) and keeps the
    ``added`` ones as text; otherwise any difference from the 39 fields fails, naming them.
    """
    schema = _schema(added)
    if not records:
        return schema.empty_table()
    if not evolve:
        _check_fields(records, where)
    raw = {name: strings(records, name) for name in (*RAW_FIELDS, *added)}
    return _typed(raw, year, where, added)


def _schema(added: Sequence[str]) -> pa.Schema:
    return arrow_schema((*COLUMNS, *(Column(name, "text") for name in added)))


def _typed(raw: dict[str, pa.Array], year: int, where: str, added: Sequence[str] = ()) -> pa.Table:
    """The cleaned table from one array per raw field (strings, ``year`` any type); a field
    absent from ``raw`` (only under ``add_columns``) is NULL.
    """
    rows = len(next(iter(raw.values())))
    raw = {name: raw.get(name, pa.nulls(rows, pa.string())) for name in (*RAW_FIELDS, *added)}
    arrays = {name: raw[name] for name in (*TEXT_FIELDS, *added)}
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
    schema = _schema(added)
    return pa.table([arrays[name] for name in schema.names], schema=schema)


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


_CSV_CONVERT = pacsv.ConvertOptions(
    column_types=dict.fromkeys(FIELDS, pa.string()),
    strings_can_be_null=False,
    quoted_strings_can_be_null=False,
)


CSV_BLOCK_BYTES = 4 << 20  # ~9,000 records: what one cleaned chunk holds, whatever the page size
ARROW_CHUNK_ROWS = 10_000  # the same for an Arrow page (slices: no copy)


def _csv_chunks(body: bytes, where: str, evolve: bool = False) -> Iterator[dict[str, pa.Array]]:
    """A CSV page, ``CSV_BLOCK_BYTES`` at a time, as one string array per field it holds."""
    header = csv_header(body)
    if not evolve:
        _refuse_drift(RAW_FIELDS - set(header), set(header) - RAW_FIELDS, where)
    convert = _CSV_CONVERT
    if set(header) != RAW_FIELDS:
        convert = pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
    try:
        reader = pacsv.open_csv(
            pa.py_buffer(body),
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=CSV_PARSE,
            convert_options=convert,
        )
        for batch in reader:
            yield {name: batch.column(name) for name in header}
    except pa.ArrowInvalid as exc:
        raise CleaningError(f"{where}: staged CSV page does not parse: {exc}") from None


def _arrow_chunks(body: bytes, where: str, evolve: bool = False) -> Iterator[dict[str, pa.Array]]:
    """An Arrow IPC page (a bulk file's split) in slices of ``ARROW_CHUNK_ROWS``, as one array
    per field.
    """
    try:
        reader = arrow_batches(body)
        header = reader.schema.names
        if not evolve:
            _refuse_drift(RAW_FIELDS - set(header), set(header) - RAW_FIELDS, where)
        for batch in reader:
            for start in range(0, batch.num_rows, ARROW_CHUNK_ROWS):
                chunk = batch.slice(start, ARROW_CHUNK_ROWS)
                yield {name: chunk.column(name) for name in header}
    except (pa.ArrowInvalid, OSError) as exc:  # a cut stream is an IOError to Arrow
        raise CleaningError(f"{where}: staged Arrow page does not read: {exc}") from None


def _is_tabular(body: bytes) -> bool:
    return is_csv(body) or is_arrow(body)


def _raw_chunks(body: bytes, where: str, evolve: bool = False) -> Iterator[dict[str, pa.Array]]:
    """A CSV or Arrow page as chunks of one string array per field."""
    chunks = _arrow_chunks if is_arrow(body) else _csv_chunks
    return chunks(body, where, evolve)


class NassCleaner(Cleaner):
    """Types Quick Stats pages (CSV or JSON) into the fixed NASS columns."""

    def base_columns(self) -> tuple[Column, ...]:
        return COLUMNS

    @property
    def row_key(self) -> tuple[str, ...]:
        return ROW_KEY

    def expected_fields(self) -> tuple[str, ...]:
        return FIELDS

    def page_fields(self, body: bytes) -> set[str]:
        if is_csv(body):
            return set(csv_header(body))
        if is_arrow(body):
            return set(arrow_batches(body).schema.names)
        return {name for record in self.parse_page(body) for name in record}

    @property
    def _evolve(self) -> bool:
        return self.config.on_schema_change == "add_columns"

    def clean_chunks(self, body: bytes, year: int, where: str) -> Iterator[pa.Table]:
        """A CSV or Arrow page is typed block by block, so memory holds ~9,000 records, not
        50,000.
        """
        if not _is_tabular(body):
            yield self.clean_page(body, year, where)
            return
        for raw in _raw_chunks(body, where, self._evolve):
            yield _typed(raw, year, where, self.added)

    def clean_page(self, body: bytes, year: int, where: str) -> pa.Table:
        if _is_tabular(body):
            chunks = list(self.clean_chunks(body, year, where))
            return pa.concat_tables(chunks) if chunks else _schema(self.added).empty_table()
        raw = _read_page(body)
        if raw is None:
            return super().clean_page(body, year, where)
        return _typed(raw, year, where, self.added)

    def parse_page(self, body: bytes) -> list[dict[str, Any]]:
        if _is_tabular(body):
            return [
                record
                for raw in _raw_chunks(body, "staged page", self._evolve)
                for record in pa.table(raw).to_pylist()
            ]
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise CleaningError(f"staged page is not JSON: {exc}") from None
        return records_of(data, "staged page")

    def clean(self, records: list[dict[str, Any]], year: int, where: str) -> pa.Table:
        return clean_records(records, year, where, self.added, self._evolve)
