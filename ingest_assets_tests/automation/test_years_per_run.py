"""Backfill runs of several years (the catalog's ``years_per_run``), launched as the UI does.

A files dataset of five years with ``years_per_run: 2`` is backfilled through ``dagster dev``'s
GraphQL ``launchPartitionBackfill``: the daemon must make three runs (2 + 2 + 1 years), each
year must land with its own row count, ledger row and materialization figures. A second
backfill of two years, one of which would lose most of its rows, must commit the other year,
leave the shrinking one as it was, and fail naming it. With ``years_per_run: all`` the CI
command takes a range: ``dagster asset materialize --partition-range``; there a year whose load
raises (a stray table where its partition goes) must fail its check and the run, and not stop
the other year.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from benchmarks.peers import files_entry, write_year
from ingest_assets.dataset.facts import RECONCILE_CHECK
from ingest_assets_tests.conftest import create_database
from ingest_assets_tests.support.graphql import (
    BACKFILL_DONE,
    backfill_status,
    launch_backfill,
    wait_for_code,
)
from ingest_assets_tests.support.pipeline import cli_env, run_dagster
from ingest_assets_tests.ui.dagster_dev import dagster_dev

pytestmark = pytest.mark.slow

DATASET = "years_per_run"
ROWS = {2016: 100, 2017: 200, 2018: 300, 2019: 400, 2020: 500}
ASSETS = [[DATASET, step] for step in ("raw_pages", "cleaned", "facts")]


def backfill(url: str, years: list[int], timeout: float = 600.0) -> tuple[str, str]:
    """Launch a backfill of ``years`` of the dataset's three assets; its id and final status."""
    backfill_id = launch_backfill(url, [str(y) for y in years], ASSETS)
    deadline = time.monotonic() + timeout
    while (status := backfill_status(url, backfill_id)) not in BACKFILL_DONE:
        assert time.monotonic() < deadline, f"backfill {backfill_id} still {status}"
        time.sleep(1.0)
    return backfill_id, status


def rows_per_year(warehouse: str) -> dict[int, int]:
    with psycopg.connect(warehouse) as conn:
        query = f"SELECT year, count(*) FROM {DATASET} GROUP BY year"
        return dict(conn.execute(query).fetchall())


def ledger(warehouse: str) -> list[tuple[int, str, int | None]]:
    with psycopg.connect(warehouse) as conn:
        return conn.execute(
            "SELECT year, status, rows_loaded FROM ingest_meta.load_ledger WHERE dataset = %s "
            "ORDER BY id",
            (DATASET,),
        ).fetchall()


def test_a_backfill_takes_years_per_run_and_each_year_stands_alone(
    pg_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    for year, rows in ROWS.items():
        write_year(folder / f"{year}.csv.gz", rows, year)
    entry = files_entry(DATASET, folder, min(ROWS), max(ROWS)) + "    years_per_run: 2\n"
    (tmp_path / "datasets.yaml").write_text("datasets:\n" + entry)
    warehouse = create_database(pg_admin_url, "years_per_run_wh")
    storage = create_database(pg_admin_url, "years_per_run_dagster")
    env = {
        **os.environ,
        "DAGSTER_PG_URL": storage,
        "DATABASE_URL": warehouse,
        "INGEST_DATASETS": str(tmp_path / "datasets.yaml"),
        "INGEST_STAGING": str(tmp_path / "staging"),
    }
    home = tmp_path / "dagster_home"
    with dagster_dev(env, home) as url:
        wait_for_code(url)
        first, status = backfill(url, sorted(ROWS))
        assert status == "COMPLETED_SUCCESS"
        assert rows_per_year(warehouse) == ROWS
        assert [(y, s) for y, s, _ in ledger(warehouse)] == [(y, "loaded") for y in sorted(ROWS)]

        write_year(folder / "2019.csv.gz", 10, 2019)  # would remove 390 of 400 rows
        write_year(folder / "2020.csv.gz", 600, 2020)
        second, status = backfill(url, [2019, 2020])
        assert status == "COMPLETED_FAILED"  # 2019 is not materialized: it did not commit
        assert rows_per_year(warehouse) == {**ROWS, 2020: 600}  # 2019 kept, 2020 committed
        assert [row[:2] for row in ledger(warehouse)[-2:]] == [(2019, "failed"), (2020, "loaded")]

    monkeypatch.setenv("DAGSTER_PG_URL", storage)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = {
            backfill_id: instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            for backfill_id in (first, second)
        }
        assert [len(runs[first]), len(runs[second])] == [3, 1]
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs[first])
        assert runs[second][0].status == dg.DagsterRunStatus.FAILURE
        facts = dg.AssetKey([DATASET, "facts"])
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=facts), limit=20
        ).records
        figures = {}
        for record in reversed(records):  # oldest first: the latest per year wins
            event = record.asset_materialization
            figures[int(event.partition)] = event.metadata["rows_in_year"].value
        assert figures == {**ROWS, 2020: 600}  # each year's own figure, not the run's total
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(facts, RECONCILE_CHECK), limit=10
        )
        latest = checks[0].event.dagster_event.asset_check_evaluation_data
    assert not latest.passed
    assert latest.metadata["years_failed"].value == "2019"
    assert f"{DATASET}, year 2019: the load would shrink" in latest.description
    assert "2020: 600 rows loaded" in latest.description


