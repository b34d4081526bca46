"""The bulk-file benchmark: a multi-year Quick Stats bulk file loaded whole, vs one pass + COPY.

``python benchmarks/bulk_bench.py --rows N --years Y --out FILE``:

1. generates a crops bulk file of N rows over Y years (the bulk stand-in, from the records the
   API stand-in serves) and serves it from a thread of this process, which counts every GET;
2. **(a) one pass** over the file, the reference: a child process that GETs it and streams the
   body through pyarrow's gzip and CSV readers (all fields text, as the project reads them),
   counting the rows; nothing written;
3. **(c) the whole-history load** through the real entry point, one process after another:
   ``dagster asset materialize --select key:<ds>/bulk_file`` (download, one pass, split by
   year), then for every year ``dagster asset materialize --select 'key:<ds>/raw_pages+'
   --partition Y`` (stage, clean, COPY, reconcile, swap, checks); with ``--one-run`` the catalog
   sets ``years_per_run: all`` and one ``--partition-range FIRST...LAST`` process takes every
   year, as a one-run backfill would. Each process is timed from
   here and its resident memory sampled (psutil every 0.1 s, plus its ``ru_maxrss``). Every
   year's rows must equal the count the pass recorded, and its ledger row must name the file
   and ETag; the stand-in must have served the file once (one GET, its size in bytes);
4. **(b) a plain COPY** of all kept rows: the loaded table exported to a CSV file, then one
   psycopg ``COPY`` of it into an unindexed table like it (``partition_bench.plain_copy``).

Prints the seconds of (a), (b), (c), the ratio c / (a + b), the peak RSS of every process and
the GETs; writes them as JSON to FILE. Dagster's own run time (``RUN_START`` → end) is
reported apart from each process's wall time, so the per-process fixed cost is visible. The
warehouse is ``DATABASE_URL`` or the embedded server's ``ingest_bench`` database; Dagster's
storage ``DAGSTER_PG_URL`` or embedded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # run as a script from a checkout, installed or not

from benchmarks.partition_bench import RssSampler, database_urls, plain_copy  # noqa: E402
from ingest_assets_tests.support.pipeline import DAGSTER, cli_env  # noqa: E402

DATASET = "bench_bulk"
TABLE = "bench_bulk"
LAST_YEAR = 2025
QUERY = {"source_desc": "SURVEY", "agg_level_desc": "COUNTY"}  # docs/catalog.md's example


# -- (a) the reference pass (child process) ------------------------------------------------------
def reference_pass(listing_url: str) -> int:
    """GET the listed crops file and stream it through gzip and CSV parsing; the rows read."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import requests

    from ingest_assets.kinds.nass_bulk.layout import HEADERS
    from ingest_assets.kinds.nass_bulk.remote import current_file

    with requests.Session() as session:
        remote = current_file(session, listing_url, "crops", timeout=60)
        with session.get(remote.url, stream=True, timeout=60) as response:
            response.raise_for_status()
            body = pa.PythonFile(response.raw, mode="r")
            reader = pacsv.open_csv(
                pa.CompressedInputStream(body, "gzip"),
                parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(HEADERS, pa.string()), strings_can_be_null=False
                ),
            )
            return sum(batch.num_rows for batch in reader)


