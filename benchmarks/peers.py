"""The files benchmark: one year of a typed gzip CSV loaded into PostgreSQL by each tool a user
might pick instead, every figure a whole process (Python or Go start-up included).

``python benchmarks/peers.py --rows 20000 --out FILE`` (``--rows`` may repeat, e.g.
``--rows 20000 --rows 1000000``; ``--repeat`` runs every tool that many times, interleaved):

- **plain COPY**: a Python process streaming the pre-decompressed CSV into an unindexed typed
  table with psycopg's COPY (the physical limit, nothing checked);
- **Sling** (the ``sling-linux-amd64`` wheel's binary, or ``$SLING_BINARY``):
  ``sling run --src-stream file://… --tgt-conn … --mode full-refresh`` (it infers the types);
- **dlt, Arrow + csv**: dlt's fastest path here, pyarrow reading the gzip file in typed batches
  and ``loader_file_format="csv"`` (COPY);
- **dlt, defaults**: records as dicts, ``insert_values`` (on at most ``--dict-rows`` rows,
  reported per row, since it runs at a few thousand rows per second);
- **ingest_assets**: ``dagster asset materialize`` of the year of a ``source: files`` dataset
  (plan, stage, clean, COPY, reconcile, atomic swap), with the default executor (in-process)
  and with ``INGEST_EXECUTOR=multiprocess`` (a process per step, the default until the fixed
  cost of small years was measured: issue #13). Stage seconds come from its metadata.
- **the floor**: a process that only imports ``dagster._cli`` and ``dagster_postgres``, what
  every ``dagster`` command on PostgreSQL storage pays before any definitions or run.

The small size (~20,000 rows) measures the fixed cost of each tool. Every tool runs in the same
sitting, interleaved, so a loaded machine slows all of them alike; the 1-minute load average is
recorded beside the figures. The warehouse is ``DATABASE_URL`` or the embedded server's
``ingest_bench`` database; Dagster's storage ``DAGSTER_PG_URL`` or embedded.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # run as a script from a checkout, installed or not
DATASET = "bench_files"
YEAR = 2020
BENCH_DATABASE = "ingest_bench"
COLUMNS = {  # snake-cased header → PostgreSQL type (the catalog's `columns`)
    "year": "integer",
    "state_code": "text",
    "county_name": "text",
    "commodity": "text",
    "statistic": "text",
    "value": "double precision",
    "cv_pct": "double precision",
    "week_ending": "date",
    "load_time": "timestamp",
}
HEADERS = [name.replace("_", " ").title() for name in COLUMNS]
STEPS = ("raw_pages", "cleaned", "facts")
TOOLS = (
    "plain COPY",
    "Sling",
    "dlt, Arrow + csv",
    "dlt, defaults (dicts)",
    "ingest_assets (in-process)",
    "ingest_assets (multiprocess)",
)
# The floor under any `dagster` CLI run on PostgreSQL storage: importing the CLI and the
# storage, no definitions, no run.
IMPORT_FLOOR = "dagster + dagster_postgres imports"


# -- the data ------------------------------------------------------------------------------------
def write_year(path: Path, rows: int, year: int = YEAR) -> None:
    """A gzip CSV of ``rows`` typed records of ``year`` (every 11th value empty: NULL)."""
    with gzip.open(path, "wt", newline="", compresslevel=6) as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for i in range(rows):
            writer.writerow(
                [
                    year,
                    f"{i % 56:02d}",
                    f"COUNTY {i % 3_000}",
                    ("CORN", "SOYBEANS", "WHEAT", "HAY", "OATS")[i % 5],
                    "YIELD, MEASURED IN BU / ACRE",
                    f"{(i * 7.31) % 250:.2f}" if i % 11 else "",
                    f"{i % 97 / 10:.1f}",
                    f"{year}-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
                    f"{year + 1}-01-{i % 28 + 1:02d} 10:{i % 60:02d}:00",
                ]
            )


def files_entry(name: str, folder: Path, first_year: int, last_year: int) -> str:
    """The catalog entry (YAML, indented under ``datasets:``) of a files dataset ``name`` reading
    ``folder``'s gzip CSVs into a table of the same name, typed by ``COLUMNS``."""
    columns = "".join(
        f"      {column}: {kind}\n" for column, kind in COLUMNS.items() if column != "year"
    )
    return (
        f"  {name}:\n"
        "    source: files\n"
        f"    table: {name}\n"
        f"    start_year: {first_year}\n"
        f"    end_year: {last_year}\n"
        f"    path: {folder}/*.csv.gz\n"
        "    year_column: Year\n"
        f"    columns:\n{columns}"
    )