def test_years_per_run_all_lets_the_cli_materialize_a_range_in_one_run(
    tmp_path: Path, dagster_pg_url: str, warehouse_url: str
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    for year in (2019, 2020):
        write_year(folder / f"{year}.csv.gz", ROWS[year], year)
    entry = files_entry(DATASET, folder, 2019, 2020) + "    years_per_run: all\n"
    env = cli_env(tmp_path, "datasets:\n" + entry, dagster_pg_url, warehouse_url)
    select = f"key:{DATASET}/raw_pages+"
    done = run_dagster(
        env, "asset", "materialize", "--select", select, "--partition-range", "2019...2020"
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    line = rf"- (\S+) - {DATASET}__facts - {DATASET} year (\d+): (\d+) rows loaded"
    loaded = re.findall(line, output)
    assert [(year, rows) for _, year, rows in loaded] == [("2019", "400"), ("2020", "500")]
    assert len({run_id for run_id, _, _ in loaded}) == 1  # one run
    assert {y: n for y, n in rows_per_year(warehouse_url).items() if y >= 2019} == {
        2019: 400,
        2020: 500,
    }


def test_a_year_whose_load_raises_is_named_and_the_runs_other_years_commit(
    tmp_path: Path, dagster_pg_url: str, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "years_per_run_raises"
    folder = tmp_path / "files"
    folder.mkdir()
    for year in (2019, 2020):
        write_year(folder / f"{year}.csv.gz", ROWS[year], year)
    with psycopg.connect(warehouse_url) as conn:  # a stray table where 2019's partition goes
        conn.execute(f"DROP TABLE IF EXISTS {name}, {name}_y2019")
        conn.execute(f"CREATE TABLE {name}_y2019 (note text)")
    entry = files_entry(name, folder, 2019, 2020) + "    years_per_run: all\n"
    env = cli_env(tmp_path, "datasets:\n" + entry, dagster_pg_url, warehouse_url)
    done = run_dagster(
        env, "asset", "materialize", "--select", f"key:{name}/raw_pages+",
        "--partition-range", "2019...2020",
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert f"{name} year 2019: " in output and "is not a partition of" in output
    with psycopg.connect(warehouse_url) as conn:
        loaded = conn.execute(f"SELECT year, count(*) FROM {name} GROUP BY year").fetchall()
    assert loaded == [(2020, 500)]  # 2019 rolled back, 2020 committed in the same run

    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey([name, "facts"]), RECONCILE_CHECK), limit=1
        )
        latest = checks[0].event.dagster_event.asset_check_evaluation_data
        facts = dg.AssetRecordsFilter(asset_key=dg.AssetKey([name, "facts"]))
        partitions = [r.asset_materialization.partition for r in
                      instance.fetch_materializations(facts, limit=5).records]  # fmt: skip
    assert not latest.passed
    assert latest.metadata["years"].value == "2019, 2020"
    assert latest.metadata["years_failed"].value == "2019"
    assert "2020: 500 rows loaded" in latest.description
    assert partitions == ["2020"]  # only the committed year is materialized
