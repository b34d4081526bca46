"""Socrata open-data portals (SODA 2.1 ``/resource/{id}.json``): counts, paging, the resource.

A year is one dataset id (``dataset_ids: {2017: ...}``, as LA publishes 311 requests) or one
dataset filtered on ``year_column`` with ``$where``. ``$select=count(*)`` (answered as a string)
is the source count. Pages are ``$limit``/``$offset`` over a total ``$order`` (the key columns,
then ``:id``), because offset paging without one duplicates and skips rows; a short or empty page
ends the slice, and the count is taken again afterwards so that data changing under the paging
fails the year instead of landing a mix. Incremental plans add
``updated_column >= watermark - overlap`` to the filter. The app token travels only in the
``X-App-Token`` header of the shared client, which redacts it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any, ClassVar

from ingest_assets.errors import SourceError
from ingest_assets.http import HttpClient, Response
from ingest_assets.kinds.base import DatasetConfig, KindResource, Page, Plan, Slice, Source
from ingest_assets.kinds.socrata.config import NUMBER_TYPES, TIME_TYPES, SocrataDatasetConfig
from ingest_assets.settings import Settings, secret_reference


def soql_time(value: datetime | date) -> str:
    """A floating timestamp literal as SODA writes them: ``YYYY-MM-DDTHH:MM:SS.fff``."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def _error_text(response: Response) -> str:
    """``errorCode ?? code`` and ``message`` of a SODA error body, else an excerpt."""
    data = response.data
    if isinstance(data, dict) and data.get("message"):
        code = data.get("errorCode") or data.get("code")
        message = str(data["message"]).split("; position:")[0]
        return f"{code}: {message}" if code else message
    return response.excerpt()


