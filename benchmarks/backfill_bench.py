"""The backfill benchmark: N small years of a files dataset backfilled as the UI launches it,
against Sling loading the same N files.

``python benchmarks/backfill_bench.py --years 25 --rows 20000 [--years-per-run N] --out FILE``:

- writes one typed gzip CSV per year (``benchmarks/peers.py``'s data), ``--rows`` rows each;
- **Sling**: one ``sling run`` process per file, one after another, into its own table (what a
  per-year job with Sling would do), summed; each table's rows are checked;
- **ingest_assets**: ``dagster dev`` (webserver + daemon) on a catalog holding that dataset;
  GraphQL ``launchPartitionBackfill`` of every year on its three assets, as the UI's backfill
  dialog sends it, then polled until the backfill is done. Timed from the launch to the last
  run's end (``dagster dev``'s own start-up is reported apart). Every year is checked: its rows
  in the table and its ledger row. ``--years-per-run`` sets the catalog's ``years_per_run``
  (default 1: a run per year); the number of runs the backfill made is reported.

Runs share the machine with the daemon's concurrency limits of ``dagster.yaml`` (at most three
backfill runs at once). Record the load average beside the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # run as a script from a checkout, installed or not

from benchmarks.partition_bench import database_urls  # noqa: E402
from benchmarks.peers import (  # noqa: E402
    DATASET,
    STEPS,
    catalog_yaml,
    count_rows,
    sling_binary,
    sling_url,
    timed,
    write_year,
)

LAST_YEAR = 2020


def sling_years(folder: Path, years: list[int], rows: int, warehouse: str, work: Path) -> float:
    """Seconds of one Sling process per year's file; each table must hold every row."""
    seconds = 0.0
    env = {**os.environ, "SLING_HOME_DIR": str(work)}
    for year in years:
        table = f"bench_sling_{year}"
        command = [
            sling_binary(), "run", "--src-stream", f"file://{folder / f'{year}.csv.gz'}",
            "--tgt-conn", sling_url(warehouse), "--tgt-object", f"public.{table}",
            "--mode", "full-refresh",
        ]  # fmt: skip
        seconds += timed(command, env, f"Sling, year {year}")[0]
        loaded = count_rows(warehouse, table)
        with psycopg.connect(warehouse, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {table}")
        if loaded != rows:
            raise SystemExit(f"backfill_bench: Sling loaded {loaded:,} rows of {rows:,} ({year})")
    return seconds


def fresh_instance_url(name: str = "backfill_bench_dagster") -> str:
    """``DAGSTER_PG_URL`` if set, else a new embedded database ``name``: the backfill's runs are
    then the only runs on the instance (the daemon would otherwise resume its old work)."""
    if os.environ.get("DAGSTER_PG_URL"):
        return os.environ["DAGSTER_PG_URL"]
    from psycopg import sql

    from ingest_assets.embedded import embedded_url

    admin = embedded_url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    return "postgresql+psycopg2://" + embedded_url(name).removeprefix("postgresql://")


def ledger_loads(warehouse: str, after_id: int) -> tuple[int, list[tuple[str, int, int]]]:
    """(the ledger's highest id, the (dataset, year, rows loaded) of every load with an id above
    ``after_id``; a failed load's row has no rows)."""
    with psycopg.connect(warehouse) as conn:
        exists = conn.execute("SELECT to_regclass('ingest_meta.load_ledger')").fetchone()[0]
        if exists is None:
            return 0, []
        rows = conn.execute(
            "SELECT dataset, year, rows_loaded FROM ingest_meta.load_ledger "
            "WHERE id > %s AND status = 'loaded'",
            (after_id,),
        ).fetchall()
        top = conn.execute("SELECT coalesce(max(id), 0) FROM ingest_meta.load_ledger").fetchone()
    return top[0], sorted(rows)


def runs_that_loaded(warehouse: str, after_id: int) -> int:
    """How many runs the loads after ``after_id`` came from (a run may load several years)."""
    with psycopg.connect(warehouse) as conn:
        query = "SELECT count(DISTINCT run_id) FROM ingest_meta.load_ledger WHERE id > %s"
        return conn.execute(query, (after_id,)).fetchone()[0]


def backfill_years(env: dict[str, str], home: Path, years: list[int]) -> tuple[float, float]:
    """(seconds for dagster dev to load the code, seconds from launch to the backfill's end)."""
    from ingest_assets_tests.support.graphql import (
        BACKFILL_DONE,
        BACKFILL_SUCCEEDED,
        backfill_status,
        launch_backfill,
        wait_for_code,
    )
    from ingest_assets_tests.ui.dagster_dev import dagster_dev

    started = time.monotonic()
    with dagster_dev(env, home) as url:
        wait_for_code(url)
        up = time.monotonic() - started
        launched_at = time.monotonic()
        backfill = launch_backfill(url, [str(y) for y in years], [[DATASET, s] for s in STEPS])
        status = None
        while time.monotonic() - launched_at < 1800:
            status = backfill_status(url, backfill)
            if status in BACKFILL_DONE:
                break
            time.sleep(0.5)
        seconds = time.monotonic() - launched_at
        if status not in BACKFILL_SUCCEEDED:
            log = (home / "dagster_dev.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"backfill_bench: the backfill ended {status}:\n{log}")
    return up, seconds


def benchmark(n_years: int, rows: int, years_per_run: int = 1) -> dict[str, Any]:
    warehouse, _ = database_urls()
    years = list(range(LAST_YEAR - n_years + 1, LAST_YEAR + 1))
    work = Path(tempfile.mkdtemp(prefix="backfill_bench_"))
    try:
        folder = work / "dump"
        folder.mkdir()
        for year in years:
            write_year(folder / f"{year}.csv.gz", rows, year)
        catalog = catalog_yaml(folder, years[0], years[-1])
        (work / "datasets.yaml").write_text(catalog + f"    years_per_run: {years_per_run}\n")
        load_at_start = os.getloadavg()[0]
        sling_seconds = sling_years(folder, years, rows, warehouse, work)
        env = {
            **os.environ,
            "DAGSTER_PG_URL": fresh_instance_url(),
            "DATABASE_URL": warehouse,
            "INGEST_DATASETS": str(work / "datasets.yaml"),
            "INGEST_STAGING": str(work / "staging"),
        }
        env.pop("INGEST_EXECUTOR", None)  # the default, as a user's dagster dev runs it
        last_id, _ = ledger_loads(warehouse, 0)
        up, backfill_seconds = backfill_years(env, work / "dagster_home", years)
        _, loads = ledger_loads(warehouse, last_id)
        loaded_years = [year for dataset, year, _ in loads if dataset == DATASET]
        runs = runs_that_loaded(warehouse, last_id)
        with psycopg.connect(warehouse) as conn:
            per_year = dict(
                conn.execute(
                    "SELECT year, count(*) FROM bench_files WHERE year BETWEEN %s AND %s "
                    "GROUP BY year",
                    (years[0], years[-1]),
                ).fetchall()
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if per_year != dict.fromkeys(years, rows) or loaded_years != years:
        raise SystemExit(f"backfill_bench: rows per year {per_year}, ledger years {loaded_years}")
    return {
        "years": n_years,
        "rows_per_year": rows,
        "years_per_run": years_per_run,
        "runs": runs,
        "sling_seconds": round(sling_seconds, 2),
        "backfill_seconds": round(backfill_seconds, 2),
        "backfill_vs_sling": round(backfill_seconds / sling_seconds, 2),
        "dagster_dev_up_seconds": round(up, 2),
        "load_average_1m": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=25)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--years-per-run", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = benchmark(args.years, args.rows, args.years_per_run)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.years} years of {args.rows:,} rows: Sling {result['sling_seconds']:.1f} s, "
        f"ingest_assets backfill {result['backfill_seconds']:.1f} s in {result['runs']} runs "
        f"({result['backfill_vs_sling']:.1f}x Sling's time; dagster dev up in "
        f"{result['dagster_dev_up_seconds']:.0f} s); 1-minute load {result['load_average_1m']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
