"""Socrata datasets end to end: the stand-in over HTTP → staged pages → Parquet → facts.

LA 311 (one dataset id per year, incremental on srnumber/updateddate) and Seattle pet licenses
(one dataset filtered by year, full snapshots), served from the real recorded exports. Every
test runs twice: without a token (SODA 2.1 ``/resource``) and with one (SODA3 ``POST``s); each
asserts the exact table, so both APIs must land the same rows.
"""

import os
from collections import Counter
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from ingest_assets.dataset import FULL_RELOAD_TAG, RECONCILE_CHECK, dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.socrata.config import SocrataDatasetConfig
from ingest_assets.standin.socrata_data import (
    LA311_2017_FIELDS,
    SEATTLE_PET_LICENSE_FIELDS,
    columns_of,
    rows_from_portal_csv,
)
from ingest_assets.standin.socrata_server import SocrataStandIn
from ingest_assets.standin.socrata_soda3 import deep_offsets

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "socrata"
LA_ID, PETS_ID = "la311-2017", "jguv-t9rb"
LA_COLUMNS = {
    "srnumber": "text",
    "createddate": "timestamp",
    "updateddate": "timestamp",
    "requesttype": "text",
    "status": "text",
    "actiontaken": "text",
    "requestsource": "text",
    "servicedate": "timestamp",
    "closeddate": "timestamp",
    "nc": "integer",
    "cd": "integer",
    "ncname": "text",
    "address": "text",
    "zipcode": "text",
    "latitude": "double precision",
    "longitude": "double precision",
    "location": "jsonb",
}
LA = SocrataDatasetConfig(
    name="la311_t",
    source="socrata",
    domain="data.lacity.org",
    table="requests",
    start_year=2017,
    end_year=2017,
    dataset_ids={2017: LA_ID},
    mode="incremental",
    key=["srnumber"],
    updated_column="updateddate",
    overlap="1 day",
    columns=LA_COLUMNS,
    page_size=4_000,
)
PETS = SocrataDatasetConfig(
    name="pets_t",
    source="socrata",
    domain="data.seattle.gov",
    table="pet_licenses",
    start_year=2022,
    end_year=2025,
    dataset_id=PETS_ID,
    year_column="license_issue_date",
    columns={
        "license_issue_date": "date",
        "license_number": "text",
        "animal_s_name": "text",
        "species": "text",
        "primary_breed": "text",
        "secondary_breed": "text",
        "zip_code": "text",
    },
    page_size=10_000,
    max_shrink=1.0,  # a snapshot of active licenses: old years shrink as licenses expire
)


@pytest.fixture(scope="module")
def portal():
    la = rows_from_portal_csv(
        FIXTURES / "la311/MyLA311_Service_Request_Data_2017_Subset.csv.gz", LA311_2017_FIELDS
    )
    pets = {
        snapshot: rows_from_portal_csv(FIXTURES / f"seattle_pet_licenses/{name}", fields)
        for snapshot, name, fields in (
            (2023, "Seattle_Pet_Licenses_snapshot_2023-04.csv.gz", SEATTLE_PET_LICENSE_FIELDS),
            (2025, "Seattle_Pet_Licenses_20250714.csv.gz", SEATTLE_PET_LICENSE_FIELDS),
        )
    }
    with SocrataStandIn() as server:
        yield server, la, pets


@pytest.fixture
def standin(portal):
    server, la, pets = portal
    server.add_dataset(LA_ID, la, columns_of(LA311_2017_FIELDS), "srnumber")
    server.add_dataset(PETS_ID, pets[2023], columns_of(SEATTLE_PET_LICENSE_FIELDS))
    server.clear_faults()
    server.reset_stats()
    return server


@pytest.fixture(params=["soda2", "soda3"])
def resources(standin, warehouse_url, tmp_path, monkeypatch, request):
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("SOCRATA_BASE_URL", standin.base_url)
    if request.param == "soda3":  # api: auto picks SODA3 once a token is set
        monkeypatch.setenv("SOCRATA_APP_TOKEN", "pipeline-test-token")
    else:
        monkeypatch.delenv("SOCRATA_APP_TOKEN", raising=False)
    return build_resources()


