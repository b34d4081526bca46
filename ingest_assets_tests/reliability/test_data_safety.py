"""Data safety (#17): no silent wipe or shrink of a year, empty years made visible, content kept
byte for byte. Each refusal is counted as a bad input on the reliability line; rows a refusal
should have kept but did not count as lost.

The table of cases and their errors is in docs/reliability.md; keep the two in step.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

from ingest_assets.automation import notifications
from ingest_assets.dataset import EMPTY_YEAR_CHECK, RECONCILE_CHECK, dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.files.config import FilesDatasetConfig
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.socrata.config import SocrataDatasetConfig
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets.warehouse.shrink import CONFIRM_ENV, CONFIRM_TAG
from ingest_assets_tests.reliability.faults import year_checksum
from ingest_assets_tests.support.pipeline import nass_resources

pytestmark = pytest.mark.reliability

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
YEAR = 2021
FILE_COLUMNS = {"id": "text", "note": "text", "amount": "double precision"}


def files_entry(folder: Path, **fields) -> dict:
    return {
        "source": "files",
        "table": "safe_rows",
        "start_year": 2019,
        "end_year": 2023,
        "path": f"{folder}/*.csv",
        "year_column": "year",
        "columns": FILE_COLUMNS,
        "key": ["id"],
        **fields,
    }


def files_config(folder: Path, **fields) -> FilesDatasetConfig:
    return FilesDatasetConfig(name="files_safe", **files_entry(folder, **fields))


def write_years(folder: Path, rows_per_year: dict[int, int]) -> None:
    with (folder / "data.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["year", "id", "note", "amount"])
        for year, rows in rows_per_year.items():
            writer.writerows([year, f"{year}-{i}", f"note {i}", i * 0.5] for i in range(rows))


def materialize(instance, config, year=YEAR, resources=None, **kwargs):
    return dg.materialize(
        dataset_assets(config),
        partition_key=str(year),
        resources=resources or build_resources(),
        instance=instance,
        raise_on_error=False,
        **kwargs,
    )


def check_named(result, name: str) -> dg.AssetCheckEvaluation:
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == name]
    return check


def ledger_rows(url: str, dataset: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT status, rows_before, rows_loaded, shrink_confirmed_by "
            "FROM ingest_meta.load_ledger WHERE dataset = %s ORDER BY id",
            (dataset,),
        ).fetchall()


def assert_refused(result, url, table, before, dataset, rows_after, tally) -> None:
    """The shrink was refused naming dataset, year, both counts and the threshold; year kept."""
    after = year_checksum(url, table, YEAR)
    tally.add("rows_lost", max(0, before[0] - after[0]))
    assert not result.success
    check = check_named(result, RECONCILE_CHECK)
    assert not check.passed
    assert f"dataset {dataset}, year {YEAR}" in check.description
    assert f"from {before[0]:,} rows to {rows_after:,} rows" in check.description
    assert "max_shrink 0.5" in check.description, check.description
    assert after == before
    tally.add("bad_inputs")


# -- shrink guard, files ----------------------------------------------------------------------
@pytest.mark.parametrize("rows_after", [0, 10])
def test_files_shrink_is_refused_until_confirmed_by_run_tag(
    instance, files_folder, warehouse_url, tally, rows_after
):
    config = files_config(files_folder)
    write_years(files_folder, {YEAR: 1_000})
    assert materialize(instance, config).success
    before = year_checksum(warehouse_url, "safe_rows", YEAR)
    assert before[0] == 1_000
    write_years(files_folder, {YEAR: rows_after, 2022: 5})  # the file replaced by a stub
    refused = materialize(instance, config)
    assert_refused(refused, warehouse_url, "safe_rows", before, "files_safe", rows_after, tally)

    tags = {CONFIRM_TAG: "true", "dagster/user": "ops@example.org"}
    confirmed = materialize(instance, config, tags=tags)
    assert confirmed.success
    assert year_checksum(warehouse_url, "safe_rows", YEAR)[0] == rows_after
    assert ledger_rows(warehouse_url, "files_safe") == [
        ("loaded", 0, 1_000, None),
        ("failed", None, rows_after, None),
        ("loaded", 1_000, rows_after, f"tag {CONFIRM_TAG} by ops@example.org"),
    ]


def test_a_shrink_within_max_shrink_and_a_first_empty_load_pass(
    instance, files_folder, warehouse_url
):
    config = files_config(files_folder, max_shrink=0.25)
    write_years(files_folder, {YEAR: 0, 2022: 1})
    assert materialize(instance, config).success  # first load of an empty year: never blocked
    write_years(files_folder, {YEAR: 1_000})
    assert materialize(instance, config).success
    write_years(files_folder, {YEAR: 760})  # 24% fewer
    assert materialize(instance, config).success
    write_years(files_folder, {YEAR: 500})  # 34% fewer than 760
    refused = materialize(instance, config)
    assert not refused.success
    assert "max_shrink 0.25" in check_named(refused, RECONCILE_CHECK).description
    assert year_checksum(warehouse_url, "safe_rows", YEAR)[0] == 760


def _cli(variables: dict[str, str]) -> subprocess.CompletedProcess:
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "ingest_assets.definitions"]
    command += ["--select", "key:files_safe/raw_pages+", "--partition", str(YEAR)]
    return subprocess.run(
        command, env=variables, cwd=PROJECT, capture_output=True, text=True, timeout=300
    )


def test_files_shrink_through_the_cli_is_refused_then_confirmed_by_variable(
    files_folder, warehouse_url, tmp_path, tally
):
    catalog = tmp_path / "datasets.yaml"
    catalog.write_text(yaml.safe_dump({"datasets": {"files_safe": files_entry(files_folder)}}))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    cli_env = {
        **os.environ,
        "INGEST_DATASETS": str(catalog),
        "DAGSTER_HOME": str(home),
        "USER": "cli-operator",
    }
    write_years(files_folder, {YEAR: 1_000})
    first = _cli(cli_env)
    assert first.returncode == 0, first.stderr[-3000:]
    before = year_checksum(warehouse_url, "safe_rows", YEAR)
    assert before[0] == 1_000

    write_years(files_folder, {YEAR: 10})
    refused = _cli(cli_env)
    after = year_checksum(warehouse_url, "safe_rows", YEAR)
    tally.add("rows_lost", max(0, before[0] - after[0]))
    assert refused.returncode != 0
    assert "from 1,000 rows to 10 rows" in refused.stdout + refused.stderr
    assert after == before
    tally.add("bad_inputs")

    confirmed = _cli({**cli_env, CONFIRM_ENV: f"files_safe/{YEAR}"})
    assert confirmed.returncode == 0, confirmed.stderr[-3000:]
    assert year_checksum(warehouse_url, "safe_rows", YEAR)[0] == 10
    last = ledger_rows(warehouse_url, "files_safe")[-1]
    assert last[:3] == ("loaded", 1_000, 10) and last[3].startswith(f"cli {CONFIRM_ENV} by ")


# -- shrink guard, NASS and Socrata -------------------------------------------------------------
NASS = NassDatasetConfig(
    name="nass_safe",
    source="nass",
    table="nass_safe_facts",
    start_year=2018,
    query={"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "COUNTY"},
)


def test_nass_shrink_is_refused_until_confirmed(
    instance, warehouse_url, tmp_path, monkeypatch, tally
):
    data = NassDataset(records_per_year={YEAR: 1_000})
    with NassStandIn(data) as standin:
        resources = nass_resources(monkeypatch, standin, warehouse_url, tmp_path / "staging")
        assert materialize(instance, NASS, resources=resources).success
        before = year_checksum(warehouse_url, "nass_safe_facts", YEAR)
        assert before[0] == 1_000
        for rows_after in (0, 10):
            data.revise(YEAR, records=rows_after)
            refused = materialize(instance, NASS, resources=resources)
            assert_refused(
                refused, warehouse_url, "nass_safe_facts", before, "nass_safe", rows_after, tally
            )
        assert materialize(instance, NASS, resources=resources, tags={CONFIRM_TAG: "true"}).success
        assert year_checksum(warehouse_url, "nass_safe_facts", YEAR)[0] == 10


PETS_ID = "safe-0001"
SOCRATA_COLUMNS = {"issued": "calendar_date", "license": "text", "name": "text"}
SOCRATA = SocrataDatasetConfig(
    name="socrata_safe",
    source="socrata",
    domain="data.example.gov",
    table="socrata_safe_rows",
    start_year=2020,
    end_year=2022,
    dataset_id=PETS_ID,
    year_column="issued",
    columns={"issued": "date", "license": "text", "name": "text"},
    key=["license"],
    page_size=400,
)


def socrata_rows(n: int, name=lambda i: f"pet {i}") -> list[dict]:
    return [
        {
            "issued": f"{YEAR}-0{1 + i % 9}-1{i % 10}T00:00:00.000",
            "license": f"L{i}",
            "name": name(i),
        }
        for i in range(n)
    ]


def test_socrata_shrink_is_refused_until_confirmed(instance, socrata, warehouse_url, tally):
    socrata.add_dataset(PETS_ID, socrata_rows(1_000), SOCRATA_COLUMNS)
    assert materialize(instance, SOCRATA).success
    before = year_checksum(warehouse_url, "socrata_safe_rows", YEAR)
    assert before[0] == 1_000
    for rows_after in (0, 10):
        socrata.replace_rows(PETS_ID, socrata_rows(rows_after))
        refused = materialize(instance, SOCRATA)
        assert_refused(
            refused, warehouse_url, "socrata_safe_rows", before, "socrata_safe", rows_after, tally
        )
    assert materialize(instance, SOCRATA, tags={CONFIRM_TAG: "true"}).success
    assert year_checksum(warehouse_url, "socrata_safe_rows", YEAR)[0] == 10


# -- empty and suspicious years -----------------------------------------------------------------
def status_context(instance, result, event, sensor):
    return dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=event,
    )


def test_an_empty_year_between_years_with_data_is_flagged_and_said_plainly(
    instance, files_folder, tally
):
    config = files_config(files_folder)
    write_years(files_folder, {2020: 5, 2022: 7})
    for year in (2020, 2022):
        loaded = materialize(instance, config, year=year)
        assert loaded.success and check_named(loaded, EMPTY_YEAR_CHECK).passed
    result = materialize(instance, config, year=YEAR)
    warning = check_named(result, EMPTY_YEAR_CHECK)
    assert result.success  # a warning, not a refusal
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    assert warning.description == (
        f"dataset files_safe, year {YEAR}: 0 rows while 2020 has 5 and 2022 has 7"
    )
    sensor = notifications.notify_run_success
    text = notifications.success_text(
        status_context(instance, result, result.get_run_success_event(), sensor)
    )
    assert f"files_safe/facts {YEAR}: 0 rows — the year is empty" in text
    assert "0 rows while 2020 has 5" in text
    tally.add("bad_inputs")


def test_a_query_that_finds_nothing_in_any_year_is_flagged_naming_the_filters(
    instance, warehouse_url, tmp_path, monkeypatch, tally
):
    query = {"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "STATE"}
    config = NASS.model_copy(update={"query": query})  # the stand-in, like NASS here, has counties
    with NassStandIn(NassDataset(records_per_year={2019: 300, 2020: 300})) as standin:
        resources = nass_resources(monkeypatch, standin, warehouse_url, tmp_path / "staging")
        results = [materialize(instance, config, year, resources) for year in (2019, 2020)]
    assert all(r.success for r in results)
    warning = check_named(results[-1], EMPTY_YEAR_CHECK)
    assert not warning.passed
    assert "dataset nass_safe: 0 rows in every year loaded (2019, 2020)" in warning.description
    assert "likely a query mistake" in warning.description
    assert "agg_level_desc: STATE" in warning.description, warning.description
    tally.add("bad_inputs")


def test_a_refused_shrink_is_said_in_the_failure_notification(instance, files_folder):
    config = files_config(files_folder)
    write_years(files_folder, {YEAR: 40})
    assert materialize(instance, config).success
    write_years(files_folder, {YEAR: 0, 2022: 1})
    result = materialize(instance, config)
    assert not result.success
    sensor = notifications.notify_run_failure
    context = status_context(instance, result, result.get_run_failure_event(), sensor)
    text = notifications.failure_text(context.for_run_failure())
    assert "files_safe/facts check row_counts_reconcile" in text
    assert "from 40 rows to 0 rows" in text
