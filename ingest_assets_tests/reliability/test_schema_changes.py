"""Source fields that appear or vanish, through real runs: ``on_schema_change`` per kind.

Each test loads an older year, changes the source (Quick Stats gains a field; a bulk file gains
a header or loses one), loads a newer year, and reads the warehouse back: with ``add_columns``
the new column holds the new year's values and NULL for the older year, whose rows are intact;
with ``fail`` the run fails naming the field and the table is unchanged.
"""

from __future__ import annotations

import csv
import gzip

import dagster as dg
import psycopg
import pytest

from ingest_assets.dataset import dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.socrata.config import SocrataDatasetConfig
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets.standin.socrata_server import SocrataStandIn
from ingest_assets_tests.kinds.files.test_files_source import HEADERS, rows_for
from ingest_assets_tests.kinds.files.test_files_source import config as files_config
from ingest_assets_tests.support.pipeline import nass_resources

pytestmark = pytest.mark.reliability

QUERY = {"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "COUNTY"}


def nass_config(**fields) -> NassDatasetConfig:
    return NassDatasetConfig(
        name="nass_sc", source="nass", table="facts_sc", start_year=2018, query=QUERY, **fields
    )


@pytest.fixture(scope="module")
def standin():
    with NassStandIn(NassDataset(records_per_year={2019: 400, 2021: 300})) as server:
        yield server


@pytest.fixture
def nass(standin, warehouse_url, tmp_path, monkeypatch):
    standin.extra_fields = {}
    yield nass_resources(monkeypatch, standin, warehouse_url, tmp_path / "staging")
    standin.extra_fields = {}


def run(assets, year: int, resources, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets, partition_key=str(year), resources=resources, instance=instance,
        raise_on_error=False,
    )  # fmt: skip


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(e.step_failure_data.error.to_string() for e in result.get_step_failure_events())


def counts_by_year(url: str, table: str, column: str) -> dict[int, tuple[int, int]]:
    """Per year: (rows, rows with a non-NULL `column`)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT year, count(*), count({column}) FROM {table} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return {year: (total, filled) for year, total, filled in rows}


def columns_of(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            )
        ]


def test_nass_gains_a_field_and_add_columns_loads_it_for_the_new_year_only(
    standin, nass, instance, warehouse_url, tally
):
    assets = dataset_assets(nass_config(on_schema_change="add_columns"))
    assert run(assets, 2019, nass, instance).success
    standin.extra_fields = {"survey_program": "ARMS"}
    result = run(assets, 2021, nass, instance)
    assert result.success, failure_text(result)
    tally.add("schema_changes", 1)
    assert counts_by_year(warehouse_url, "facts_sc", "survey_program") == {
        2019: (400, 0),  # the older year is intact and reads NULL
        2021: (300, 300),
    }
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(
            "SELECT DISTINCT survey_program FROM facts_sc WHERE year = 2021"
        ).fetchall() == [("ARMS",)]
    [facts] = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["nass_sc", "facts"])
    ]
    metadata = facts.materialization.metadata
    assert metadata["columns_added"].value == "survey_program"
    schema = metadata["dagster/column_schema"].value
    assert [c.name for c in schema.columns][-1] == "survey_program"
    assert {c.name: c.type for c in schema.columns}["survey_program"] == "text"


def test_nass_gains_a_field_and_fail_names_it_leaving_the_table_alone(
    standin, nass, instance, warehouse_url, tally
):
    assets = dataset_assets(nass_config())  # on_schema_change defaults to fail
    assert run(assets, 2019, nass, instance).success
    standin.extra_fields = {"survey_program": "ARMS"}
    result = run(assets, 2021, nass, instance)
    tally.add("bad_inputs", 1)
    assert not result.success
    assert "new field(s) survey_program" in failure_text(result)
    assert "survey_program" not in columns_of(warehouse_url, "facts_sc")
    assert counts_by_year(warehouse_url, "facts_sc", "year") == {2019: (400, 400)}


def write_gz(path, headers, rows) -> None:
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)


@pytest.fixture
def files(warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "staging"))
    folder = tmp_path / "dump"
    folder.mkdir()
    write_gz(folder / "a.csv.gz", HEADERS, rows_for(2019, 50))
    return folder, build_resources()


def test_a_file_gains_a_header_and_add_columns_loads_it_and_a_lost_one_is_null(
    files, instance, warehouse_url, tally
):
    folder, resources = files
    assets = dataset_assets(files_config(folder, on_schema_change="add_columns"))
    first = run(assets, 2019, resources, instance)
    assert first.success, failure_text(first)
    rows = [[*row, f"G{i % 3}"] for i, row in enumerate(rows_for(2020, 30))]
    write_gz(folder / "b.csv.gz", [*HEADERS, "Grade"], rows)
    result = run(assets, 2020, resources, instance)
    assert result.success, failure_text(result)
    assert counts_by_year(warehouse_url, "bulk", "grade") == {2019: (50, 0), 2020: (30, 30)}
    # the next year's file has lost a declared column: it loads as NULL and is reported
    without_commodity = [h for h in HEADERS if h != "Commodity"]
    write_gz(folder / "c.csv.gz", without_commodity, [["2021", "01", "1", "2021-01-01 00:00:00"]])
    result = run(assets, 2021, resources, instance)
    assert result.success, failure_text(result)
    tally.add("schema_changes", 2)
    assert counts_by_year(warehouse_url, "bulk", "commodity")[2021] == (1, 0)
    [facts] = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["bulk_t", "facts"])
    ]
    assert facts.materialization.metadata["fields_missing_at_source"].value == "commodity"
    assert counts_by_year(warehouse_url, "bulk", "grade")[2019] == (50, 0)


def test_a_file_gains_a_header_and_fail_names_it(files, instance, warehouse_url, tally):
    folder, resources = files
    assets = dataset_assets(files_config(folder))
    first = run(assets, 2019, resources, instance)
    assert first.success, failure_text(first)
    write_gz(folder / "b.csv.gz", [*HEADERS, "Grade"], [[*rows_for(2020, 1)[0], "G"]])
    result = run(assets, 2020, resources, instance)
    tally.add("bad_inputs", 1)
    assert not result.success
    assert "new field(s) grade" in failure_text(result)
    expected = ["year", "state_code", "commodity", "value", "load_time"]
    assert columns_of(warehouse_url, "bulk") == expected


def test_a_type_conflict_fails_naming_the_column_and_both_types(
    files, instance, warehouse_url, tally
):
    folder, resources = files
    write_gz(folder / "b.csv.gz", [*HEADERS, "Grade"], [[*rows_for(2020, 1)[0], "7"]])
    evolving = files_config(folder, on_schema_change="add_columns")
    assert run(dataset_assets(evolving), 2020, resources, instance).success  # grade: text
    typed = evolving.model_copy(update={"columns": {**evolving.columns, "grade": "integer"}})
    result = run(dataset_assets(typed), 2020, resources, instance)
    tally.add("bad_inputs", 1)
    assert not result.success
    assert "column 'grade' is text in the table but integer at the source" in failure_text(result)
    assert counts_by_year(warehouse_url, "bulk", "grade") == {2020: (1, 1)}


SOCRATA_COLUMNS = {"case_id": "text", "opened": "floating_timestamp", "kind": "text"}


def socrata_rows(year: int, n: int, **extra: str) -> list[dict]:
    return [
        {"case_id": f"{year}-{i}", "opened": f"{year}-05-0{1 + i % 9}T00:00:00.000", "kind": "K"}
        | extra
        for i in range(n)
    ]


def socrata_config(**fields) -> SocrataDatasetConfig:
    return SocrataDatasetConfig(
        name="cases_sc",
        source="socrata",
        domain="data.example.org",
        table="cases_sc",
        start_year=2018,
        end_year=2021,
        dataset_id="case-s001",
        year_column="opened",
        columns={"case_id": "text", "opened": "timestamp", "kind": "text"},
        **fields,
    )


@pytest.fixture
def socrata(warehouse_url, tmp_path, monkeypatch):
    with SocrataStandIn() as server:
        monkeypatch.setenv("DATABASE_URL", warehouse_url)
        monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "staging"))
        monkeypatch.setenv("SOCRATA_BASE_URL", server.base_url)
        monkeypatch.delenv("SOCRATA_APP_TOKEN", raising=False)
        server.add_dataset("case-s001", socrata_rows(2019, 40), SOCRATA_COLUMNS)
        yield server, build_resources()


def test_a_socrata_publisher_adds_a_column_and_add_columns_loads_it(
    socrata, instance, warehouse_url, tally
):
    server, resources = socrata
    assets = dataset_assets(socrata_config(on_schema_change="add_columns"))
    first = run(assets, 2019, resources, instance)
    assert first.success, failure_text(first)
    # the publisher adds "priority"; the 2020 rows carry it
    rows = socrata_rows(2019, 40) + socrata_rows(2020, 25, priority="high")
    server.add_dataset("case-s001", rows, {**SOCRATA_COLUMNS, "priority": "text"})
    result = run(assets, 2020, resources, instance)
    assert result.success, failure_text(result)
    tally.add("schema_changes", 1)
    assert counts_by_year(warehouse_url, "cases_sc", "priority") == {2019: (40, 0), 2020: (25, 25)}


def test_a_socrata_column_declared_but_gone_fails_naming_it(
    socrata, instance, warehouse_url, tally
):
    server, resources = socrata
    assets = dataset_assets(socrata_config())
    first = run(assets, 2019, resources, instance)
    assert first.success, failure_text(first)
    renamed = [
        {"case_id": r["case_id"], "opened": r["opened"], "category": r["kind"]}
        for r in socrata_rows(2020, 5)
    ]
    columns = {"case_id": "text", "opened": "floating_timestamp", "category": "text"}
    server.add_dataset("case-s001", renamed, columns)
    result = run(assets, 2020, resources, instance)
    tally.add("bad_inputs", 1)
    assert not result.success
    assert "declared columns the portal no longer publishes: kind" in failure_text(result)
    assert counts_by_year(warehouse_url, "cases_sc", "kind") == {2019: (40, 40)}