def materialize(instance, resources, config, year, **kwargs):
    return dg.materialize(
        dataset_assets(config),
        partition_key=str(year),
        resources=resources,
        instance=instance,
        **kwargs,
    )


def check_of(result) -> dg.AssetCheckEvaluation:
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == RECONCILE_CHECK]
    assert check.check_name == RECONCILE_CHECK
    return check


def figures(check) -> dict:
    return {k: v.value for k, v in check.metadata.items()}


def query(url: str, statement: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement).fetchall()


def pets_rows_of(rows: list[dict], years: range) -> Counter:
    fields = ("license_number", "animal_s_name", "species", "primary_breed", "zip_code")
    return Counter(
        (r["license_issue_date"][:10], *(r.get(f) for f in fields))
        for r in rows
        if int(r["license_issue_date"][:4]) in years
    )


def assert_paged_in_total_order(standin: SocrataStandIn) -> None:
    """Pages in a total order: key then ``:id`` with offsets (SODA3, incremental SODA2), or a
    keyset on ``:id`` alone with no offset at all (full SODA2 loads); over the expected API."""
    requests = [
        r
        for r in standin.stats.requests
        if r.endpoint == "resource" and "count(" not in r.params.get("$select", "")
    ]
    pages = [r.params for r in requests]
    assert pages, "no page was requested"
    assert all(p.get("$order", "").endswith(":id") for p in pages)
    soda3 = bool(os.environ.get("SOCRATA_APP_TOKEN"))
    if soda3:  # SODA3 pages by page number (recorded as $offset)
        assert all("$offset" in p for p in pages)
    else:  # an offset-paged slice, or a keyset on :id alone that never sends $offset
        assert all("$offset" in p or p["$order"] == ":id" for p in pages)
    assert all(r.path.startswith("/api/v3/views/") == soda3 for r in requests)


def test_pets_2023_snapshot_then_2025_leaves_exactly_the_2025_rows(
    instance, resources, standin, portal, warehouse_url
):
    _, _, pets = portal
    for year in (2022, 2023, 2024):
        assert materialize(instance, resources, PETS, year).success
    loaded = query(warehouse_url, "SELECT year, count(*) FROM pet_licenses GROUP BY 1 ORDER BY 1")
    assert loaded == [(2022, 24_567), (2023, 7_625)]
    assert_paged_in_total_order(standin)
    if not os.environ.get("SOCRATA_APP_TOKEN"):  # full loads over SODA2 page by keyset
        assert deep_offsets(r.params for r in standin.stats.requests) == []

    standin.replace_rows(PETS_ID, pets[2025])
    for year in (2022, 2023, 2024, 2025):
        result = materialize(instance, resources, PETS, year)
        assert result.success and check_of(result).passed
    rows = query(
        warehouse_url,
        "SELECT to_char(license_issue_date, 'YYYY-MM-DD'), license_number, animal_s_name, "
        "species, primary_breed, zip_code FROM pet_licenses",
    )
    expected = pets_rows_of(pets[2025], range(2022, 2026))
    assert Counter(rows) == expected
    assert sum(expected.values()) == 138 + 6_982 + 21_179 + 14_322


def la_table(url: str) -> dict[str, tuple]:
    rows = query(
        url,
        "SELECT srnumber, status, to_char(updateddate, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), nc, "
        "location->>'latitude' FROM requests",
    )
    table = {row[0]: row[1:] for row in rows}
    assert len(table) == len(rows), "duplicate keys in the table"
    return table


def la_source(standin: SocrataStandIn) -> dict[str, tuple]:
    return {
        r["srnumber"]: (
            r.get("status"),
            r["updateddate"],
            int(r["nc"]) if "nc" in r else None,
            r.get("location", {}).get("latitude"),
        )
        for r in standin.rows(LA_ID)
    }


def watermark(url: str) -> str:
    [(value,)] = query(url, "SELECT value FROM ingest_meta.watermarks WHERE dataset = 'la311_t'")
    return value


