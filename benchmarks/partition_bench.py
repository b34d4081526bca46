"""The partition benchmark: one Quick Stats year through the pipeline, against COPY and the peers.

``python benchmarks/partition_bench.py --rows N --out FILE`` (or ``./run bench ...``):

1. serves a year of N records from the NASS stand-in, in a process of its own (its JSON
   generation must not share the pipeline's GIL);
2. materializes ``raw_pages → cleaned → facts`` (with the blocking reconcile check) for that year
   in a child process, through a real Dagster instance on PostgreSQL and the real resources —
   ``execute_in_process`` as the demo does — sampling the child's resident memory with psutil;
3. on the same PostgreSQL and the same rows (exported from the loaded partition to CSV):
   a plain ``COPY`` from the CSV file into an unindexed table (the physical limit), pandas
   ``to_sql`` and dlt fed the same records as dicts (what its rest_api source yields). The slow
   references run on a sample (``--sample``, default 100,000 rows) and are reported per row.

Writes a JSON object to FILE and prints a short table. The warehouse is ``DATABASE_URL`` or the
embedded server's ``ingest_bench`` database; Dagster's storage ``DAGSTER_PG_URL`` or embedded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psutil
import psycopg
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATASET = "nass_crops_county"
STEPS = ("raw_pages", "cleaned", "facts")
BENCH_DATABASE = "ingest_bench"
sys.path.insert(0, str(PROJECT_ROOT))  # run as a script from a checkout, installed or not
COPY_READ_BYTES = 1 << 20
API_KEY = "test-key-0000-0000-0000-000000000000"


# -- the pipeline run (child process) ------------------------------------------------------------
def run_year(year: int, out: Path) -> None:
    """Materialize one year as Dagster runs it and write the stage figures to ``out``."""
    import dagster as dg

    from ingest_assets.dataset import job_name
    from ingest_assets.definitions import build_definitions

    job = build_definitions().resolve_job_def(job_name(DATASET))
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            partition_key=str(year),
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        events = instance.all_logs(result.run_id)
    if not result.success:
        raise SystemExit(f"partition_bench: the run of year {year} failed ({result.run_id})")
    starts: dict[str, float] = {}
    windows: dict[str, list[float]] = {}
    steps: dict[str, float] = {}
    run_start = run_end = None
    for record in events:
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == dg.DagsterEventType.RUN_START:
            run_start = record.timestamp
        elif kind == dg.DagsterEventType.RUN_SUCCESS:
            run_end = record.timestamp
        elif kind == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
            windows[event.step_key] = [record.timestamp]
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            steps[event.step_key] = record.timestamp - starts[event.step_key]
            windows[event.step_key].append(record.timestamp)
    metadata = {}
    for step in STEPS:
        key = dg.AssetKey([DATASET, step])
        materialization = result.asset_materializations_for_node(f"{DATASET}__{step}")[0]
        assert materialization.asset_key == key
        metadata[step] = {
            k: v.value
            for k, v in materialization.metadata.items()
            if isinstance(v.value, int | float)
        }
    check = result.get_asset_check_evaluations()[0]
    figures = {
        "run_seconds": run_end - run_start,
        "step_seconds": {s: steps[f"{DATASET}__{s}"] for s in STEPS},
        "step_windows": {s: windows[f"{DATASET}__{s}"] for s in STEPS},
        "metadata": metadata,
        "check_passed": check.passed,
    }
    out.write_text(json.dumps(figures))


# -- memory sampling -----------------------------------------------------------------------------
class RssSampler(threading.Thread):
    """Samples the resident memory of the process doing the run until stopped.

    The run executes in that one process (``execute_in_process``); ``ru_maxrss`` of the reaped
    child catches any peak between two samples.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples: list[tuple[float, int]] = []  # (wall clock, rss), to split by step
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                rss = self.process.memory_info().rss
            except psutil.Error:
                break
            self.peak = max(self.peak, rss)
            self.samples.append((time.time(), rss))
            self._stop_event.wait(self.interval)

    def peak_between(self, start: float, end: float) -> int:
        return max((rss for at, rss in self.samples if start <= at <= end), default=0)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


