"""``ingest-assets``: the commands a person runs (demo, dev, status, stop-db).

``demo`` is the README's first command: offline it serves Quick Stats from the local stand-in,
materializes several years of the example dataset into the embedded PostgreSQL through a real
Dagster instance, and prints what landed; with ``NASS_API_KEY`` set it uses the real API. ``dev``
starts ``dagster dev`` with the same environment (and the stand-ins when offline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_DATASET = "nass_crops_county"
# Demo sizes: small years, plus one over the 50,000-record limit to show the split planner.
DEMO_RECORDS = {2021: 4_000, 2022: 6_000, 2023: 60_000}


def prepare_dagster_home() -> Path:
    """``DAGSTER_HOME`` (default ``.ingest/dagster_home``) holding the project's dagster.yaml."""
    from ingest_assets.embedded import ingest_home

    home = Path(os.environ.get("DAGSTER_HOME") or ingest_home() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _start_nass_standin(stack: ExitStack, records: dict[int, int]) -> None:
    from ingest_assets.standin.nass_data import NassDataset
    from ingest_assets.standin.nass_server import NassStandIn

    standin = stack.enter_context(NassStandIn(NassDataset(records_per_year=records)))
    os.environ["NASS_BASE_URL"] = standin.base_url
    os.environ["NASS_API_KEY"] = standin.api_key
    os.environ["NASS_MIN_INTERVAL_SECONDS"] = "0"
    print(
        f"NASS_API_KEY is not set: serving Quick Stats from the local stand-in {standin.base_url}"
    )


def _landed(dataset: str, years: Sequence[int]) -> list[tuple]:
    from ingest_assets.catalog import load_catalog
    from ingest_assets.warehouse.resource import Warehouse

    config = load_catalog()[dataset]
    url = os.environ.get("DATABASE_URL", "")
    with Warehouse(database_url=url).connect() as conn:
        rows = []
        for year in years:
            ledger = conn.execute(
                "SELECT rows_loaded, source_count, status FROM ingest_meta.load_ledger "
                "WHERE dataset = %s AND year = %s ORDER BY id DESC LIMIT 1",
                (dataset, year),
            ).fetchone()
            count = conn.execute(
                f'SELECT count(*) FROM "{config.db_schema}"."{config.table}" WHERE year = %s',
                (year,),
            ).fetchone()[0]
            rows.append((year, count, *(ledger or (None, None, "not loaded"))))
    return rows


def demo(args: argparse.Namespace) -> int:
    import dagster as dg

    years = args.years or sorted(DEMO_RECORDS)
    with ExitStack() as stack:
        if not os.environ.get("NASS_API_KEY"):
            _start_nass_standin(stack, DEMO_RECORDS)
        prepare_dagster_home()
        from ingest_assets.dataset import job_name
        from ingest_assets.definitions import build_definitions

        job = build_definitions().resolve_job_def(job_name(args.dataset))
        with dg.DagsterInstance.get() as instance:
            for year in years:
                print(f"materializing {args.dataset} year {year} ...", flush=True)
                result = job.execute_in_process(
                    partition_key=str(year),
                    instance=instance,
                    raise_on_error=False,
                    run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
                )
                if not result.success:
                    print(f"year {year} failed; see the run in the Dagster UI", file=sys.stderr)
                    return 1
        header = f"{'year':>6} {'rows in table':>14} {'rows loaded':>12} {'source count':>13} "
        print(f"\n{header}{'ledger':>8}")
        for year, count, loaded, source, status in _landed(args.dataset, years):
            print(f"{year:>6} {count:>14,} {loaded or 0:>12,} {source or 0:>13,} {status:>8}")
        print("\nOpen the UI with `./run dev`; everything above is recorded there.")
    return 0


def dev(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        if not os.environ.get("NASS_API_KEY"):
            _start_nass_standin(stack, DEMO_RECORDS)
        prepare_dagster_home()
        extra = args.dagster_args[1:] if args.dagster_args[:1] == ["--"] else args.dagster_args
        command = ["dagster", "dev", "-m", "ingest_assets.definitions", *extra]
        return subprocess.call(command, cwd=PROJECT_ROOT)


def stop_db(args: argparse.Namespace) -> int:
    from ingest_assets.embedded import stop_embedded

    print("embedded PostgreSQL stopped" if stop_embedded() else "no embedded PostgreSQL running")
    return 0


def _years(text: str) -> list[int]:
    if "-" in text:
        first, last = (int(part) for part in text.split("-", 1))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ingest-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="materialize example years and show them")
    demo_parser.add_argument("--dataset", default=DEMO_DATASET)
    demo_parser.add_argument("--years", type=_years, help="e.g. 2021-2023 or 2020,2022")
    demo_parser.set_defaults(run=demo)
    dev_parser = commands.add_parser(
        "dev", help="dagster dev with the project's environment (`dev -- -p 3001` passes options)"
    )
    dev_parser.add_argument("dagster_args", nargs=argparse.REMAINDER)
    dev_parser.set_defaults(run=dev)
    commands.add_parser("stop-db", help="stop the embedded PostgreSQL").set_defaults(run=stop_db)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
