"""Socrata open-data portals (SODA3 and SODA 2.1): schema check, counts, paging, change signals.

A year is one dataset id (``dataset_ids: {2017: ...}``, as LA publishes 311 requests) or one
dataset filtered on ``year_column`` with ``$where``. Every query is built as SODA 2.1 parameters;
with SODA3 (``api: soda3``, or ``auto`` with a token) the same parameters travel as a SoQL body
``POST``ed to ``/api/v3/views/{id}/query.json`` with ``page`` paging, because Tyler now calls
SODA3 the standard and SODA2 a future deprecation; anonymous use stays on ``/resource``, since
SODA3 refuses requests without a token. ``count(*)`` (a string) is the source count.

Paging: SODA3 and incremental SODA2 slices page over a total order (the key columns, then
``:id``). Full SODA2 slices page by keyset (``:id > 'last'``, ordered by ``:id``), because deep
``$offset``s get ever slower on big years. Incremental slices keep offsets: they are small, and a
keyset over a composite key with nulls would need an OR-chain per key column. The export endpoint
(``export.csv``) is not used: it is one unpaged stream, so a cut-off transfer restarts the whole
year, and its CSV would need a second page format. A short or empty page ends the slice, and the
count is taken again afterwards so that data changing under the paging fails the year instead of
landing a mix. Incremental plans add ``updated_column >= watermark - overlap`` to the filter.

Before a year is planned, ``/api/views/{id}.json`` is compared with the catalog: a declared
column the portal no longer publishes fails the year (a warning with ``on_schema_change:
add_columns``), published columns not declared are noted, and a per-year id whose published name
names another year fails. The app token travels only in the ``X-App-Token`` header of the shared
client, which redacts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any, ClassVar

from ingest_assets.errors import SourceError
from ingest_assets.http import HttpClient, Response
from ingest_assets.kinds.base import DatasetConfig, KindResource, Page, Plan, Slice, Source
from ingest_assets.kinds.socrata.config import NUMBER_TYPES, TIME_TYPES, SocrataDatasetConfig
from ingest_assets.request_budget import shared_budget
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


def soda3_body(params: dict[str, str]) -> dict[str, Any]:
    """SODA 2.1 parameters as a SODA3 query body; ``$limit``/``$offset`` become a 1-based page."""
    clauses = (("SELECT", "$select"), ("WHERE", "$where"), ("ORDER BY", "$order"))
    query = " ".join(f"{word} {params[name]}" for word, name in clauses if name in params)
    body: dict[str, Any] = {"query": query if "$select" in params else f"SELECT * {query}"}
    if "$limit" in params:
        size = int(params["$limit"])
        body["page"] = {"pageNumber": int(params.get("$offset", 0)) // size + 1, "pageSize": size}
    return body


def _where_of(*parts: str | None) -> dict[str, str]:
    """``{"$where": ...}`` joining the given conditions with AND, or {} when there are none."""
    given = [p for p in parts if p]
    if not given:
        return {}
    return {"$where": given[0] if len(given) == 1 else " AND ".join(f"({p})" for p in given)}


class SocrataSource(Source):
    """A Socrata dataset: counts, keyset/offset paging, watermarks and change signals."""

    kind: ClassVar[str] = "socrata"
    config: SocrataDatasetConfig

    def __init__(
        self,
        config: SocrataDatasetConfig,
        client: HttpClient,
        base_url: str | None,
        has_token: bool = False,
    ) -> None:
        super().__init__(config, client)
        self._base_url = (base_url or f"https://{config.domain}").rstrip("/")
        self._has_token = has_token
        self.soda3 = config.api == "soda3" or (config.api == "auto" and has_token)

    # -- requests -------------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, str], what: str) -> Response:
        response = self.client.get(f"{self._base_url}/{path}", params, what=what)
        return self._checked(response, what, path)

    def _rows(self, dataset: str, params: dict[str, str], what: str) -> Response:
        """A query for rows or a count: ``/resource`` parameters, or the same as a SODA3 body."""
        if not self.soda3:
            return self._get(f"resource/{dataset}.json", params, what)
        if not self._has_token:
            raise SourceError(f"{what}: api soda3 needs an app token; set SOCRATA_APP_TOKEN")
        path = f"api/v3/views/{dataset}/query.json"
        response = self.client.post(f"{self._base_url}/{path}", soda3_body(params), what=what)
        return self._checked(response, what, path)

    def _checked(self, response: Response, what: str, path: str) -> Response:
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
        changed = f"{self.config.updated_column} >= '{since}'" if since is not None else None
        return _where_of(self._year_filter(year), changed).get("$where")

    def _count(self, dataset: str, where: str | None, what: str) -> int:
        params = {"$select": "count(*) AS n", **({"$where": where} if where else {})}
        data = self._rows(dataset, params, f"count for {what}").data
        try:
            return int(data[0]["n"])
        except (TypeError, LookupError, ValueError):
            raise SourceError(f"count for {what}: unexpected body {data!r:.200}") from None

    def _slice(self, year: int, where: str | None, count: int, keyset: bool) -> Slice:
        dataset = self.dataset_for(year)
        params = {"dataset": (dataset,), **({"$where": (where,)} if where else {})}
        if keyset and not self.soda3:
            params["paging"] = ("keyset",)
        return Slice(key=dataset, params=params, expected_rows=count)

    @property
    def _order(self) -> str:
        return ",".join([*self.config.key, ":id"])

    @property
    def _selected(self) -> str:
        return ",".join(self.config.columns)

    def _page_params(self, where: str | None) -> dict[str, str]:
        return {
            # add_columns asks for every field, so a column the publisher adds arrives too
            "$select": "*" if self.config.on_schema_change == "add_columns" else self._selected,
            **({"$where": where} if where else {}),
            "$order": self._order,
            "$limit": str(self.config.page_size),
        }

    # -- the Source interface --------------------------------------------------------------
    def count(self, year: int) -> int:
        return self._count(self.dataset_for(year), self._year_filter(year), self._what(year))

    def plan(self, year: int) -> Plan:
        notes = self.check_schema(year)
        total = self.count(year)
        slices = (self._slice(year, self._year_filter(year), total, keyset=True),) if total else ()
        return Plan(year, slices, total, notes, year_count=total)

    def plan_changes(self, year: int, since: str | None) -> Plan:
        schema_notes = self.check_schema(year)
        where = self._where(year, since)
        year_total = self.count(year)
        changed = (
            year_total
            if since is None
            else self._count(self.dataset_for(year), where, self._what(year))
        )
        slices = (self._slice(year, where, changed, keyset=since is None),) if changed else ()
        notes = (f"rows with {self.config.updated_column} >= {since}",) if since else ()
        return Plan(year, slices, changed, (*schema_notes, *notes), year_count=year_total)

    def check_schema(self, year: int) -> tuple[str, ...]:
        """Compare the declared columns (and a per-year id's name) with what the portal publishes.

        Raises before any row is requested; returns the notes to keep with the plan.
        """
        what = self._what(year)
        meta = self._metadata(self.dataset_for(year), what)
        published = [
            str(c.get("fieldName"))
            for c in meta.get("columns", [])
            if isinstance(c, dict) and not str(c.get("fieldName", ":")).startswith(":")
        ]
        dropped = [c for c in self.config.columns if c not in published]
        undeclared = [c for c in published if c not in self.config.columns]
        notes = [f"published but not declared (not loaded): {', '.join(undeclared)}"] * bool(
            undeclared
        )
        name = str(meta.get("name", ""))
        years_named = re.findall(r"(?<!\d)(?:19|20)\d\d(?!\d)", name)
        if self.config.dataset_ids is not None and years_named and str(year) not in years_named:
            raise SourceError(
                f"{what}: the portal names this dataset {name!r}, not year {year}; "
                "check dataset_ids"
            )
        if dropped:
            problem = f"{what}: declared columns the portal no longer publishes: " + ", ".join(
                dropped
            )
            if getattr(self.config, "on_schema_change", "fail") != "add_columns":
                raise SourceError(f"{problem} (published: {', '.join(published)})")
            notes.append(f"warning: {problem}")
        return tuple(notes)

    def _metadata(self, dataset: str, what: str) -> dict[str, Any]:
        meta = self._get(f"api/views/{dataset}.json", {}, f"metadata for {what}").data
        if not isinstance(meta, dict):
            raise SourceError(f"metadata for {what}: unexpected body {meta!r:.200}")
        return meta

    def fetch(self, part: Slice) -> Iterator[Page]:
        dataset = part.params["dataset"][0]
        where = part.params.get("$where", (None,))[0]
        what = f"dataset {self.config.name}, slice {dataset}"
        keyset = part.params.get("paging") == ("keyset",)
        params = self._page_params(where)
        if keyset:
            params |= {"$select": f"{params['$select']},:id", "$order": ":id"}
        offset = index = 0
        last_id: str | None = None
        while True:
            if keyset:
                after_last = f":id > '{last_id}'" if last_id is not None else None
                request = {**params, **_where_of(where, after_last)}
            else:
                request = {**params, "$offset": str(offset)}
            data = (response := self._rows(dataset, request, what)).data
            if not isinstance(data, list):
                raise SourceError(f"{what}: expected a JSON list of rows at row {offset}")
            if data:
                yield Page(slice=part, index=index, body=response.body, rows=len(data))
                index += 1
                last_id = str(data[-1].get(":id", "")).replace("'", "''") if keyset else None
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
        """Per-year ids: the id's data stamp, ``<field>=<value>`` naming the field it came from
        (see ``_rows_updated``). One id with an ``updated_column``: the year's count and newest
        update; without one: the id's stamp.
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
        """``rowsUpdatedAt``, else ``viewLastModified`` (portals dropped the first in 2025), else
        Metadata API v1 ``dataUpdatedAt``, else the catalog's ``data_updated_at``.
        """
        meta = self._metadata(dataset, what)
        for field in ("rowsUpdatedAt", "viewLastModified"):
            if meta.get(field) is not None:
                return f"{field}={meta[field]}"
        v1 = self._optional(f"api/views/metadata/v1/{dataset}", {}, what)
        if isinstance(v1, dict) and v1.get("dataUpdatedAt"):
            return f"dataUpdatedAt={v1['dataUpdatedAt']}"
        found = self._optional("api/catalog/v1", {"ids": dataset}, what)
        for result in found.get("results", []) if isinstance(found, dict) else []:
            resource = result.get("resource", {}) if isinstance(result, dict) else {}
            if resource.get("id") == dataset and resource.get("data_updated_at"):
                return f"data_updated_at={resource['data_updated_at']}"
        raise SourceError(
            f"metadata for {what}: none of rowsUpdatedAt, viewLastModified, Metadata API v1 "
            "dataUpdatedAt or the catalog's data_updated_at is present"
        )

    def _optional(self, path: str, params: dict[str, str], what: str) -> Any:
        """A fallback metadata document, or None where the portal does not serve it."""
        response = self.client.get(f"{self._base_url}/{path}", params, what=f"metadata for {what}")
        return response.data if response.status == 200 else None

    def _year_fingerprint(self, year: int) -> str:
        where = self._year_filter(year)
        params = {
            "$select": f"count(*) AS n, max({self.config.updated_column}) AS m",
            **({"$where": where} if where else {}),
        }
        what = f"change signal for {self._what(year)}"
        data = self._rows(self.dataset_for(year), params, what).data
        try:
            return f"{data[0]['n']}|{data[0].get('m', '')}"
        except (TypeError, LookupError):
            raise SourceError(f"{what}: unexpected body {data!r:.200}") from None

    def describe_query(self, year: int) -> dict[str, Any]:
        dataset, params = self.dataset_for(year), self._page_params(self._year_filter(year))
        if self.soda3:
            return {
                "url": f"{self._base_url}/api/v3/views/{dataset}/query.json",
                "body": soda3_body(params),
            }
        return {"url": f"{self._base_url}/resource/{dataset}.json", "params": params}


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
            budget=shared_budget(),
        )
        return SocrataSource(config, client, self.base_url, has_token=bool(self.app_token))