# -- timing and sampling whole processes ---------------------------------------------------------
def measured(command: list[str], env: dict[str, str], label: str) -> dict[str, Any]:
    """Run ``command`` to its end: its wall seconds, peak RSS (MB) and stdout; fails loudly.

    The peak is the larger of psutil's samples and the reaped child's own ``ru_maxrss``.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        child = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=err)
        sampler = RssSampler(child.pid)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        peak = max(sampler.stop(), usage.ru_maxrss * 1024)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode:
        raise SystemExit(
            f"bulk_bench: {label} failed (exit {child.returncode}):\n"
            f"{stdout[-1500:]}{stderr[-3000:]}"
        )
    return {"seconds": seconds, "peak_rss_mb": round(peak / 2**20, 1), "stdout": stdout}


def measured_all(
    commands: list[tuple[str, list[str]]], env: dict[str, str], concurrency: int
) -> tuple[float, dict[str, dict[str, Any]]]:
    """Run the commands, ``concurrency`` at a time (as a backfill runs its runs); (wall seconds
    of them all, each one's figures)."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {label: pool.submit(measured, cmd, env, label) for label, cmd in commands}
        figures = {label: future.result() for label, future in futures.items()}
    return time.monotonic() - started, figures


# -- checks and figures from the warehouse and the instance ---------------------------------------
def loaded_years(warehouse: str) -> dict[int, int]:
    with psycopg.connect(warehouse) as conn:
        query = sql.SQL("SELECT year, count(*) FROM {} GROUP BY year ORDER BY year")
        return dict(conn.execute(query.format(sql.Identifier(TABLE))).fetchall())


def ledger(warehouse: str) -> list[tuple[int, int, int, str]]:
    with psycopg.connect(warehouse) as conn:
        return conn.execute(
            "SELECT year, source_count, rows_loaded, source_version FROM ingest_meta.load_ledger "
            "WHERE dataset = %s AND status = 'loaded' ORDER BY year",
            (DATASET,),
        ).fetchall()


def export_all(warehouse: str, path: Path) -> None:
    """Every loaded row as a CSV file with a header, as ``partition_bench.plain_copy`` reads it."""
    query = sql.SQL("COPY (SELECT * FROM {}) TO STDOUT (FORMAT csv, HEADER true)").format(
        sql.Identifier(TABLE)
    )
    with (
        psycopg.connect(warehouse) as conn,
        path.open("wb") as sink,
        conn.cursor() as cur,
        cur.copy(query) as copy,
    ):
        for block in copy:
            sink.write(block)


def dagster_seconds(env: dict[str, str], since: float) -> tuple[list[float], dict[str, float]]:
    """Of the runs created after ``since``: each run's seconds (start → end as Dagster recorded
    them), and the seconds of each step summed over the runs (``bulk_file``, ``raw_pages`` …)."""
    from collections import Counter
    from datetime import UTC, datetime

    import dagster as dg

    os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "DAGSTER_PG_URL")})
    after = datetime.fromtimestamp(since, UTC)
    steps: Counter[str] = Counter()
    with dg.DagsterInstance.get() as instance:
        runs = list(reversed(instance.get_runs(dg.RunsFilter(created_after=after))))
        stats = [instance.get_run_stats(run.run_id) for run in runs]
        for run in runs:
            for step in instance.get_run_step_stats(run.run_id):
                if step.start_time and step.end_time:
                    steps[step.step_key.removeprefix(f"{DATASET}__")] += (
                        step.end_time - step.start_time
                    )
    seconds = [s.end_time - s.start_time for s in stats if s.start_time and s.end_time]
    return seconds, {k: round(v, 3) for k, v in steps.items()}


# -- orchestration -------------------------------------------------------------------------------
def catalog_yaml(first_year: int, one_run: bool = False) -> str:
    query = ", ".join(f"{k}: {v}" for k, v in QUERY.items())
    return (
        f"datasets:\n  {DATASET}:\n    source: nass_bulk\n    file: crops\n"
        f"    table: {TABLE}\n    start_year: {first_year}\n    end_year: {LAST_YEAR}\n"
        f"    query: {{{query}}}\n" + ("    years_per_run: all\n" if one_run else "")
    )


def year_commands(years: list[int], one_run: bool) -> list[tuple[str, list[str]]]:
    """The processes that load the years: one per year, or one for the range."""
    select = ("--select", f"key:{DATASET}/raw_pages+")
    if one_run:
        span = f"{years[0]}...{years[-1]}"
        return [(span, materialize(*select, "--partition-range", span))]
    return [(str(year), materialize(*select, "--partition", str(year))) for year in years]


def materialize(*args: str) -> list[str]:
    return [DAGSTER, "asset", "materialize", "-m", "ingest_assets.definitions", *args]


def forget_dataset(warehouse: str) -> None:
    """Drop the benchmark's table and ledger rows, so every sitting loads into nothing."""
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(TABLE)))
        if conn.execute("SELECT to_regclass('ingest_meta.load_ledger')").fetchone()[0]:
            conn.execute("DELETE FROM ingest_meta.load_ledger WHERE dataset = %s", (DATASET,))


