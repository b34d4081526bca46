"""The thousand-partition benchmark: a synthetic catalog of many small datasets, its definitions
load time, and one backfill of every partition launched as the UI launches it, with the code
location reloaded and the code server killed while it runs.

``python benchmarks/thousand_bench.py --datasets 40 --years 25 --out FILE``:

- **the catalog**: ``--datasets`` datasets of ``--years`` years each, spread round-robin over
  one files pool and ``--nass-hosts`` Quick Stats stand-ins, each on its own loopback address
  (127.0.0.2, 127.0.0.3, ...), so each is its own API host and Dagster pool (``api_files``,
  ``api_127_0_0_2``, ...). Files datasets read ``--rows`` rows per year from gzip CSVs
  (``benchmarks/peers.py``'s data); Quick Stats stand-in years hold ``--rows`` records, each
  request answered ``--latency`` seconds late. Dataset i starts in ``FIRST_YEAR + i``, so each
  has its own partitions definition, as in a real catalog (assets with equal definitions would
  share one run per year).
- **definitions load**: ``dg check defs`` (a whole process, as CI runs it) and, in one fresh
  process, ``build_definitions()`` plus the repository Dagster resolves from it, ``--repeat``
  times each, on this catalog and on a one-dataset reference catalog in the same sitting.
- **the backfill**: ``dagster dev`` (webserver + daemon, default run launcher: a process per
  run) on a fresh instance; each pool's limit set first (``dagster instance concurrency set``,
  as docs/scaling.md says) and read back from the instance; ONE GraphQL
  ``launchPartitionBackfill`` of every asset of every dataset with ``allPartitions`` (what the
  UI's "Materialize all" dialog sends when the selected assets' partitions definitions differ),
  so one run per dataset-year. While it runs, the code location is reloaded every
  ``--reload-every`` runs done (GraphQL ``reloadRepositoryLocation``, the UI's "Reload":
  ``dagster dev``'s code server starts a new gRPC server and retires the old one); and every
  ``--kill-code-server-every`` runs done, once a run is executing, the code server is killed
  with SIGKILL, as a crash or a deploy's restart would: the ``dagster code-server start``
  process ``dagster dev`` started and the ``dagster api grpc`` servers under it (they load the
  code and start the run processes, which are left running). Recorded per kill: the runs then
  being launched and executing and how each ended, seconds until the webserver had the location
  loaded again from a new server, whether that took an operator's "Reload" (only tried after
  ``KILL_RECOVERY_SECONDS``; ``dagster dev`` restarts the code server by itself), the backfill's
  status after; and run launches put back in the queue (``launches_requeued``). Timed from
  the launch until the backfill is done. From Dagster's storage afterwards: every run's status,
  peak concurrent runs (from run start/end times), and per pool the peak of concurrent
  ``raw_pages`` steps (STEP_START → STEP_SUCCESS/FAILURE in the event log), checked against the
  pool's limit; from the warehouse: one ledger row per dataset and year.

``--max-runs`` sets ``max_concurrent_runs`` and the ``dagster/backfill`` tag limit of the
benchmark's instance (the project's ``dagster.yaml`` otherwise: 4 and 3); ``--launch-threads``
lets the daemon launch that many queued runs at once (one after another by default, each launch
a process start). ``--deadline HH:MM``
(UTC) stops waiting at that time and records the partial figures (runs done, the rate) with
``"finished": false``; the JSON is rewritten every ``PROGRESS_SECONDS`` while the backfill runs.
Record the load average beside the figures: the machine may be shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil
import psycopg
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # run as a script from a checkout, installed or not

from benchmarks.backfill_bench import fresh_instance_url, ledger_loads  # noqa: E402
from benchmarks.partition_bench import database_urls  # noqa: E402
from benchmarks.peers import STEPS, files_entry, write_year  # noqa: E402

FIRST_YEAR = 1960  # dataset i covers FIRST_YEAR + i on: each its own partitions definition
EPOCH_YEAR = 1970  # a partitions end at its first instant (timestamp 0) reads as no end
LOCATION = "ingest_assets"
PROGRESS_SECONDS = 30.0
POOL_LIMIT = 2  # dagster.yaml's default_limit, set explicitly per pool before the launch
Checkpoint = Callable[[dict[str, Any]], None]
"""Writes the figures so far (the JSON of ``--out``)."""
KILL_RECOVERY_SECONDS = 120.0  # Dagster's own recovery waited for before an operator's "Reload"
LOCATION_ENTRY = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus updatedTimestamp "
    "locationOrLoadError { __typename } } } } }"
)
NASS_QUERY = "    query: {source_desc: SURVEY, sector_desc: CROPS, agg_level_desc: COUNTY}\n"


# -- the catalog ---------------------------------------------------------------------------------
def dataset_names(n_datasets: int, n_hosts: int) -> dict[str, int]:
    """Dataset name → its pool's index: 0 the files pool, i > 0 the i-th Quick Stats host."""
    pools = n_hosts + 1
    return {
        (f"files_{i:02d}" if i % pools == 0 else f"nass_{i:02d}"): i % pools
        for i in range(n_datasets)
    }