class SocrataSource(Source):
    """A Socrata dataset: counts, keyset/offset paging, watermarks and change signals."""

    kind: ClassVar[str] = "socrata"
    config: SocrataDatasetConfig

    def __init__(
        self, config: SocrataDatasetConfig, client: HttpClient, base_url: str | None
    ) -> None:
        super().__init__(config, client)
        self._base_url = (base_url or f"https://{config.domain}").rstrip("/")

    # -- requests -------------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, str], what: str) -> Response:
        response = self.client.get(f"{self._base_url}/{path}", params, what=what)
        if response.status == 200:
            return response
        if response.status in (401, 403):
            raise SourceError(
                f"{what}: Socrata refused the request (HTTP {response.status}: "
                f"{_error_text(response)}); check SOCRATA_APP_TOKEN"
            )
        if response.status == 404:
            raise SourceError(f"{what}: no such dataset at {self._base_url} ({path})")
        raise SourceError(f"{what}: HTTP {response.status}: {_error_text(response)}")

    def dataset_for(self, year: int) -> str:
        if self.config.dataset_id is not None:
            return self.config.dataset_id
        try:
            return self.config.dataset_ids[year]  # type: ignore[index]
        except KeyError:
            known = ", ".join(str(y) for y in sorted(self.config.dataset_ids or {}))
            raise SourceError(
                f"dataset {self.config.name}, year {year}: no dataset id for this year in "
                f"dataset_ids (years {known})"
            ) from None

    def _what(self, year: int) -> str:
        return f"dataset {self.config.name}, year {year} ({self.dataset_for(year)})"

    def _year_filter(self, year: int) -> str | None:
        column = self.config.year_column
        if self.config.dataset_id is None or column is None:
            return None
        pg_type = self.config.columns[column]
        if pg_type in TIME_TYPES:
            start, end = soql_time(date(year, 1, 1)), soql_time(date(year + 1, 1, 1))
            return f"{column} >= '{start}' AND {column} < '{end}'"
        return f"{column} = {year}" if pg_type in NUMBER_TYPES else f"{column} = '{year}'"

    def _where(self, year: int, since: str | None) -> str | None:
        parts = [p for p in (self._year_filter(year),) if p]
        if since is not None:
            parts.append(f"{self.config.updated_column} >= '{since}'")
        return " AND ".join(f"({p})" for p in parts) if len(parts) > 1 else next(iter(parts), None)

    def _count(self, dataset: str, where: str | None, what: str) -> int:
        params = {"$select": "count(*) AS n", **({"$where": where} if where else {})}
        data = self._get(f"resource/{dataset}.json", params, f"count for {what}").data
        try:
            return int(data[0]["n"])
        except (TypeError, LookupError, ValueError):
            raise SourceError(f"count for {what}: unexpected body {data!r:.200}") from None

    def _slice(self, year: int, where: str | None, count: int) -> Slice:
        dataset = self.dataset_for(year)
        params = {"dataset": (dataset,), **({"$where": (where,)} if where else {})}
        return Slice(key=dataset, params=params, expected_rows=count)

    @property
    def _order(self) -> str:
        return ",".join([*self.config.key, ":id"])

    def _page_params(self, where: str | None) -> dict[str, str]:
        return {
            "$select": ",".join(self.config.columns),
            **({"$where": where} if where else {}),
            "$order": self._order,
            "$limit": str(self.config.page_size),
        }

    # -- the Source interface --------------------------------------------------------------
    def count(self, year: int) -> int:
        return self._count(self.dataset_for(year), self._year_filter(year), self._what(year))

    def plan(self, year: int) -> Plan:
        total = self.count(year)
        slices = (self._slice(year, self._year_filter(year), total),) if total else ()
        return Plan(year=year, slices=slices, source_count=total, year_count=total)

    def plan_changes(self, year: int, since: str | None) -> Plan:
        where = self._where(year, since)
        year_total = self.count(year)
        changed = (
            year_total
            if since is None
            else self._count(self.dataset_for(year), where, self._what(year))
        )
        slices = (self._slice(year, where, changed),) if changed else ()
        notes = (f"rows with {self.config.updated_column} >= {since}",) if since else ()
        return Plan(year, slices, changed, notes, year_count=year_total)

    def fetch(self, part: Slice) -> Iterator[Page]:
        dataset = part.params["dataset"][0]
        where = part.params.get("$where", (None,))[0]
        what = f"dataset {self.config.name}, slice {dataset}"
        params = self._page_params(where)
        offset = index = 0
        while True:
            response = self._get(
                f"resource/{dataset}.json", {**params, "$offset": str(offset)}, what
            )
            data = response.data
            if not isinstance(data, list):
                raise SourceError(f"{what}: expected a JSON list of rows at offset {offset}")
            if data:
                yield Page(slice=part, index=index, body=response.body, rows=len(data))
                index += 1
            offset += len(data)
            if len(data) < self.config.page_size:
                break
        after = self._count(dataset, where, what)
        if after != part.expected_rows:
            raise SourceError(
                f"{what}: the source's count changed from {part.expected_rows:,} to {after:,} "
                f"while {offset:,} rows were paged; the pages may mix two versions of the data "
                "— re-run to fetch it again"
            )

    def change_signal(self, years: Sequence[int]) -> dict[int, str]:
        """Per-year ids: the id's ``rowsUpdatedAt`` (else ``viewLastModified``). One id with an
        ``updated_column``: the year's count and newest update; without one: the id's stamp.
        """
        if self.config.dataset_id is not None and self.config.updated_column:
            return {year: self._year_fingerprint(year) for year in years}
        stamps: dict[str, str] = {}
        for year in years:
            dataset = self.dataset_for(year)
            if dataset not in stamps:
                stamps[dataset] = self._rows_updated(dataset, self._what(year))
        return {year: stamps[self.dataset_for(year)] for year in years}

    def _rows_updated(self, dataset: str, what: str) -> str:
        meta = self._get(f"api/views/{dataset}.json", {}, f"metadata for {what}").data
        stamp = meta.get("rowsUpdatedAt") if isinstance(meta, dict) else None
        if stamp is None and isinstance(meta, dict):
            stamp = meta.get("viewLastModified")
        if stamp is None:
            raise SourceError(
                f"metadata for {what}: neither rowsUpdatedAt nor viewLastModified is present"
            )
        return str(stamp)

    def _year_fingerprint(self, year: int) -> str:
        where = self._year_filter(year)
        params = {
            "$select": f"count(*) AS n, max({self.config.updated_column}) AS m",
            **({"$where": where} if where else {}),
        }
        what = f"change signal for {self._what(year)}"
        data = self._get(f"resource/{self.dataset_for(year)}.json", params, what).data
        try:
            return f"{data[0]['n']}|{data[0].get('m', '')}"
        except (TypeError, LookupError):
            raise SourceError(f"{what}: unexpected body {data!r:.200}") from None

    def describe_query(self, year: int) -> dict[str, Any]:
        return {
            "url": f"{self._base_url}/resource/{self.dataset_for(year)}.json",
            "params": self._page_params(self._year_filter(year)),
        }


class SocrataApi(KindResource):
    """Connection settings for Socrata portals: the app token (``SOCRATA_APP_TOKEN``), pacing.

    ``base_url`` replaces every dataset's ``https://{domain}`` — the stand-in and tests use it.
    """

    resource_key: ClassVar[str] = "socrata_api"

    app_token: str = ""
    base_url: str | None = None
    min_interval_seconds: float = 0.0
    read_timeout_seconds: float = 300.0
    max_attempts: int = 6

    @classmethod
    def from_settings(cls, config: Settings) -> SocrataApi:
        """The token (as an env reference) when set; ``SOCRATA_BASE_URL`` for a stand-in."""
        token = secret_reference("socrata_app_token", config.socrata_app_token)
        return cls(app_token=token, base_url=config.socrata_base_url)

    def source(self, config: DatasetConfig) -> SocrataSource:
        assert isinstance(config, SocrataDatasetConfig)
        if not (self.app_token or self.base_url or config.anonymous):
            raise SourceError(
                f"{config.name}: SOCRATA_APP_TOKEN is not set, so nothing is sent to "
                f"{config.domain}: export a token, add `anonymous: true` to the dataset to use "
                'the portal without one, or serve the stand-ins: eval "$(./run ingest-assets '
                'standin --background)"'
            )
        client = HttpClient(
            secrets=[self.app_token],
            headers={"X-App-Token": self.app_token} if self.app_token else None,
            read_timeout=self.read_timeout_seconds,
            max_attempts=self.max_attempts,
            min_interval=self.min_interval_seconds,
        )
        return SocrataSource(config, client, self.base_url)
