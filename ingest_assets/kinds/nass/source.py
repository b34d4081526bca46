"""The Quick Stats network source: requests, counts, the page fetcher and the connection resource.

Quick Stats has no paging and refuses any request over 50,000 records (HTTP 413), so a year is
planned (``planner``) before anything is fetched; zero-count pieces are skipped because
``api_GET`` answers 400, not an empty list, for a query with no data. The key travels in the
URL, so it only ever passes through the shared client, which redacts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import orjson

from ingest_assets.errors import SourceError
from ingest_assets.http import HttpClient, Response
from ingest_assets.kinds.base import DatasetConfig, KindResource, Page, Plan, Slice, Source
from ingest_assets.kinds.nass.config import NassDatasetConfig, QueryValue
from ingest_assets.kinds.nass.pages import RecordCount, count_or_decode, records_of
from ingest_assets.kinds.nass.planner import SplitPlanner
from ingest_assets.request_budget import shared_budget
from ingest_assets.settings import Settings, secret_reference


def _as_params(query: dict[str, QueryValue]) -> dict[str, tuple[str, ...]]:
    return {
        name: tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
        for name, value in query.items()
    }


def _error_text(response: Response) -> str:
    data = response.data
    if isinstance(data, dict) and isinstance(data.get("error"), list):
        return "; ".join(str(e) for e in data["error"])
    return response.excerpt()


class NassSource(Source):
    """Quick Stats for one dataset: counts, the split plan and the pages of each slice."""

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
    ) -> Response:
        pairs: list[tuple[str, str]] = [("key", self._api_key)]
        pairs += [(name, value) for name, values in params.items() for value in values]
        response = self.client.get(f"{self._base_url}/{endpoint}/", pairs, what=what, decode=decode)
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
        a year without records costs one.
        """
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
        planner = SplitPlanner(self._split_dims, self._count, self._values, self._what)
        slices = planner.split(params, total) if total else []
        return Plan(year=year, slices=tuple(slices), source_count=total)

    def fetch(self, part: Slice) -> Iterator[Page]:
        what = self._what(dict(part.params))
        params = {**part.params, "format": (self.config.response_format.upper(),)}
        response = self._get("api_GET", params, what, decode=count_or_decode)
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


class NassApi(KindResource):
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
    def from_settings(cls, config: Settings) -> NassApi:
        """The key as ``dg.EnvVar("NASS_API_KEY")`` (unset: empty, refused when a run needs it)."""
        return cls(
            api_key=secret_reference("nass_api_key", config.nass_api_key),
            base_url=config.nass_base_url,
            min_interval_seconds=config.nass_min_interval_seconds,
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
            budget=shared_budget(),
        )
        assert isinstance(config, NassDatasetConfig)
        return NassSource(config, client, self.api_key, self.base_url)