# -- references ----------------------------------------------------------------------------------
def export_csv(conn: psycopg.Connection, table: str, year: int, path: Path) -> list[str]:
    """The loaded rows of ``year`` as a CSV file with a header (Sling and dlt read column names
    from it); returns the column names."""
    columns = [
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position",
            (table,),
        )
    ]
    query = sql.SQL(
        "COPY (SELECT * FROM {} WHERE year = {}) TO STDOUT (FORMAT csv, HEADER true)"
    ).format(sql.Identifier(table), sql.Literal(year))
    with path.open("wb") as sink, conn.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            sink.write(block)
    return columns


def plain_copy(conn: psycopg.Connection, table: str, csv_path: Path) -> tuple[int, float]:
    """COPY the CSV file into a fresh unindexed table like ``table``; (rows, seconds)."""
    target = sql.Identifier("bench_plain_copy")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE {})").format(target, sql.Identifier(table)))
    conn.commit()
    started = time.monotonic()
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(target)) as copy,
        csv_path.open("rb") as source,
    ):
        while block := source.read(COPY_READ_BYTES):
            copy.write(block)
    conn.commit()
    seconds = time.monotonic() - started
    rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()[0]
    conn.execute(sql.SQL("DROP TABLE {}").format(target))
    conn.commit()
    return rows, seconds


def peer_seconds(warehouse: str, csv_path: Path, work: Path, rows: int) -> dict[str, float]:
    """Whole-process seconds of Sling and of dlt's Arrow + csv path loading the exported rows
    (each infers the types from the file), as ``benchmarks/peers.py`` runs them."""
    from benchmarks import peers

    env = {**os.environ, "DATABASE_URL": warehouse, "SLING_HOME_DIR": str(work)}
    sling = peers.sling_command(csv_path, warehouse, "public.bench_sling")
    sling_seconds, _ = peers.timed(sling, env, "Sling")
    loaded = {"Sling": peers.count_rows(warehouse, "public.bench_sling")}
    dlt = [
        sys.executable, peers.__file__, "--peer", "dlt-arrow", "--file", str(csv_path),
        "--work", str(work), "--limit", "0", "--infer-types",
    ]  # fmt: skip
    dlt_seconds, out = peers.timed(dlt, env, "dlt, Arrow + csv")
    loaded["dlt, Arrow + csv"] = int(out.split()[-1])
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.bench_sling")
    short = {tool: n for tool, n in loaded.items() if n != rows}
    if short:
        raise SystemExit(f"partition_bench: expected {rows:,} rows, peers loaded {short}")
    return {"sling_seconds": round(sling_seconds, 3), "dlt_arrow_seconds": round(dlt_seconds, 3)}


def pandas_to_sql(url: str, csv_path: Path, columns: list[str], sample: int) -> tuple[int, float]:
    """pandas ``to_sql`` (default method) of the first ``sample`` rows; (rows, seconds)."""
    import pandas as pd
    import sqlalchemy

    frame = pd.read_csv(
        csv_path, header=0, names=columns, nrows=sample, keep_default_na=False, na_values=[""]
    )
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        started = time.monotonic()
        frame.to_sql("bench_to_sql", engine, if_exists="replace", index=False, chunksize=10_000)
        seconds = time.monotonic() - started
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DROP TABLE bench_to_sql"))
    finally:
        engine.dispose()
    return len(frame), seconds


def staged_records(pages_dir: Path, sample: int) -> Iterator[list[dict[str, Any]]]:
    """Pages of records decoded from the staged responses, ``sample`` records in all."""
    import pyarrow as pa

    from ingest_assets.catalog import load_catalog
    from ingest_assets.kinds.nass.cleaner import NassCleaner

    cleaner = NassCleaner(load_catalog()[DATASET])
    codec = pa.Codec("zstd")
    left = sample
    manifest = json.loads((pages_dir / "manifest.json").read_text())
    for entry in manifest["slices"]:
        for page in entry["pages"]:
            raw = codec.decompress(
                (pages_dir / page["file"]).read_bytes(), page["raw_bytes"], asbytes=True
            )
            records = cleaner.parse_page(raw)[:left]
            left -= len(records)
            yield records
            if left <= 0:
                return


