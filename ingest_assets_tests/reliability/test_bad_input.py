"""Bad input, case by case: each gets a clear error and leaves the warehouse as it was.

The table of cases and their errors is in docs/reliability.md; keep the two in step.
"""

from __future__ import annotations

import dagster as dg
import orjson
import psycopg
import pytest

from ingest_assets.catalog import parse_catalog
from ingest_assets.dataset import dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.errors import CatalogError, SourceUnavailable
from ingest_assets.kinds.base import Slice
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass.source import NassApi
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.warehouse.shrink import CONFIRM_TAG
from ingest_assets_tests.reliability.faults import CannedApi, year_checksum

pytestmark = pytest.mark.reliability

QUERY = {"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "COUNTY"}
CONFIG = NassDatasetConfig(
    name="nass_bad", source="nass", table="facts_data", start_year=2018, query=QUERY
)
YEAR = 2019
KEY = "canned-key-0000"
RECORDS = list(NassDataset(records_per_year={YEAR: 20}).records({**QUERY, "year": YEAR}))


def body(records: list[dict]) -> bytes:
    return orjson.dumps({"data": records})


def answer(api: CannedApi, count: int, page: bytes) -> None:
    api.answers["api/get_counts"] = (200, orjson.dumps({"count": count}))
    api.answers["api/api_GET"] = (200, page)


@pytest.fixture
def canned(warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("NASS_API_KEY", KEY)
    with CannedApi().running() as api:
        yield api


def materialize(instance, api: CannedApi, **kwargs):
    nass = NassApi(api_key=KEY, base_url=api.base_url, min_delay_seconds=0.02, max_attempts=2)
    return dg.materialize(
        dataset_assets(CONFIG),
        partition_key=str(YEAR),
        resources={**build_resources(), "nass_api": nass},
        instance=instance,
        **kwargs,
    )


def loaded_year(instance, api: CannedApi, url: str) -> tuple[int, int, str]:
    answer(api, len(RECORDS), body(RECORDS))
    assert materialize(instance, api).success
    before = year_checksum(url, "facts_data", YEAR)
    assert before[0] == len(RECORDS)
    return before


def _drop(field: str):
    return [{k: v for k, v in r.items() if k != field} for r in RECORDS]


def _with(**fields):
    return [{**r, **fields} for r in RECORDS]


BAD_RESPONSES = {
    "wrong shape: data is not a list": (
        b'{"data": {"rows": []}}',
        "year 2019: expected a JSON object with a 'data' list",
    ),
    "wrong shape: a bare list": (b"[1, 2, 3]", "expected a JSON object with a 'data' list"),
    "record missing a field": (body(_drop("Value")), "schema drift: missing field(s) Value"),
    "record with a new field": (
        body(_with(new_column="x")),
        "schema drift: new field(s) new_column",
    ),
    "value that does not parse": (body(_with(Value="12x4")), "'12x4'"),
}


@pytest.mark.parametrize("case", list(BAD_RESPONSES))
def test_a_bad_response_fails_with_a_clear_error_and_leaves_the_year_as_it_was(
    instance, canned, warehouse_url, tally, case
):
    before = loaded_year(instance, canned, warehouse_url)
    page, expected = BAD_RESPONSES[case]
    answer(canned, len(RECORDS), page)
    result = materialize(instance, canned, raise_on_error=False)
    after = year_checksum(warehouse_url, "facts_data", YEAR)
    tally.add("rows_lost", max(0, before[0] - after[0]))
    tally.add("rows_duplicated", after[0] - after[1])
    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.error.to_string()
    assert expected in message, message
    assert f"dataset nass_bad, year {YEAR}" in message
    assert after == before
    tally.add("bad_inputs")


def test_a_response_that_is_not_json_is_retried_then_refused_naming_the_slice(canned, tally):
    answer(canned, len(RECORDS), b"<html><body>Scheduled maintenance</body></html>")
    fast = {"min_delay_seconds": 0.02, "backoff_base_seconds": 0.02, "backoff_cap_seconds": 0.1}
    source = NassApi(api_key=KEY, base_url=canned.base_url, **fast).source(CONFIG)
    part = Slice(key="all", params=source.year_params(YEAR), expected_rows=len(RECORDS))
    with pytest.raises(SourceUnavailable) as failure:
        list(source.fetch(part))
    message = str(failure.value)
    assert message.startswith(f"dataset nass_bad, year {YEAR}: gave up after 6 attempts")
    assert "body does not decode" in message and "Scheduled maintenance" in message
    assert canned.requests.count("api/api_GET") == 6
    tally.add("bad_inputs")


def test_an_empty_year_is_refused_then_loads_zero_rows_once_confirmed(
    instance, canned, warehouse_url, tally
):
    before = loaded_year(instance, canned, warehouse_url)
    answer(canned, 0, b'{"error": ["bad request - invalid query"]}')
    refused = materialize(instance, canned, raise_on_error=False)
    assert not refused.success
    assert year_checksum(warehouse_url, "facts_data", YEAR) == before
    result = materialize(instance, canned, tags={CONFIRM_TAG: "true"})
    assert result.success
    assert canned.requests.count("api/api_GET") == 1  # only the good load fetched a page
    [facts] = result.asset_materializations_for_node("nass_bad__facts")
    assert facts.metadata["loaded_rows"].value == 0
    assert facts.metadata["rows_replaced"].value == len(RECORDS)
    assert year_checksum(warehouse_url, "facts_data", YEAR)[0] == 0
    with psycopg.connect(warehouse_url) as conn:
        ledger = conn.execute(
            "SELECT status, rows_loaded FROM ingest_meta.load_ledger ORDER BY id"
        ).fetchall()
    assert ledger == [("loaded", len(RECORDS)), ("failed", 0), ("loaded", 0)]
    tally.add("bad_inputs")


ENTRY = {"source": "nass", "table": "facts", "start_year": 2000, "query": {"source_desc": "X"}}
BAD_CATALOG = {
    "identifier injection": (
        {"table": "facts; drop table x"},
        "dataset 'd', field 'table': 'facts; drop table x' is not a valid identifier",
    ),
    "schema injection": ({"schema": 'public"; --'}, "field 'schema'"),
    "year not a number": ({"start_year": "twenty"}, "field 'start_year'"),
    "unknown Quick Stats filter": (
        {"query": {"comodity_desc": "CORN"}},
        "'comodity_desc' is not a Quick Stats parameter",
    ),
    "year in the query": ({"query": {"year__GE": 2000}}, "the year comes from the partition"),
    "unknown source": ({"source": "ftp"}, "field 'source': unknown source 'ftp'"),
    "unknown field": ({"tabel": "x"}, "field 'tabel'"),
}


@pytest.mark.parametrize("case", list(BAD_CATALOG))
def test_a_malformed_catalog_entry_is_refused_naming_entry_and_field(case, tally):
    change, expected = BAD_CATALOG[case]
    with pytest.raises(CatalogError) as failure:
        parse_catalog({"datasets": {"d": {**ENTRY, **change}}})
    assert expected in str(failure.value)
    tally.add("bad_inputs")
