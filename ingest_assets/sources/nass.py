"""USDA NASS Quick Stats: catalog fields, the count-driven split planner and the page fetcher.

Quick Stats has no paging and refuses any request over 50,000 records (HTTP 413), so a year is
planned before anything is fetched: ``get_counts`` for the year, then — while a piece is over the
limit — split it along the next dimension (state → county → commodity → ...), enumerating that
dimension's values with ``get_param_values`` so the pieces cover the whole. Zero-count pieces are
skipped because ``api_GET`` answers 400, not an empty list, for a query with no data. The key
travels in the URL, so it only ever passes through the shared client, which redacts it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import dagster as dg
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
from pydantic import Field, field_validator

from ingest_assets.http import HttpClient, JsonResponse, SourceError
from ingest_assets.sources.base import DatasetConfig, Page, Plan, Slice, Source
from ingest_assets.sources.nass_fields import QUERY_PARAMETERS

RECORD_LIMIT = 50_000
DEFAULT_BASE_URL = "https://quickstats.nass.usda.gov/api"

OPERATORS = ("__LE", "__LT", "__GT", "__GE", "__LIKE", "__NOT_LIKE", "__NE")

QueryValue = str | int | list[str | int]


def _base_name(parameter: str) -> str:
    for suffix in OPERATORS:
        if parameter.endswith(suffix):
            return parameter[: -len(suffix)]
    return parameter


class NassDatasetConfig(DatasetConfig):
    """A Quick Stats query, partitioned by year."""

    source: Literal["nass"]
    query: dict[str, QueryValue] = Field(
        description="Quick Stats filters, passed through; operator suffixes (year__GE...) allowed."
    )
    base_url: str = DEFAULT_BASE_URL
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
    def page_format(self) -> str:
        return self.response_format

    @field_validator("query")
    @classmethod
    def _known_parameters(cls, query: dict[str, QueryValue]) -> dict[str, QueryValue]:
        for name in query:
            base = _base_name(name)
            if base == "year":
                raise ValueError(f"{name!r}: the year comes from the partition; remove it")
            if base not in QUERY_PARAMETERS:
                raise ValueError(f"{name!r} is not a Quick Stats parameter")
        return query

    @field_validator("split_dimensions")
    @classmethod
    def _known_dimensions(cls, dims: list[str]) -> list[str]:
        unknown = [d for d in dims if d not in QUERY_PARAMETERS or d == "year"]
        if unknown:
            raise ValueError(f"unknown split dimension(s): {', '.join(unknown)}")
        return dims


def records_of(data: Any, what: str) -> list[dict[str, Any]]:
    """The records of an ``api_GET`` body, refusing any other shape with a clear error."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        keys = list(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise SourceError(f"{what}: expected a JSON object with a 'data' list, got {keys}")
    return data["data"]


@dataclass(frozen=True)
class RecordCount:
    """An ``api_GET`` body checked to be a whole page of ``rows`` records."""

    rows: int


def is_csv(body: bytes) -> bool:
    """Quick Stats CSV quotes every field, its header included; JSON and error bodies start
    with ``{``, outage pages with ``<``."""
    return body[:1] == b'"'


CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)


def csv_header(body: bytes) -> list[str]:
    """The column names of a CSV page (its first line)."""
    line = body.split(b"\n", 1)[0]
    return next(csv.reader([line.decode("utf-8", "replace")]), [])


def count_csv(body: bytes) -> int:
    """Rows of a CSV page, parsed in C++ across threads; a page cut inside a row or a quoted
    field (or any line with a different number of fields) raises ``pa.ArrowInvalid``."""
    first = csv_header(body)[:1]
    table = pacsv.read_csv(
        pa.py_buffer(body),
        parse_options=CSV_PARSE,
        convert_options=pacsv.ConvertOptions(
            include_columns=first, column_types=dict.fromkeys(first, pa.string())
        ),
    )
    return table.num_rows


_COUNT_OPTIONS = pajson.ParseOptions(
    explicit_schema=pa.schema([pa.field("data", pa.list_(pa.struct([])))]),
    unexpected_field_behavior="ignore",
)