def dlt_credentials(url: str) -> dict[str, Any]:
    """dlt insists on a host; the embedded server's URL names a socket folder in ``?host=``,
    which libpq lets override the URL's host."""
    parts = urlsplit(url)
    return {
        "database": parts.path.lstrip("/"),
        "username": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "query": dict(parse_qsl(parts.query)),
    }


def dlt_load(url: str, pages_dir: Path, sample: int, work: Path) -> tuple[int, float]:
    """dlt (defaults: insert_values) loading ``sample`` records fed as dicts; (rows, seconds)."""
    import dlt

    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    pipeline = dlt.pipeline(
        pipeline_name="partition_bench",
        pipelines_dir=str(work / "dlt"),
        destination=dlt.destinations.postgres(credentials=dlt_credentials(url)),
        dataset_name="bench_dlt",
    )
    rows = 0

    @dlt.resource(name="facts", write_disposition="replace")
    def facts() -> Iterator[list[dict[str, Any]]]:
        nonlocal rows
        for page in staged_records(pages_dir, sample):
            rows += len(page)
            yield page

    started = time.monotonic()
    pipeline.run(facts())
    seconds = time.monotonic() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_dlt CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS bench_dlt_staging CASCADE")
    return rows, seconds


# -- orchestration -------------------------------------------------------------------------------
def start_standin(year: int, rows: int, warm: bool) -> tuple[subprocess.Popen, str]:
    command = [
        sys.executable,
        "-m",
        "ingest_assets.standin.nass_server",
        "--api-key",
        API_KEY,
        "--records-per-year",
        f"{year}={rows}",
    ]
    if warm:
        command.append("--cache-responses")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    line = process.stdout.readline().strip()
    if not line.startswith("http"):
        process.kill()
        raise SystemExit(f"partition_bench: the NASS stand-in did not start (said {line!r})")
    return process, line


def warm_standin(base_url: str, year: int) -> float:
    """Request every slice of the year once, as the pipeline will, so that the stand-in renders
    and caches each response before the timed run: the run then measures the client, not the
    stand-in's record generator, which would otherwise take one of the two cores (the real
    API's servers are not on this machine). Returns the seconds the stand-in took."""
    from ingest_assets.catalog import load_catalog
    from ingest_assets.kinds.nass.source import NassApi

    source = NassApi(api_key=API_KEY, base_url=base_url, min_interval_seconds=0).source(
        load_catalog()[DATASET]
    )
    started = time.monotonic()
    for part in source.plan(year).slices:
        for _ in source.fetch(part):
            pass
    return time.monotonic() - started


def database_urls() -> tuple[str, str]:
    from ingest_assets.embedded import dagster_storage_url, embedded_url

    warehouse = os.environ.get("DATABASE_URL") or embedded_url(BENCH_DATABASE)
    return warehouse, dagster_storage_url()


def table_name() -> str:
    from ingest_assets.catalog import load_catalog

    return load_catalog()[DATASET].table


def run_pipeline(year: int, env: dict[str, str], work: Path) -> tuple[dict[str, Any], float]:
    """The Dagster run in a child process; (its figures with the peak RSS of each step, the
    run's peak RSS in MB)."""
    figures_path = work / "run.json"
    command = [sys.executable, __file__, "--run-year", str(year), "--out", str(figures_path)]
    child = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT)
    sampler = RssSampler(child.pid)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    sampled = sampler.stop()
    if child.returncode:
        raise SystemExit(f"partition_bench: the pipeline run failed (exit {child.returncode})")
    peak = max(sampled, usage.ru_maxrss * 1024)
    figures = json.loads(figures_path.read_text())
    figures["step_peak_rss_mb"] = {
        step: round(sampler.peak_between(*window) / 2**20, 1)
        for step, window in figures.pop("step_windows").items()
    }
    return figures, peak / 2**20


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else 0.0