def catalog_yaml(folder: Path, first_year: int = YEAR - 1, last_year: int = YEAR + 1) -> str:
    return "datasets:\n" + files_entry(DATASET, folder, first_year, last_year)


# -- the peers, each the body of its own process (``--peer NAME``) ------------------------------
def create_table(conn: psycopg.Connection, name: str) -> sql.Identifier:
    target = sql.Identifier(name)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in COLUMNS.items()
    )
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, columns))
    return target


def peer_copy(url: str, csv_path: Path) -> int:
    with psycopg.connect(url) as conn:
        target = create_table(conn, "bench_plain_copy")
        query = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(target)
        with conn.cursor() as cur, cur.copy(query) as copy, csv_path.open("rb") as source:
            while block := source.read(1 << 20):
                copy.write(block)
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()[0]


def arrow_batches(path: Path, infer_types: bool = False) -> Iterator[Any]:
    """The file as typed Arrow tables, block by block (what a dlt user would write): this
    benchmark's columns, or with ``infer_types`` whatever pyarrow infers from the header on.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {
        "integer": pa.int32(),
        "text": pa.string(),
        "double precision": pa.float64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
    }
    options: dict[str, Any] = {}
    if not infer_types:
        options = {
            "read_options": pacsv.ReadOptions(column_names=list(COLUMNS), skip_rows=1),
            "convert_options": pacsv.ConvertOptions(
                column_types={name: types[kind] for name, kind in COLUMNS.items()}
            ),
        }
    reader = pacsv.open_csv(path, **options)
    for batch in reader:
        yield pa.Table.from_batches([batch])


def dict_records(gz_path: Path, limit: int) -> Iterator[list[dict[str, str]]]:
    with gzip.open(gz_path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        page: list[dict[str, str]] = []
        for n, row in enumerate(reader):
            if n == limit:
                break
            page.append(dict(zip(COLUMNS, row, strict=True)))
            if len(page) == 10_000:
                yield page
                page = []
        if page:
            yield page


def peer_dlt(
    url: str, gz_path: Path, work: Path, arrow: bool, limit: int, infer_types: bool = False
) -> int:
    import dlt

    from benchmarks.partition_bench import dlt_credentials

    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    dataset = "bench_dlt_arrow" if arrow else "bench_dlt_dicts"
    pipeline = dlt.pipeline(
        pipeline_name=dataset,
        pipelines_dir=str(work / "dlt"),
        destination=dlt.destinations.postgres(credentials=dlt_credentials(url)),
        dataset_name=dataset,
    )
    items = arrow_batches(gz_path, infer_types) if arrow else dict_records(gz_path, limit)
    resource = dlt.resource(items, name="facts", write_disposition="replace")
    pipeline.run(resource, loader_file_format="csv" if arrow else None)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.facts").format(sql.Identifier(dataset))
        ).fetchone()[0]
        for schema in (dataset, f"{dataset}_staging"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return rows


def sling_binary() -> str:
    """``$SLING_BINARY``, else the binary shipped in the ``sling-linux-amd64`` wheel."""
    if os.environ.get("SLING_BINARY"):
        return os.environ["SLING_BINARY"]
    try:
        from sling_linux_amd64 import SLING_BIN
    except ImportError:
        raise SystemExit(
            "peers: Sling is not installed (pip install sling-linux-amd64, or set SLING_BINARY)"
        ) from None
    return SLING_BIN


def sling_command(source: Path, warehouse: str, table: str) -> list[str]:
    """Sling loading one CSV file (gzip or not) into ``table``, replacing it."""
    return [
        sling_binary(), "run", "--src-stream", f"file://{source}",
        "--tgt-conn", sling_url(warehouse), "--tgt-object", table, "--mode", "full-refresh",
    ]  # fmt: skip


def sling_url(url: str) -> str:
    """The warehouse URL for Sling: its Go driver reads ``?host=`` (the embedded server's socket
    folder) as libpq does, but wants TLS unless told otherwise."""
    return url + ("&" if "?" in url else "?") + "sslmode=disable"


# -- timing whole processes ----------------------------------------------------------------------
def timed(command: list[str], env: dict[str, str], label: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode:
        raise SystemExit(
            f"peers: {label} failed (exit {done.returncode}):\n{done.stdout[-1500:]}"
            f"{done.stderr[-3000:]}"
        )
    return seconds, done.stdout


def count_rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.split(".")))
        return conn.execute(query).fetchone()[0]


def ingest_stage_seconds(env: dict[str, str]) -> dict[str, float]:
    """The seconds each step's materialization recorded (its ``seconds`` metadata)."""
    import dagster as dg

    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "DAGSTER_PG_URL")}
    os.environ.update({k: env[k] for k in saved})
    try:
        with dg.DagsterInstance.get() as instance:
            seconds = {}
            for step in STEPS:
                event = instance.get_latest_materialization_event(dg.AssetKey([DATASET, step]))
                metadata = event.asset_materialization.metadata
                seconds[step] = round(float(metadata["seconds"].value), 3)
            return seconds
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Sitting:
    """One size's files, environment and commands; ``run(tool)`` times one whole process."""

    def __init__(self, rows: int, dict_rows: int, warehouse: str, dagster_url: str) -> None:
        self.rows = rows
        self.dict_rows = min(rows, dict_rows)
        self.warehouse = warehouse
        self.work = Path(tempfile.mkdtemp(prefix="peers_bench_"))
        self.data = self.work / "dump"
        self.data.mkdir()
        self.gz_path = self.data / f"{YEAR}.csv.gz"
        write_year(self.gz_path, rows)
        self.csv_path = self.work / "plain.csv"
        with gzip.open(self.gz_path, "rb") as source, self.csv_path.open("wb") as sink:
            shutil.copyfileobj(source, sink)
        home = self.work / "dagster_home"
        home.mkdir()
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        (self.work / "datasets.yaml").write_text(catalog_yaml(self.data))
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": dagster_url,
            "DATABASE_URL": warehouse,
            "INGEST_DATASETS": str(self.work / "datasets.yaml"),
            "INGEST_STAGING": str(self.work / "staging"),
            "INGEST_EXECUTOR": "in_process",
            # sittings of different sizes replace the same year: a smaller one is not a shrink
            "INGEST_CONFIRM_SHRINK": DATASET,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }

    def peer_command(self, name: str, *extra: str) -> list[str]:
        return [sys.executable, __file__, "--peer", name, "--file", str(self.gz_path), *extra]

    def run(self, tool: str) -> dict[str, Any]:
        """Run ``tool`` once: {seconds, rows[, stage_seconds]}; fails if a row is missing."""
        expected = self.rows
        stages = None
        if tool == IMPORT_FLOOR:
            command = [sys.executable, "-c", "import dagster._cli, dagster_postgres"]
            seconds, _ = timed(command, self.env, tool)
            rows = expected = 0
        elif tool == "plain COPY":
            seconds, out = timed(
                self.peer_command("copy", "--csv", str(self.csv_path)), self.env, tool
            )
            rows = int(out.split()[-1])
        elif tool == "Sling":
            command = sling_command(self.gz_path, self.warehouse, "public.bench_sling")
            seconds, _ = timed(command, {**self.env, "SLING_HOME_DIR": str(self.work)}, tool)
            rows = count_rows(self.warehouse, "public.bench_sling")
        elif tool.startswith("dlt"):
            arrow = "Arrow" in tool
            expected = self.rows if arrow else self.dict_rows
            extra = ["--work", str(self.work), "--limit", str(self.dict_rows)]
            command = self.peer_command("dlt-arrow" if arrow else "dlt-dicts", *extra)
            seconds, out = timed(command, self.env, tool)
            rows = int(out.split()[-1])
        else:
            executor = "multiprocess" if "multiprocess" in tool else "in_process"
            command = [
                str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
                "-m", "ingest_assets.definitions", "--partition", str(YEAR),
                "--select", ",".join(f"{DATASET}/{step}" for step in STEPS),
            ]  # fmt: skip
            seconds, _ = timed(command, {**self.env, "INGEST_EXECUTOR": executor}, tool)
            rows = count_rows(self.warehouse, "bench_files")
            stages = ingest_stage_seconds(self.env)
        if rows != expected:
            raise SystemExit(f"peers: {tool} loaded {rows:,} rows of {expected:,}")
        figure: dict[str, Any] = {"seconds": round(seconds, 3), "rows": rows}
        if stages:
            figure["stage_seconds"] = stages
        return figure

    def close(self) -> None:
        with psycopg.connect(self.warehouse, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_plain_copy, bench_sling")
        shutil.rmtree(self.work, ignore_errors=True)


def benchmark(sizes: list[int], repeat: int, dict_rows: int) -> dict[str, Any]:
    from benchmarks.partition_bench import database_urls

    warehouse, dagster_url = database_urls()
    results: dict[str, Any] = {"sizes": {}, "load_average_1m": [], "cpu_count": os.cpu_count()}
    tools = (*TOOLS, IMPORT_FLOOR)
    for rows in sizes:
        sitting = Sitting(rows, dict_rows, warehouse, dagster_url)
        runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
        try:
            for round_ in range(repeat):
                order = tools[round_ % len(tools) :] + tools[: round_ % len(tools)]
                for tool in order:  # interleaved, the starting tool rotating per round
                    runs[tool].append(sitting.run(tool))
                    results["load_average_1m"].append(round(os.getloadavg()[0], 2))
        finally:
            sitting.close()
        results["sizes"][str(rows)] = {
            "dict_rows": sitting.dict_rows,
            "runs": runs,
            "best_seconds": {tool: min(r["seconds"] for r in runs[tool]) for tool in tools},
        }
    return results


def print_table(results: dict[str, Any]) -> None:
    sizes = results["sizes"]
    print(f"\nwhole-process seconds, best of the runs (1-minute load {results['load_average_1m']})")
    print(f"{'':32}" + "".join(f"{int(rows):>14,}" for rows in sizes))
    for tool in (*TOOLS, IMPORT_FLOOR):
        cells = (f"{size['best_seconds'][tool]:>14.2f}" for size in sizes.values())
        print(f"{tool:32}" + "".join(cells))
    for rows, size in sizes.items():
        best = size["best_seconds"]
        ratios = "; ".join(
            f"{tool} = {best[tool] / best['Sling']:.2f}x Sling's time"
            for tool in ("ingest_assets (in-process)", IMPORT_FLOOR)
        )
        stages = size["runs"]["ingest_assets (in-process)"][-1]["stage_seconds"]
        print(
            f"{int(rows):,} rows: {ratios}; dlt defaults on {size['dict_rows']:,} rows; "
            f"ingest_assets stages (s) {stages}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="rows of the year (repeatable)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dict-rows", type=int, default=100_000, help="most rows for dlt dicts")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--peer", choices=("copy", "dlt-arrow", "dlt-dicts"), help=argparse.SUPPRESS
    )
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--infer-types", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        url = os.environ["DATABASE_URL"]
        if args.peer == "copy":
            print(peer_copy(url, args.csv))
        else:
            arrow = args.peer == "dlt-arrow"
            print(peer_dlt(url, args.file, args.work, arrow, args.limit, args.infer_types))
        return 0
    if args.out is None:
        parser.error("--out is required")
    results = benchmark(args.rows or [20_000], args.repeat, args.dict_rows)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