def arrow_records(body: bytes, options: pajson.ParseOptions) -> pa.Array | None:
    """The ``data`` list of a ``{"data": [...]}`` body as one Arrow struct array, parsed in C++
    against ``options`` (no Python object per record); None if the body is anything else."""
    try:
        table = pajson.read_json(
            pa.py_buffer(body),
            read_options=pajson.ReadOptions(block_size=len(body) + 1, use_threads=False),
            parse_options=options,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    pages = table.column("data")
    if table.num_rows != 1 or pages.null_count:
        return None
    return pages.combine_chunks().flatten()


def _count_or_decode(body: bytes) -> RecordCount | Any:
    """Count a page's records without building them (a 50,000-record JSON page would cost
    ~150 MB and twice the time as Python dicts). Any other body (an error object, another
    shape) is decoded with orjson, so one that is neither CSV nor JSON still raises ValueError
    (``pa.ArrowInvalid`` is one), and the client retries it as a cut-off transfer."""
    if is_csv(body):
        return RecordCount(count_csv(body))
    records = arrow_records(body, _COUNT_OPTIONS)
    return orjson.loads(body) if records is None else RecordCount(len(records))


def _as_params(query: dict[str, QueryValue]) -> dict[str, tuple[str, ...]]:
    return {
        name: tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
        for name, value in query.items()
    }


def _error_text(response: JsonResponse) -> str:
    data = response.data
    if isinstance(data, dict) and isinstance(data.get("error"), list):
        return "; ".join(str(e) for e in data["error"])
    return response.excerpt()


class NassSource(Source):
    kind: ClassVar[str] = "nass"
    config: NassDatasetConfig

    def __init__(
        self, config: NassDatasetConfig, client: HttpClient, api_key: str, base_url: str | None
    ) -> None:
        super().__init__(config, client)
        self._api_key = api_key
        self._base_url = (base_url or config.base_url).rstrip("/")

    # -- requests -------------------------------------------------------------------------
    def _get(
        self,
        endpoint: str,
        params: dict[str, tuple[str, ...]],
        what: str,
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> JsonResponse:
        pairs: list[tuple[str, str]] = [("key", self._api_key)]
        pairs += [(name, value) for name, values in params.items() for value in values]
        response = self.client.get_json(
            f"{self._base_url}/{endpoint}/", pairs, what=what, decode=decode
        )
        if response.status == 401:
            raise SourceError(
                f"{what}: Quick Stats rejected the API key (401 unauthorized); check NASS_API_KEY"
            )
        return response

    def _what(self, params: dict[str, tuple[str, ...]]) -> str:
        year = params.get("year", ("?",))[0]
        pieces = [f"{k}={'|'.join(v)}" for k, v in params.items() if k in self._split_dims]
        return f"dataset {self.config.name}, year {year}" + (
            f", slice {', '.join(pieces)}" if pieces else ""
        )

    @property
    def _split_dims(self) -> list[str]:
        return self.config.split_dimensions

    def _count(self, params: dict[str, tuple[str, ...]]) -> int:
        what = self._what(params)
        response = self._get("get_counts", params, f"get_counts for {what}")
        if response.status != 200 or not isinstance(response.data, dict):
            raise SourceError(
                f"get_counts for {what}: HTTP {response.status}: {_error_text(response)}"
            )
        try:
            return int(str(response.data["count"]).replace(",", ""))
        except (KeyError, ValueError):
            raise SourceError(
                f"get_counts for {what}: unexpected body {response.excerpt()!r}"
            ) from None

    def _values(self, dimension: str, params: dict[str, tuple[str, ...]]) -> list[str]:
        what = f"get_param_values {dimension} for {self._what(params)}"
        response = self._get("get_param_values", {"param": (dimension,), **params}, what)
        data = response.data
        if response.status != 200 or not isinstance(data, dict):
            raise SourceError(f"{what}: HTTP {response.status}: {_error_text(response)}")
        values = data.get(dimension)
        if not isinstance(values, list):
            raise SourceError(f"{what}: unexpected body {response.excerpt()!r}")
        return [str(v) for v in values]

    # -- the Source interface --------------------------------------------------------------
    def year_params(self, year: int) -> dict[str, tuple[str, ...]]:
        return {**_as_params(self.config.query), "year": (str(year),)}

    def count(self, year: int) -> int:
        return self._count(self.year_params(year))

    def change_signal(self, years: Sequence[int]) -> dict[int, str]:
        """Per year: the record count and the latest ``load_time`` (NASS revises old years in
        place, which moves ``load_time`` even when the count stays). Two cheap requests a year;
        a year without records costs one."""
        signals: dict[int, str] = {}
        for year in years:
            params = self.year_params(year)
            count = self._count(params)
            latest = max(self._values("load_time", params), default="") if count else ""
            signals[year] = f"count={count};load_time={latest}"
        return signals

    def plan(self, year: int) -> Plan:
        params = self.year_params(year)
        total = self._count(params)
        slices = self._split(params, total, list(self._split_dims)) if total else []
        return Plan(year=year, slices=tuple(slices), source_count=total)

    def _split(
        self, params: dict[str, tuple[str, ...]], count: int, dims: list[str]
    ) -> list[Slice]:
        if count <= RECORD_LIMIT:
            key = "/".join(f"{d}={params[d][0]}" for d in self._split_dims if d in params)
            return [Slice(key=key or "all", params=params, expected_rows=count)]
        if not dims:
            raise SourceError(
                f"{self._what(params)}: {count:,} records exceed the {RECORD_LIMIT:,} limit and "
                "no split dimension is left; add one to split_dimensions"
            )
        dimension, rest = dims[0], dims[1:]
        if dimension in params:
            return self._split(params, count, rest)
        slices: list[Slice] = []
        covered = 0
        for value in self._values(dimension, params):
            child = {**params, dimension: (value,)}
            child_count = self._count(child)
            covered += child_count
            if child_count:
                slices += self._split(child, child_count, rest)
        if covered != count:
            raise SourceError(
                f"{self._what(params)}: splitting by {dimension} covers {covered:,} of "
                f"{count:,} records; the pieces would not add up to the whole"
            )
        return slices

    def fetch(self, part: Slice) -> Iterator[Page]:
        what = self._what(dict(part.params))
        params = {**part.params, "format": (self.config.response_format.upper(),)}
        response = self._get("api_GET", params, what, decode=_count_or_decode)
        if response.status == 413:
            raise SourceError(
                f"{what}: Quick Stats answered 413 ({_error_text(response)}) although get_counts "
                f"promised {part.expected_rows:,}; the data grew since planning — re-run to re-plan"
            )
        if response.status == 400:
            raise SourceError(
                f"{what}: Quick Stats answered 400 ({_error_text(response)}) for a slice that "
                f"get_counts said holds {part.expected_rows:,} records"
            )
        if response.status != 200:
            raise SourceError(f"{what}: HTTP {response.status}: {_error_text(response)}")
        data = response.data
        rows = data.rows if isinstance(data, RecordCount) else len(records_of(data, what))
        yield Page(slice=part, index=0, body=response.body, rows=rows)

    def describe_query(self, year: int) -> dict[str, Any]:
        return {
            "url": f"{self._base_url}/api_GET/",
            "params": {"key": "***", **{k: list(v) for k, v in self.year_params(year).items()}},
        }


class NassApi(dg.ConfigurableResource):
    """Connection settings for Quick Stats: the key (from ``NASS_API_KEY``) and pacing.

    ``base_url`` overrides every dataset's own ``base_url`` — the stand-in and tests use it.
    """

    resource_key: ClassVar[str] = "nass_api"

    api_key: str
    base_url: str | None = None
    min_interval_seconds: float = 0.0
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 300.0
    max_attempts: int = 6
    max_total_seconds: float = 900.0
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 60.0
    min_delay_seconds: float = 0.2
    retry_after_cap_seconds: float = 120.0

    @classmethod
    def from_env(cls) -> NassApi:
        """The key from ``NASS_API_KEY``; ``NASS_BASE_URL`` points at a stand-in if set."""
        return cls(
            api_key=dg.EnvVar("NASS_API_KEY") if os.environ.get("NASS_API_KEY") else "",
            base_url=os.environ.get("NASS_BASE_URL") or None,
            min_interval_seconds=float(os.environ.get("NASS_MIN_INTERVAL_SECONDS", "0.2")),
        )

    def source(self, config: DatasetConfig) -> NassSource:
        if not self.api_key:
            raise SourceError(
                f"{config.name}: NASS_API_KEY is not set: export your Quick Stats key (free: "
                "https://quickstats.nass.usda.gov/api), or serve the stand-ins: "
                'eval "$(./run ingest-assets standin --background)"'
            )
        client = HttpClient(
            secrets=[self.api_key],
            connect_timeout=self.connect_timeout_seconds,
            read_timeout=self.read_timeout_seconds,
            max_attempts=self.max_attempts,
            max_total_seconds=self.max_total_seconds,
            backoff_base=self.backoff_base_seconds,
            backoff_cap=self.backoff_cap_seconds,
            min_delay=self.min_delay_seconds,
            retry_after_cap=self.retry_after_cap_seconds,
            min_interval=self.min_interval_seconds,
        )
        assert isinstance(config, NassDatasetConfig)
        return NassSource(config, client, self.api_key, self.base_url)