def nass_entry(name: str, base_url: str, first_year: int, last_year: int) -> str:
    return (
        f"  {name}:\n    source: nass\n    table: {name}\n    base_url: {base_url}\n"
        f"    start_year: {first_year}\n    end_year: {last_year}\n{NASS_QUERY}"
    )


def dataset_years(n_datasets: int, n_years: int) -> list[list[int]]:
    """Dataset i's years: ``n_years`` from ``FIRST_YEAR + i``. Staggered, so no two datasets
    share a partitions definition (as in a real catalog), and a backfill runs each dataset-year
    as its own run: Dagster puts assets of equal partitions definitions in one run per key.

    No dataset may end in 1969: a partitions end of 1970-01-01 (timestamp 0) is lost on its way
    from the code server to the webserver and daemon (Dagster 1.13 tests ``if end``), which
    then see every year up to now (docs/scaling.md)."""
    years = [list(range(FIRST_YEAR + i, FIRST_YEAR + i + n_years)) for i in range(n_datasets)]
    if any(own[-1] == EPOCH_YEAR - 1 for own in years):
        raise SystemExit(
            f"thousand_bench: with --years {n_years} a dataset ends in {EPOCH_YEAR - 1}, which "
            "Dagster 1.13 turns into no end at all; choose another --years or --datasets"
        )
    return years


def write_catalog(
    datasets: dict[str, int],
    years: list[list[int]],
    rows: int,
    base_urls: list[str],
    work: Path,
    years_per_run: int = 1,
) -> str:
    """The catalog (YAML text): each files dataset on a folder of its years' gzip CSVs, written
    here; each Quick Stats one on its stand-in's base URL; ``years_per_run`` for every one."""
    entries = []
    for (name, pool), own in zip(datasets.items(), years, strict=True):
        if pool:
            entry = nass_entry(name, base_urls[pool - 1], own[0], own[-1])
        else:
            folder = work / "dump" / name
            folder.mkdir(parents=True)
            for year in own:
                write_year(folder / f"{year}.csv.gz", rows, year)
            entry = files_entry(name, folder, own[0], own[-1])
        entries.append(entry + f"    years_per_run: {years_per_run}\n")
    return "datasets:\n" + "".join(entries)


# -- definitions load ----------------------------------------------------------------------------
IN_PROCESS = """
import json, sys, time
started = time.perf_counter()
from ingest_assets.definitions import build_definitions
imported = time.perf_counter() - started
builds = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    repository = build_definitions().get_repository_def()
    repository.asset_graph  # the graph Dagster resolves for the code location
    builds.append(time.perf_counter() - t)
print(json.dumps({"import_seconds": imported, "build_seconds": builds,
                  "assets": len(repository.asset_graph.get_all_asset_keys())}))
"""