def benchmark(rows: int, years: int, concurrency: int, one_run: bool = False) -> dict[str, Any]:
    from ingest_assets.standin.nass_bulk_server import NassBulkStandIn
    from ingest_assets.standin.nass_data import NassDataset

    warehouse, dagster_url = database_urls()
    first_year = LAST_YEAR - years + 1
    per_year = {first_year + i: rows // years + (i < rows % years) for i in range(years)}
    work = Path(tempfile.mkdtemp(prefix="bulk_bench_"))
    forget_dataset(warehouse)
    started = time.monotonic()
    dataset = NassDataset(records_per_year=per_year, default_records=0)
    with NassBulkStandIn(dataset) as standin:
        generate_seconds = time.monotonic() - started
        published = standin.published
        try:
            catalog = catalog_yaml(first_year, one_run)
            env = cli_env(work, catalog, dagster_url, warehouse, NASS_BULK_URL=standin.listing_url)
            reference = measured(
                [sys.executable, __file__, "--reference-pass", standin.listing_url, "--out", "-"],
                env,
                "the reference pass",
            )
            if int(reference["stdout"].split()[-1]) != rows:
                raise SystemExit(f"bulk_bench: the reference pass read {reference['stdout']!r}")
            standin.reset_stats()
            runs_since = time.time()
            split = measured(materialize("--select", f"key:{DATASET}/bulk_file"), env, "bulk_file")
            years_seconds, year_runs = measured_all(
                year_commands(list(per_year), one_run), env, concurrency
            )
            runs = {"bulk_file": split, **year_runs}
            stats = standin.stats
            csv_path = work / "rows.csv"
            export_all(warehouse, csv_path)
            with psycopg.connect(warehouse) as conn:
                copy_rows, copy_seconds = plain_copy(conn, TABLE, csv_path)
            run_seconds, step_seconds = dagster_seconds(env, runs_since)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    loaded = loaded_years(warehouse)
    version = f"{published.name}@{published.etag}"
    expected_ledger = [(y, n, n, version) for y, n in per_year.items()]
    if loaded != per_year or copy_rows != rows or ledger(warehouse) != expected_ledger:
        raise SystemExit(
            f"bulk_bench: expected {per_year}, loaded {loaded}, copied {copy_rows:,}, "
            f"ledger {ledger(warehouse)}"
        )
    forget_dataset(warehouse)
    gets = len(stats.ranges)
    if gets != 1 or stats.downloads != 1 or stats.bytes_served != published.size:
        raise SystemExit(f"bulk_bench: the file was not read once: {stats}")
    a, b = reference["seconds"], copy_seconds
    c = split["seconds"] + years_seconds
    return {
        "rows": rows,
        "years": years,
        "concurrent_year_runs": concurrency,
        "one_run": one_run,
        "rows_per_year": {str(y): n for y, n in per_year.items()},
        "file_bytes": published.size,
        "generate_seconds": round(generate_seconds, 1),
        "a_one_pass_seconds": round(a, 3),
        "b_plain_copy_seconds": round(b, 3),
        "c_whole_history_seconds": round(c, 3),
        "c_over_a_plus_b": round(c / (a + b), 3),
        "process_seconds": {label: round(run["seconds"], 3) for label, run in runs.items()},
        "dagster_run_seconds": [round(s, 3) for s in run_seconds],
        "process_fixed_seconds": round(
            sum(run["seconds"] for run in runs.values()) - sum(run_seconds), 3
        ),
        "step_seconds": step_seconds,
        "peak_rss_mb": {
            "reference pass": reference["peak_rss_mb"],
            **{label: run["peak_rss_mb"] for label, run in runs.items()},
        },
        "max_peak_rss_mb": max(run["peak_rss_mb"] for run in [reference, *runs.values()]),
        "file_gets": gets,
        "file_downloads": stats.downloads,
        "file_bytes_served": stats.bytes_served,
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{result['rows']:,} rows over {result['years']} years in one file of "
        f"{result['file_bytes']:,} bytes (generated in {result['generate_seconds']:.0f} s)"
    )
    print(f"(a) one pass: download + gunzip + parse      {result['a_one_pass_seconds']:8.1f} s")
    print(f"(b) plain COPY of all kept rows              {result['b_plain_copy_seconds']:8.1f} s")
    print(
        f"(c) whole-history load (bulk_file + years)   {result['c_whole_history_seconds']:8.1f} s"
    )
    print(
        f"    c / (a + b) = {result['c_over_a_plus_b']:.2f}  (target <= 1.5); year runs "
        + (
            "one run for every year"
            if result["one_run"]
            else f"{result['concurrent_year_runs']} at a time"
        )
    )
    print(
        "    per process (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in result["process_seconds"].items())
    )
    print(
        f"    process seconds summed: Dagster runs {sum(result['dagster_run_seconds']):.1f} s, "
        f"process start-up and teardown {result['process_fixed_seconds']:.1f} s"
    )
    print(
        "    steps summed over the runs (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in result["step_seconds"].items())
    )
    print(
        "peak RSS (MB): "
        + ", ".join(f"{k} {v:,.0f}" for k, v in result["peak_rss_mb"].items())
        + f"; max {result['max_peak_rss_mb']:,.0f} (target <= 600)"
    )
    print(
        f"the file was read {result['file_downloads']} time(s): {result['file_gets']} GET(s), "
        f"{result['file_bytes_served']:,} bytes served"
    )
    print(f"1-minute load average {result['load_average_1m']}, {result['cpu_count']} CPUs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="year runs at a time (1: one after another; a UI backfill runs up to 3)",
    )
    parser.add_argument(
        "--one-run", action="store_true", help="every year in one run (years_per_run: all)"
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--reference-pass", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference_pass:
        print(reference_pass(args.reference_pass))
        return 0
    result = benchmark(args.rows, args.years, args.concurrency, args.one_run)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
