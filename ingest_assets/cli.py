"""``ingest-assets``: the commands a person runs (demo, dev, standin, status, psql, stop-db).

``demo`` is the README's first command: offline it serves both APIs from the local stand-ins,
materializes several years of the example dataset into the embedded PostgreSQL through a real
Dagster instance, and prints what landed; with ``NASS_API_KEY`` set it uses the real API. ``dev``
starts ``dagster dev`` on ``workspace.yaml`` with the same environment (and the stand-ins when
offline). ``standin`` serves the stand-ins for any other command and prints what to export;
``status`` reads the load ledger; ``psql`` opens the warehouse. Mistakes are reported in one line
naming what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from ingest_assets.settings import current_settings, plain, reset_settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_DATASET = "nass_crops_county"
STANDIN_COMMAND = 'eval "$(./run ingest-assets standin --background)"'


class UsageError(Exception):
    """A mistake the user can fix; reported as one line, without a traceback."""


def prepare_dagster_home() -> Path:
    """``DAGSTER_HOME`` (default ``$INGEST_HOME/dagster_home``) whose dagster.yaml is the project's.

    The default home holds a link to the project's dagster.yaml, so an operator's edit applies at
    the next start; a DAGSTER_HOME of one's own keeps its own file (linked only when missing).
    """
    from ingest_assets.embedded import ingest_home

    chosen = current_settings().dagster_home
    home = Path(chosen or ingest_home() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not chosen or not (config.exists() or config.is_symlink()):
        config.unlink(missing_ok=True)
        config.symlink_to(PROJECT_ROOT / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)  # for Dagster, and the processes started from here
    reset_settings()
    return home


def _serve_standins(stack: ExitStack) -> dict[str, str]:
    """The stand-ins of the APIs without credentials, announced on stderr."""
    from ingest_assets.catalog import load_catalog
    from ingest_assets.standin.offline import serve_offline

    environment = serve_offline(stack, load_catalog())
    for name, what in (
        ("NASS_BASE_URL", "Quick Stats"),
        ("NASS_BULK_URL", "the Quick Stats bulk files"),
        ("SOCRATA_BASE_URL", "Socrata"),
    ):
        if name in environment:
            print(
                f"no key or token set: serving {what} from the local stand-in {environment[name]}",
                file=sys.stderr,
            )
    return environment


def _landed(dataset: str, years: Sequence[int]) -> list[tuple]:
    from ingest_assets.catalog import load_catalog
    from ingest_assets.warehouse.resource import Warehouse
    from ingest_assets.warehouse.tables import scalar

    config = load_catalog()[dataset]
    with Warehouse(database_url=plain(current_settings().database_url) or "").connect() as conn:
        rows = []
        for year in years:
            ledger = conn.execute(
                "SELECT rows_loaded, source_count, status FROM ingest_meta.load_ledger "
                "WHERE dataset = %s AND year = %s ORDER BY id DESC LIMIT 1",
                (dataset, year),
            ).fetchone()
            count = scalar(
                conn,
                f'SELECT count(*) FROM "{config.db_schema}"."{config.table}" WHERE year = %s',
                (year,),
            )
            rows.append((year, count, *(ledger or (None, None, "not loaded"))))
    return rows


def _still_running() -> str:
    """What the demo leaves running, and how to stop it."""
    settings = current_settings()
    if settings.database_url and settings.dagster_pg_url:
        return "Nothing is left running (external PostgreSQL servers)."
    from ingest_assets.embedded import ingest_home

    return (
        f"Still running: the embedded PostgreSQL (data in {ingest_home() / 'pgdata'}), kept for "
        "`./run dev` and later runs; stop it with `./run ingest-assets stop-db`. The stand-ins "
        "stopped with the demo."
    )


def demo(args: argparse.Namespace) -> int:
    """``ingest-assets demo``: materialize example years end to end and show the result."""
    import dagster as dg

    from ingest_assets.catalog import load_catalog
    from ingest_assets.partitions import check_years
    from ingest_assets.standin.offline import NASS_RECORDS

    years = args.years or sorted(NASS_RECORDS)
    catalog = load_catalog()
    if args.dataset not in catalog:
        raise UsageError(
            f"no dataset {args.dataset!r} in the catalog; choose one of {', '.join(catalog)}"
        )
    check_years(catalog[args.dataset], years)
    with ExitStack() as stack:
        _serve_standins(stack)
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
                )
                if not result.success:
                    print(f"year {year} failed; see the run in the Dagster UI", file=sys.stderr)
                    return 1
        header = f"{'year':>6} {'rows in table':>14} {'rows loaded':>12} {'source count':>13} "
        print(f"\n{header}{'ledger':>8}")
        for year, count, loaded, source, status in _landed(args.dataset, years):
            print(f"{year:>6} {count:>14,} {loaded or 0:>12,} {source or 0:>13,} {status:>8}")
        print("\nOpen the UI with `./run dev`; everything above is recorded there.")
    print(_still_running())
    return 0


def dev(args: argparse.Namespace) -> int:
    """``ingest-assets dev``: the Dagster UI and daemon, with stand-ins for unset credentials."""
    with ExitStack() as stack:
        _serve_standins(stack)
        prepare_dagster_home()
        extra = args.dagster_args[1:] if args.dagster_args[:1] == ["--"] else args.dagster_args
        workspace = str(PROJECT_ROOT / "workspace.yaml")
        return subprocess.call(["dagster", "dev", "-w", workspace, *extra], cwd=PROJECT_ROOT)


def _standin_files() -> tuple[Path, Path]:
    from ingest_assets.embedded import ingest_home

    folder = ingest_home()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "standin.pid", folder / "standin.env"


def _exports(environment: dict[str, str]) -> str:
    return "".join(f"export {name}={value}\n" for name, value in environment.items())


def _serve_until_stopped() -> int:
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with ExitStack() as stack:
        environment = _serve_standins(stack)
        sys.stdout.write(_exports(environment))
        sys.stdout.flush()
        if not environment:
            print("keys are set for every API: nothing to serve", file=sys.stderr)
            return 0
        print(
            "serving until stopped (Ctrl-C, or `./run ingest-assets standin --stop`)",
            file=sys.stderr,
        )
        stopping.wait()
    return 0


def _start_in_background(timeout: float = 60.0) -> int:
    """Start ``standin`` detached; print its exports once it serves."""
    pid_file, env_file = _standin_files()
    env_file.unlink(missing_ok=True)
    with env_file.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "ingest_assets", "standin"],
            stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while child.poll() is None and not env_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    if child.poll() is not None and not env_file.read_text():
        return 0  # keys are set for every API: nothing to serve
    if not env_file.read_text():
        child.kill()
        raise UsageError(f"the stand-ins did not start in {timeout:.0f}s")
    pid_file.write_text(str(child.pid))
    sys.stdout.write(env_file.read_text() + "# stop: ./run ingest-assets standin --stop\n")
    return 0


def _stop_background() -> int:
    pid_file, env_file = _standin_files()
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        print("stand-ins stopped", file=sys.stderr)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        print("no stand-ins running", file=sys.stderr)
    pid_file.unlink(missing_ok=True)
    env_file.unlink(missing_ok=True)
    return 0


def standin(args: argparse.Namespace) -> int:
    """``ingest-assets standin``: serve the API stand-ins (foreground, background or stop)."""
    if args.stop:
        return _stop_background()
    if args.background:
        return _start_in_background()
    return _serve_until_stopped()


def _age(finished: datetime) -> str:
    seconds = int((datetime.now(UTC) - finished).total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status(args: argparse.Namespace) -> int:
    """``ingest-assets status``: each dataset's latest loads from the ledger."""
    from ingest_assets.warehouse.ledger import latest_loads
    from ingest_assets.warehouse.resource import Warehouse

    warehouse = Warehouse(database_url=plain(current_settings().database_url) or "")
    warehouse.require_reachable("ingest-assets status")
    with warehouse.connect() as conn:
        loads = latest_loads(conn, args.dataset)
    if not loads:
        print("nothing loaded yet (the ledger is empty); try `./run demo`")
        return 0
    print(f"{'dataset':<24} {'year':>5} {'last load (UTC)':<17} {'rows':>11} "
          f"{'source count':>12} {'status':<7} {'age':>5}")  # fmt: skip
    for load in loads:
        print(
            f"{load.dataset:<24} {load.year:>5} {load.finished_at:%Y-%m-%d %H:%M}  "
            f"{load.rows_loaded or 0:>11,} {load.source_count or 0:>12,} {load.status:<7} "
            f"{_age(load.finished_at):>5}"
        )
    return 0