def definitions_load(env: dict[str, str], repeat: int) -> dict[str, Any]:
    """Seconds of ``dg check defs`` (each a whole process) and of in-process builds."""
    dg = str(Path(sys.executable).with_name("dg"))
    checks = []
    for _ in range(repeat):
        started = time.monotonic()
        done = subprocess.run(
            [dg, "check", "defs"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
        )
        checks.append(time.monotonic() - started)
        if done.returncode:
            raise SystemExit(f"thousand_bench: dg check defs failed:\n{done.stderr[-3000:]}")
    built = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(repeat)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(built.stdout.strip().splitlines()[-1])
    return {
        "dg_check_defs_seconds": [round(s, 2) for s in checks],
        "import_seconds": round(figures["import_seconds"], 2),
        "build_seconds": [round(s, 3) for s in figures["build_seconds"]],
        "assets": figures["assets"],
    }


# -- the backfill --------------------------------------------------------------------------------
def instance_yaml(max_runs: int | None, launch_threads: int) -> str:
    """The project's ``dagster.yaml``, with ``max_runs`` as both run limits when given, and
    ``launch_threads`` runs launched at once (``run_queue.dequeue_num_workers``; 1: Dagster's
    default, one launch after another)."""
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    if launch_threads > 1:
        config.setdefault("run_queue", {}).update(
            dequeue_use_threads=True, dequeue_num_workers=launch_threads
        )
    if max_runs is not None:
        runs = config["concurrency"]["runs"]
        runs["max_concurrent_runs"] = max_runs
        for limit in runs["tag_concurrency_limits"]:
            if limit["key"] == "dagster/backfill":
                limit["limit"] = max_runs
    return yaml.safe_dump(config, sort_keys=False)


def set_pool_limits(env: dict[str, str], pools: Iterable[str]) -> None:
    dagster = str(Path(sys.executable).with_name("dagster"))
    for pool in pools:
        subprocess.run(
            [dagster, "instance", "concurrency", "set", pool, str(POOL_LIMIT)],
            env=env,
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
        )


def storage_url(env: dict[str, str]) -> str:
    return env["DAGSTER_PG_URL"].replace("postgresql+psycopg2://", "postgresql://")


def query(instance_url: str, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The rows of one statement on Dagster's storage."""
    with psycopg.connect(instance_url) as conn:
        return conn.execute(statement, params).fetchall()


def run_counts(instance_url: str, backfill: str) -> dict[str, int]:
    statement = "SELECT status, count(*) FROM runs WHERE backfill_id = %s GROUP BY status"
    return dict(query(instance_url, statement, (backfill,)))


def runs_in_flight(instance_url: str, backfill: str) -> dict[str, list[str]]:
    """The backfill's runs being launched (``STARTING``) and executing (``STARTED``), by status."""
    statement = (
        "SELECT status, run_id FROM runs WHERE backfill_id = %s "
        "AND status IN ('STARTING', 'STARTED') ORDER BY run_id"
    )
    found: dict[str, list[str]] = {}
    for status, run_id in query(instance_url, statement, (backfill,)):
        found.setdefault(status, []).append(run_id)
    return found


def launches_requeued(instance_url: str, backfill: str) -> int:
    """Run launches that failed on an unreachable code server and were put back in the queue
    (``run_queue.max_user_code_failure_retries`` in ``dagster.yaml``)."""
    statement = (
        "SELECT count(*) FROM event_logs e JOIN runs r ON r.run_id = e.run_id "
        "WHERE r.backfill_id = %s AND e.dagster_event_type = 'ENGINE_EVENT' AND e.event LIKE %s"
    )
    return query(instance_url, statement, (backfill, "%re-submitting the run into the queue%"))[0][
        0
    ]


def run_statuses(instance_url: str, run_ids: list[str]) -> dict[str, int]:
    """How many of ``run_ids`` ended in each status."""
    statement = "SELECT status, count(*) FROM runs WHERE run_id = ANY(%s) GROUP BY status"
    return dict(query(instance_url, statement, (run_ids,)))


def peak_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at the same instant)."""
    edges = sorted(edge for start, end in intervals for edge in ((start, 1), (end, -1)))
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def concurrency_figures(instance_url: str, backfill: str, pools: dict[str, str]) -> dict[str, Any]:
    """Peak concurrent runs and, per pool, peak concurrent ``raw_pages`` steps, from storage."""
    with psycopg.connect(instance_url) as conn:
        runs = conn.execute(
            "SELECT start_time, end_time FROM runs WHERE backfill_id = %s "
            "AND start_time IS NOT NULL",
            (backfill,),
        ).fetchall()
        steps = conn.execute(
            "SELECT e.run_id, e.step_key, e.dagster_event_type, "
            "extract(epoch FROM e.timestamp)::float8 FROM event_logs e "
            "JOIN runs r ON r.run_id = e.run_id WHERE r.backfill_id = %s "
            "AND e.dagster_event_type IN ('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE') "
            "AND e.step_key LIKE %s ORDER BY e.id",
            (backfill, "%__raw_pages"),
        ).fetchall()
    now = time.time()
    started: dict[tuple[str, str], float] = {}
    per_pool: dict[str, list[tuple[float, float]]] = {pool: [] for pool in set(pools.values())}
    for run_id, step_key, kind, at in steps:
        if kind == "STEP_START":
            started[run_id, step_key] = at
        elif (run_id, step_key) in started:
            pool = pools[step_key.removesuffix("__raw_pages")]
            per_pool[pool].append((started.pop((run_id, step_key)), at))
    for (_, step_key), at in started.items():  # still running
        per_pool[pools[step_key.removesuffix("__raw_pages")]].append((at, now))
    return {
        "peak_concurrent_runs": peak_overlap((start, end or now) for start, end in runs),
        "peak_raw_pages_per_pool": {pool: peak_overlap(v) for pool, v in sorted(per_pool.items())},
        "raw_pages_steps_per_pool": {pool: len(v) for pool, v in sorted(per_pool.items())},
    }


def storage_growth(instance_url: str, backfill: str) -> dict[str, Any]:
    """Event-log rows and serialized bytes per succeeded run, and the instance database's size:
    what run retention has to keep in check."""
    with psycopg.connect(instance_url) as conn:
        runs, events, size = conn.execute(
            "SELECT count(DISTINCT r.run_id), count(e.id), coalesce(sum(octet_length(e.event)), 0) "
            "FROM runs r JOIN event_logs e ON e.run_id = r.run_id "
            "WHERE r.backfill_id = %s AND r.status = 'SUCCESS'",
            (backfill,),
        ).fetchone()
        database = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {
        "events_per_run": round(events / runs, 1) if runs else None,
        "event_kb_per_run": round(size / runs / 1024, 1) if runs else None,
        "instance_database_mb": round(database / 2**20, 1),
    }


def reload_code(url: str) -> float:
    """Reload the code location as the UI's "Reload" button does; seconds until it is loaded."""
    from ingest_assets_tests.support.graphql import reload_location

    started = time.monotonic()
    reload_location(url, LOCATION)
    return time.monotonic() - started


# -- the code server killed ----------------------------------------------------------------------
def code_server() -> psutil.Process:
    """The ``dagster code-server start`` process that ``dagster dev`` (started by this process)
    runs for the code location: found among this process's descendants by its command line."""
    servers = [
        child
        for child in psutil.Process().children(recursive=True)
        if _runs(child, ("code-server", "start"))
    ]
    if len(servers) != 1:
        raise RuntimeError(f"thousand_bench: expected one code server below us, found {servers}")
    return servers[0]


def _runs(process: psutil.Process, words: tuple[str, ...]) -> bool:
    """Whether ``process``'s command line holds ``words`` one after another."""
    try:
        line = process.cmdline()
    except psutil.Error:  # exited meanwhile
        return False
    return any(tuple(line[i : i + len(words)]) == words for i in range(len(line)))


def location_entry(url: str) -> dict[str, Any]:
    from ingest_assets_tests.support.graphql import graphql

    entries = graphql(url, LOCATION_ENTRY)["workspaceOrError"]["locationEntries"]
    return next(entry for entry in entries if entry["name"] == LOCATION)


def kill_code_server(url: str) -> dict[str, Any]:
    """SIGKILL the code server (and the ``dagster api grpc`` server it runs: the process that
    loads the code and launches runs), as a crash or a deploy's restart would; then wait until
    the webserver has the location loaded again from a new server. Dagster brings it back by
    itself (``dagster dev`` restarts a code server that exited, on the same socket; the
    webserver's watch thread sees the new server id and reloads); only if it has not after
    ``KILL_RECOVERY_SECONDS`` does this do what an operator would: "Reload" (GraphQL
    ``reloadRepositoryLocation``)."""
    killed = code_server()
    grpc = [child for child in killed.children() if _runs(child, ("api", "grpc"))]
    before = location_entry(url)["updatedTimestamp"]
    started = time.monotonic()
    for process in (killed, *grpc):
        process.kill()  # SIGKILL: no shutdown hook runs
    psutil.wait_procs([killed, *grpc], timeout=30)
    reloaded_by_operator = False
    while True:
        entry = location_entry(url)
        loaded = entry["loadStatus"] == "LOADED" and entry["updatedTimestamp"] > before
        if loaded and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation":
            break
        if time.monotonic() - started > KILL_RECOVERY_SECONDS and not reloaded_by_operator:
            reloaded_by_operator = True
            reload_code(url)
            continue
        time.sleep(0.5)
    return {
        "killed_pids": [killed.pid, *(process.pid for process in grpc)],
        "new_code_server_pid": code_server().pid,
        "seconds_to_loaded_again": round(time.monotonic() - started, 2),
        "reloaded_by_operator": reloaded_by_operator,
    }


class Backfill:
    """One backfill on a running ``dagster dev``: launched, watched, its code location reloaded
    and its code server killed midway."""

    def __init__(
        self, url: str, env: dict[str, str], expected_runs: int, reload_every: int, kill_every: int
    ) -> None:
        self.url = url
        self.instance_url = storage_url(env)
        self.expected = expected_runs
        self.reload_at = list(range(reload_every, expected_runs, reload_every))
        self.kill_at = list(range(kill_every, expected_runs, kill_every)) if kill_every else []
        self.reloads: list[dict[str, Any]] = []
        self.kills: list[dict[str, Any]] = []
        self.statuses_seen: set[str] = set()
        self.load_samples: list[float] = []
        self.id = ""
        self.launched_at = 0.0

    def launch(self, datasets: Iterable[str]) -> None:
        """All partitions of every asset, in one backfill (the UI dialog's ``allPartitions``)."""
        from ingest_assets_tests.support.graphql import launch_backfill

        assets = [[name, step] for name in datasets for step in STEPS]
        self.launched_at = time.monotonic()
        self.id = launch_backfill(self.url, None, assets)

    def progress(self, counts: dict[str, int], status: str) -> dict[str, Any]:
        elapsed = time.monotonic() - self.launched_at
        done = sum(n for s, n in counts.items() if s in ("SUCCESS", "FAILURE", "CANCELED"))
        return {
            "backfill_id": self.id,
            "backfill_status": status,
            "statuses_seen": sorted(self.statuses_seen),
            "elapsed_seconds": round(elapsed, 1),
            "runs_by_status": counts,
            "runs_done": done,
            "runs_per_hour": round(done / elapsed * 3600, 1) if elapsed else 0.0,
            "reloads": self.reloads,
            "code_server_kills": self.kills,
            "load_average_1m_samples": self.load_samples,
        }

    def kill(self, runs_done: int) -> None:
        """Kill the code server, once a run is executing: to see whether that run survives."""
        from ingest_assets_tests.support.graphql import backfill_status

        in_flight = runs_in_flight(self.instance_url, self.id)
        if not in_flight.get("STARTED"):
            return
        self.kill_at.pop(0)
        kill = kill_code_server(self.url)
        kill.update(runs_done=runs_done, runs_in_flight=in_flight)
        kill["backfill_status_after"] = backfill_status(self.url, self.id)
        self.statuses_seen.add(kill["backfill_status_after"])
        self.kills.append(kill)

    def watch(self, deadline: float | None, checkpoint: Checkpoint) -> tuple[bool, dict[str, Any]]:
        """Poll until the backfill is done (True) or ``deadline`` (epoch seconds) passes."""
        from ingest_assets_tests.support.graphql import BACKFILL_DONE, backfill_status

        last_checkpoint = 0.0
        while True:
            status = backfill_status(self.url, self.id)
            self.statuses_seen.add(status)
            counts = run_counts(self.instance_url, self.id)
            figures = self.progress(counts, status)
            if status in BACKFILL_DONE:
                return True, figures
            if deadline is not None and time.time() > deadline:
                return False, figures
            if self.reload_at and figures["runs_done"] >= self.reload_at[0]:
                self.reload_at.pop(0)
                seconds = reload_code(self.url)
                after = backfill_status(self.url, self.id)
                self.statuses_seen.add(after)
                self.reloads.append(
                    {
                        "runs_done": figures["runs_done"],
                        "seconds_to_reload": round(seconds, 2),
                        "backfill_status_after": after,
                    }
                )
            if self.kill_at and figures["runs_done"] >= self.kill_at[0]:
                self.kill(figures["runs_done"])
            if time.monotonic() - last_checkpoint > PROGRESS_SECONDS:
                last_checkpoint = time.monotonic()
                self.load_samples.append(round(os.getloadavg()[0], 2))
                checkpoint(figures)
            time.sleep(2.0)


def run_backfill(
    env: dict[str, str],
    home: Path,
    datasets: dict[str, str],
    options: argparse.Namespace,
    checkpoint: Checkpoint,
) -> dict[str, Any]:
    """``dagster dev`` up, pool limits set, the backfill launched and watched; its figures."""
    from ingest_assets_tests.support.graphql import pool_limits, wait_for_code
    from ingest_assets_tests.ui.dagster_dev import dagster_dev

    config = instance_yaml(options.max_runs, options.launch_threads)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(config)
    dagster_env = {**env, "DAGSTER_HOME": str(home)}
    set_pool_limits(dagster_env, sorted(set(datasets.values())))
    started = time.monotonic()
    with dagster_dev(env, home, instance_yaml=config) as url:
        wait_for_code(url)
        up = time.monotonic() - started
        limits = pool_limits(url)
        backfill = Backfill(
            url,
            env,
            len(datasets) * -(-options.years // options.years_per_run),  # runs: ceil per dataset
            options.reload_every,
            options.kill_code_server_every,
        )
        backfill.launch(datasets)
        deadline = _deadline(options.deadline)
        finished, figures = backfill.watch(deadline, checkpoint)
        figures.update(concurrency_figures(backfill.instance_url, backfill.id, datasets))
        for kill in backfill.kills:  # did the runs the kill caught in flight finish?
            kill["runs_in_flight_ended"] = {
                status: run_statuses(backfill.instance_url, ids)
                for status, ids in kill["runs_in_flight"].items()
            }
        figures["launches_requeued"] = launches_requeued(backfill.instance_url, backfill.id)
        figures.update(storage_growth(backfill.instance_url, backfill.id))
    figures["pool_limits"] = limits
    figures["finished"] = finished
    figures["dagster_dev_up_seconds"] = round(up, 2)
    instance = yaml.safe_load(config)
    figures["run_limits"] = {**instance["concurrency"]["runs"], **instance.get("run_queue", {})}
    return figures


def _deadline(text: str | None) -> float | None:
    if not text:
        return None
    hour, minute = map(int, text.split(":"))
    now = dt.datetime.now(dt.UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


def verdict(
    figures: dict[str, Any], loads: list[tuple[str, int, int]], expected: set, rows: int
) -> list[str]:
    """What went wrong, one line each (empty: every run succeeded, the backfill was never
    cancelled, pool limits held, every dataset-year loaded with all its rows)."""
    problems = []
    if figures["finished"] and figures["backfill_status"] not in ("COMPLETED", "COMPLETED_SUCCESS"):
        problems.append(f"the backfill ended {figures['backfill_status']}")
    if {"CANCELED", "CANCELING", "FAILED"} & set(figures["statuses_seen"]):
        problems.append(f"the backfill was seen {figures['statuses_seen']}")
    failed = {s: n for s, n in figures["runs_by_status"].items() if s != "SUCCESS"}
    if figures["finished"] and failed:
        problems.append(f"runs not succeeded: {failed}")
    for pool, peak in figures["peak_raw_pages_per_pool"].items():
        if peak > figures["pool_limits"].get(pool, POOL_LIMIT):
            problems.append(f"pool {pool}: {peak} raw_pages steps at once, limit exceeded")
    loaded = {(dataset, year) for dataset, year, _ in loads}
    if figures["finished"] and loaded != expected:
        problems.append(f"ledger: {len(loaded & expected)} dataset-years of {len(expected)}")
    short = sorted((dataset, year) for dataset, year, n in loads if n != rows)
    if short:
        problems.append(f"{len(short)} loads without {rows} rows, e.g. {short[:3]}")
    return problems


def benchmark(options: argparse.Namespace, checkpoint: Checkpoint) -> dict[str, Any]:
    from ingest_assets.standin.nass_data import NassDataset
    from ingest_assets.standin.nass_server import DEFAULT_API_KEY, NassStandIn

    warehouse, _ = database_urls()
    years = dataset_years(options.datasets, options.years)
    names = dataset_names(options.datasets, options.nass_hosts)
    work = Path(tempfile.mkdtemp(prefix="thousand_bench_"))
    result: dict[str, Any] = {
        "datasets": options.datasets,
        "years": options.years,
        "partitions": options.datasets * options.years,
        "years_per_run": options.years_per_run,
        "rows_per_year": options.rows,
        "quick_stats_latency_seconds": options.latency,
        "cpu_count": os.cpu_count(),
        "load_average_1m_start": round(os.getloadavg()[0], 2),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        with ExitStack() as stack:
            # every year named: the stand-in's own default years start in 2000 (earlier: empty)
            records = dict.fromkeys({year for own in years for year in own}, options.rows)
            standins = [
                stack.enter_context(
                    NassStandIn(
                        NassDataset(records, options.rows),
                        host=f"127.0.0.{i + 2}",
                        latency=options.latency,
                    )
                )
                for i in range(options.nass_hosts)
            ]
            base_urls = [standin.base_url for standin in standins]
            catalog = write_catalog(
                names, years, options.rows, base_urls, work, options.years_per_run
            )
            (work / "datasets.yaml").write_text(catalog)
            first = dict([next(iter(names.items()))])  # the reference: that dataset alone
            reference = write_catalog(first, years[:1], options.rows, [], work / "reference")
            (work / "reference.yaml").write_text(reference)
            env = {
                **os.environ,
                "DATABASE_URL": warehouse,
                "INGEST_DATASETS": str(work / "datasets.yaml"),
                "INGEST_STAGING": str(work / "staging"),
                "NASS_API_KEY": DEFAULT_API_KEY,
            }
            env.pop("INGEST_EXECUTOR", None)  # the default, as a user's dagster dev runs it
            env.pop("NASS_BASE_URL", None)  # it would override every dataset's base_url
            reference_env = {**env, "INGEST_DATASETS": str(work / "reference.yaml")}
            result["definitions_load"] = definitions_load(env, options.repeat)
            result["definitions_load_reference_1_dataset"] = definitions_load(
                reference_env, options.repeat
            )
            checkpoint(result)
            env["DAGSTER_PG_URL"] = fresh_instance_url("thousand_bench_dagster")
            last_id, _ = ledger_loads(warehouse, 0)
            from ingest_assets.catalog import load_catalog
            from ingest_assets.dataset import api_pool

            os.environ["INGEST_DATASETS"] = env["INGEST_DATASETS"]
            pools = {name: api_pool(config) for name, config in load_catalog().items()}

            def progress(figures: dict[str, Any]) -> None:
                checkpoint({**result, "backfill": figures})

            figures = run_backfill(env, work / "dagster_home", pools, options, progress)
            _, loads = ledger_loads(warehouse, last_id)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    expected = {(name, year) for name, own in zip(names, years, strict=True) for year in own}
    figures["ledger_loads"] = len({(dataset, year) for dataset, year, _ in loads} & expected)
    figures["rows_loaded"] = sum(n for _, _, n in loads)
    figures["problems"] = verdict(figures, loads, expected, options.rows)
    result["backfill"] = figures
    result["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    return result


def summary(result: dict[str, Any]) -> str:
    load = result["definitions_load"]
    ref = result["definitions_load_reference_1_dataset"]
    backfill = result["backfill"]
    lines = [
        f"{result['datasets']} datasets x {result['years']} years = {result['partitions']} "
        f"partitions ({load['assets']} assets; reference: {ref['assets']})",
        f"  dg check defs: {min(load['dg_check_defs_seconds']):.1f} s best of "
        f"{len(load['dg_check_defs_seconds'])} (1 dataset: {min(ref['dg_check_defs_seconds']):.1f}"
        f" s); in-process build: {min(load['build_seconds']):.2f} s "
        f"(1 dataset: {min(ref['build_seconds']):.2f} s)",
        f"  backfill {backfill['backfill_status']}, finished={backfill['finished']}: "
        f"{backfill['runs_done']} runs in {backfill['elapsed_seconds']:.0f} s = "
        f"{backfill['runs_per_hour']:.0f} runs/hour; by status {backfill['runs_by_status']}",
        f"  peak concurrent runs {backfill['peak_concurrent_runs']} "
        f"(limits {backfill['run_limits']}); raw_pages peak per pool "
        f"{backfill['peak_raw_pages_per_pool']} (limits {backfill['pool_limits']})",
        f"  storage: {backfill['events_per_run']} events ({backfill['event_kb_per_run']} KB) per "
        f"run; instance database {backfill['instance_database_mb']} MB",
        f"  code reloads: {backfill['reloads']}; statuses seen {backfill['statuses_seen']}",
        f"  code server kills: {backfill['code_server_kills']}",
        f"  1-minute load {result['load_average_1m_start']} -> {result['load_average_1m_end']}",
        f"  problems: {backfill['problems'] or 'none'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=40)
    parser.add_argument("--years", type=int, default=25)
    parser.add_argument("--years-per-run", type=int, default=1, help="the catalog's years_per_run")
    parser.add_argument("--rows", type=int, default=300, help="rows (records) per year")
    parser.add_argument("--nass-hosts", type=int, default=2)
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds the Quick Stats stand-ins add per request",
    )
    parser.add_argument("--repeat", type=int, default=3, help="definitions loads per figure")
    parser.add_argument(
        "--reload-every", type=int, default=200, help="reload the code location every N runs done"
    )
    parser.add_argument(
        "--kill-code-server-every",
        type=int,
        default=0,
        help="SIGKILL the code server every N runs done (0: never)",
    )
    parser.add_argument("--max-runs", type=int, default=None, help="max concurrent runs")
    parser.add_argument("--launch-threads", type=int, default=1, help="runs launched at once")
    parser.add_argument("--deadline", default=None, help="HH:MM UTC: stop waiting then")
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args(argv)

    def checkpoint(figures: dict[str, Any]) -> None:
        options.out.write_text(json.dumps({**figures, "partial": True}, indent=2) + "\n")

    result = benchmark(options, checkpoint)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))
    return 1 if result["backfill"]["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