def benchmark(rows: int, year: int, sample: int, warm: bool = True) -> dict[str, Any]:
    warehouse, dagster_url = database_urls()
    table = table_name()
    work = Path(tempfile.mkdtemp(prefix="partition_bench_"))
    standin = None
    try:
        home = work / "dagster_home"
        home.mkdir()
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        standin, base_url = start_standin(year, rows, warm)
        standin_render_seconds = warm_standin(base_url, year) if warm else None
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": dagster_url,
            "DATABASE_URL": warehouse,
            "INGEST_STAGING": str(work / "staging"),
            "NASS_BASE_URL": base_url,
            "NASS_API_KEY": API_KEY,
            "NASS_MIN_INTERVAL_SECONDS": "0",
            # sittings of different sizes replace the same year: a smaller one is not a shrink
            "INGEST_CONFIRM_SHRINK": DATASET,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
        started = time.monotonic()
        figures, peak_mb = run_pipeline(year, env, work)
        process_seconds = time.monotonic() - started
        standin.terminate()
        standin.wait()
        standin = None

        pages_dir = work / "staging" / "pages" / DATASET / "raw_pages" / str(year)
        csv_path = work / "rows.csv"
        with psycopg.connect(warehouse) as conn:
            columns = export_csv(conn, table, year, csv_path)
            copy_rows, copy_seconds = plain_copy(conn, table, csv_path)
        sample_rows = min(sample, rows)
        to_sql_rows, to_sql_seconds = pandas_to_sql(warehouse, csv_path, columns, sample_rows)
        dlt_rows, dlt_seconds = dlt_load(warehouse, pages_dir, sample_rows, work)
        peers = peer_seconds(warehouse, csv_path, work, rows)
    finally:
        if standin is not None:
            standin.kill()
            standin.wait()
        shutil.rmtree(work, ignore_errors=True)

    meta = figures["metadata"]
    loaded = int(meta["facts"]["loaded_rows"])
    if loaded != rows or copy_rows != rows:
        raise SystemExit(
            f"partition_bench: expected {rows:,} rows, loaded {loaded:,}, copied {copy_rows:,}"
        )
    steps = figures["step_seconds"]
    copy_rate = rate(copy_rows, copy_seconds)
    end_to_end = rate(rows, figures["run_seconds"])
    load = rate(rows, meta["facts"]["seconds"])
    analyze_seconds = meta["facts"]["analyze_seconds"]
    load_unanalyzed = rate(rows, meta["facts"]["seconds"] - analyze_seconds)
    dlt_rate = rate(dlt_rows, dlt_seconds)
    return {
        "rows": rows,
        "year": year,
        "reference_sample_rows": sample_rows,
        "end_to_end_seconds": round(figures["run_seconds"], 3),
        "process_seconds": round(process_seconds, 3),
        **peers,
        "process_vs_sling": round(process_seconds / peers["sling_seconds"], 2),
        "process_vs_dlt_arrow": round(process_seconds / peers["dlt_arrow_seconds"], 2),
        "end_to_end_rows_per_s": round(end_to_end),
        "fetch_stage_rows_per_s": round(rate(rows, steps["raw_pages"])),
        "clean_stage_rows_per_s": round(rate(rows, steps["cleaned"])),
        "facts_step_rows_per_s": round(rate(rows, steps["facts"])),
        "load_rows_per_s": round(load),
        "load_copy_only_rows_per_s": round(rate(rows, meta["facts"]["copy_seconds"])),
        "load_without_analyze_rows_per_s": round(load_unanalyzed),
        "copy_rows_per_s": round(copy_rate),
        "to_sql_rows_per_s": round(rate(to_sql_rows, to_sql_seconds)),
        "dlt_rows_per_s": round(dlt_rate),
        "peak_rss_mb": round(peak_mb, 1),
        "step_peak_rss_mb": figures["step_peak_rss_mb"],
        "load_vs_copy": round(load / copy_rate, 3),
        "load_without_analyze_vs_copy": round(load_unanalyzed / copy_rate, 3),
        "end_to_end_vs_copy": round(end_to_end / copy_rate, 3),
        "end_to_end_vs_dlt": round(end_to_end / dlt_rate, 2),
        "step_seconds": {k: round(v, 3) for k, v in steps.items()},
        "stage_seconds": {
            "plan (get_counts, split)": round(steps["raw_pages"] - meta["raw_pages"]["seconds"], 3),
            "fetch and stage pages": meta["raw_pages"]["seconds"],
            "clean to Parquet": meta["cleaned"]["seconds"],
            "load (COPY, reconcile, ANALYZE, swap, commit)": meta["facts"]["seconds"],
            "of which COPY": meta["facts"]["copy_seconds"],
            "of which ANALYZE": analyze_seconds,
        },
        "check_passed": figures["check_passed"],
        "standin_prerendered": warm,
        "standin_render_seconds": standin_render_seconds and round(standin_render_seconds, 3),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def print_table(result: dict[str, Any]) -> None:
    sample = result["reference_sample_rows"]
    rows = [
        ("end to end (fetch, stage, clean, load, check)", result["end_to_end_rows_per_s"], ""),
        ("  raw_pages step (plan, fetch, stage)", result["fetch_stage_rows_per_s"], ""),
        ("  cleaned step (decode, clean, Parquet)", result["clean_stage_rows_per_s"], ""),
        ("  facts step", result["facts_step_rows_per_s"], ""),
        (
            "  load (COPY, reconcile, ANALYZE, swap, commit)",
            result["load_rows_per_s"],
            f"{result['load_vs_copy']:.2f}x COPY",
        ),
        (
            "    the same without ANALYZE (analyze: false)",
            result["load_without_analyze_rows_per_s"],
            f"{result['load_without_analyze_vs_copy']:.2f}x COPY",
        ),
        ("plain COPY from CSV, unindexed table", result["copy_rows_per_s"], "physical limit"),
        ("pandas to_sql", result["to_sql_rows_per_s"], f"on {sample:,} rows"),
        ("dlt, records as dicts", result["dlt_rows_per_s"], f"on {sample:,} rows"),
    ]
    print(
        f"\n{result['rows']:,} rows, year {result['year']}; peak RSS of the run "
        f"{result['peak_rss_mb']:,.0f} MB"
    )
    print(f"{'':48} {'rows/s':>10}")
    for label, value, note in rows:
        print(f"{label:48} {value:>10,}  {note}")
    print(
        "peak RSS (MB) by step: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in result["step_peak_rss_mb"].items())
    )
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["stage_seconds"].items()))
    print(
        f"stand-in: responses rendered before the run ({result['standin_render_seconds']:.1f} s)"
        if result["standin_prerendered"]
        else "stand-in: generated each response during the run (--cold-standin)"
    )
    print(
        f"end to end = {result['end_to_end_vs_copy']:.2f}x plain COPY, "
        f"{result['end_to_end_vs_dlt']:.1f}x dlt"
    )
    print(
        f"whole processes: the run {result['process_seconds']:.1f} s (fetching from the stand-in"
        f" included), Sling {result['sling_seconds']:.1f} s and dlt Arrow + csv"
        f" {result['dlt_arrow_seconds']:.1f} s from the exported rows: the run takes"
        f" {result['process_vs_sling']:.2f}x Sling's time, {result['process_vs_dlt_arrow']:.2f}x"
        " dlt's"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--year", type=int, default=2020)
    parser.add_argument(
        "--sample", type=int, default=100_000, help="rows for the slow references (to_sql, dlt)"
    )
    parser.add_argument(
        "--cold-standin",
        action="store_true",
        help="let the stand-in generate each response during the timed run (it shares the cores)",
    )
    parser.add_argument("--run-year", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_year is not None:
        run_year(args.run_year, args.out)
        return 0
    result = benchmark(args.rows, args.year, args.sample, warm=not args.cold_standin)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