def psql(args: argparse.Namespace) -> int:
    """``ingest-assets psql``: a psql shell on the warehouse."""
    from ingest_assets.embedded import warehouse_url

    program = shutil.which("psql")
    if program is None:
        raise UsageError("psql is not installed: install the PostgreSQL client (apt install "
                         "postgresql-client), or connect any client to DATABASE_URL")  # fmt: skip
    url = warehouse_url()
    os.execv(program, [program, url, *args.psql_args])
    return 0  # (not reached)


def stop_db(args: argparse.Namespace) -> int:
    """``ingest-assets stop-db``: stop the embedded PostgreSQL of this INGEST_HOME."""
    from ingest_assets.embedded import stop_embedded

    print("embedded PostgreSQL stopped" if stop_embedded() else "no embedded PostgreSQL running")
    return 0


def _years(text: str) -> list[int]:
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-", 1))
            return list(range(first, last + 1))
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give years like 2021-2023 or 2020,2022"
        ) from None


def _parser() -> argparse.ArgumentParser:
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
    standin_parser = commands.add_parser(
        "standin",
        help="serve Quick Stats and Socrata stand-ins for the APIs without a key and print the "
        "environment to export; foreground until Ctrl-C unless --background",
    )
    modes = standin_parser.add_mutually_exclusive_group()
    modes.add_argument("--background", action="store_true",
                       help=f"detach, print the exports and return: {STANDIN_COMMAND}")  # fmt: skip
    modes.add_argument("--stop", action="store_true", help="stop the --background stand-ins")
    standin_parser.set_defaults(run=standin)
    status_parser = commands.add_parser(
        "status", help="per dataset and year, the last load in the ledger: rows, status, age"
    )
    status_parser.add_argument("--dataset", help="only this dataset")
    status_parser.set_defaults(run=status)
    psql_parser = commands.add_parser("psql", help="open the warehouse in psql")
    psql_parser.add_argument("psql_args", nargs=argparse.REMAINDER, help="passed to psql")
    psql_parser.set_defaults(run=psql)
    commands.add_parser("stop-db", help="stop the embedded PostgreSQL").set_defaults(run=stop_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ingest-assets`` command; a mistake a person can fix is one ``error:`` line."""
    from ingest_assets.errors_first import one_line_or_none

    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "psql":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "psql":  # psql's own options (-c, -tA, ...) pass through, in order
        given = list(sys.argv[1:] if argv is None else argv)
        args.psql_args = given[given.index("psql") + 1 :]
    try:
        return args.run(args)
    except Exception as exc:
        line = str(exc) if isinstance(exc, UsageError) else one_line_or_none(exc)
        if line is None or current_settings().ingest_debug:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