def test_la_incremental_run_merges_exactly_the_changed_and_new_rows(
    instance, resources, standin, warehouse_url
):
    first = materialize(instance, resources, LA, 2017)
    assert first.success and check_of(first).passed
    assert figures(check_of(first))["loaded_rows"] == 9_999
    assert la_table(warehouse_url) == la_source(standin)
    assert watermark(warehouse_url) == "2019-03-12T17:15:04.000"
    assert_paged_in_total_order(standin)

    stored = standin.rows(LA_ID)
    changed = [
        {k: v for k, v in row.items() if not k.startswith(":")}
        | {"status": "Reopened", "updateddate": "2019-03-20T08:00:00.000"}
        for row in stored[100:103]
    ]
    new = [
        {
            "srnumber": f"1-99900000{i}",
            "createddate": "2017-12-31T12:00:00.000",
            "updateddate": "2019-03-21T09:30:00.000",
            "requesttype": "Bulky Items",
            "status": "Open",
        }
        for i in range(2)
    ]
    standin.upsert_rows(LA_ID, changed + new, key="srnumber")
    standin.reset_stats()
    before = la_table(warehouse_url)

    second = materialize(instance, resources, LA, 2017)
    assert second.success
    check = check_of(second)
    assert check.passed, check.description
    numbers = figures(check)
    assert numbers["year_source_count"] == numbers["year_table_rows"] == 10_001
    facts = second.asset_materializations_for_node("la311_t__facts")[0].metadata
    assert facts["rows_inserted"].value == 2 and facts["rows_updated"].value == 3
    after = la_table(warehouse_url)
    assert after == la_source(standin)
    differing = {k for k in after if before.get(k) != after[k]}
    assert differing == {r["srnumber"] for r in changed + new}
    assert numbers["loaded_rows"] < 100  # only the rows inside the overlap window were fetched
    wheres = {r.params.get("$where") for r in standin.stats.requests if r.endpoint == "resource"}
    assert "updateddate >= '2019-03-11T17:15:04.000'" in wheres
    assert watermark(warehouse_url) == "2019-03-21T09:30:00.000"
    assert_paged_in_total_order(standin)
    ledger = query(warehouse_url, "SELECT mode, status, rows_loaded FROM ingest_meta.load_ledger")
    assert ledger == [
        ("incremental", "loaded", 9_999),
        ("incremental", "loaded", numbers["loaded_rows"]),
    ]


def test_a_source_count_that_disagrees_with_what_landed_fails_the_check(
    instance, resources, standin, warehouse_url
):
    standin.inject("count-drift:5", times=2)  # both counts of the year claim 5 more rows
    result = materialize(instance, resources, PETS, 2023, raise_on_error=False)
    assert not result.success
    check = check_of(result)
    assert not check.passed
    assert "source count 7,630" in check.description and "loaded rows 7,625" in check.description
    assert query(warehouse_url, "SELECT count(*) FROM pet_licenses") == [(0,)]


def test_rows_deleted_at_the_source_fail_the_incremental_year_check(
    instance, resources, standin, warehouse_url
):
    assert materialize(instance, resources, LA, 2017).success
    assert standin.delete_rows(LA_ID, lambda row: row["srnumber"] == "1-870704831") == 1
    result = materialize(instance, resources, LA, 2017, raise_on_error=False)
    check = check_of(result)
    assert not check.passed
    assert "year source count 9,998" in check.description
    assert "year table rows 9,999" in check.description
    assert watermark(warehouse_url) == "2019-03-12T17:15:04.000"
    assert len(la_table(warehouse_url)) == 9_999  # rolled back

    repair = materialize(instance, resources, LA, 2017, tags={FULL_RELOAD_TAG: "true"})
    assert repair.success and check_of(repair).passed
    assert la_table(warehouse_url) == la_source(standin)
    again = materialize(instance, resources, LA, 2017)  # incremental again, on the unique index
    assert again.success and check_of(again).passed
    assert figures(check_of(again))["year_table_rows"] == 9_998
    modes = query(warehouse_url, "SELECT mode, status FROM ingest_meta.load_ledger ORDER BY id")
    assert modes == [
        ("incremental", "loaded"),
        ("incremental", "failed"),
        ("full", "loaded"),
        ("incremental", "loaded"),
    ]


def test_a_count_that_changes_while_paging_fails_the_fetch(instance, resources, standin):
    standin.inject("count-drift:3", times=1)  # the count before paging is off, the one after not
    result = materialize(instance, resources, PETS, 2023, raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert "count changed from 7,628 to 7,625" in error.message
    assert "pets_t" in error.message
