"""A multi-year backfill on two Celery workers equals the same years run in one process.

Real parts only: Debian's ``redis-server`` as the broker (started here on a free loopback port,
no persistence), two ``dagster-celery`` worker processes with one slot each, the NASS stand-in
over HTTP, the session's PostgreSQL for Dagster's storage and the warehouse. The years are
launched as concurrent runs with ``dagster asset materialize`` and ``INGEST_EXECUTOR=celery``,
exactly as a deployment selects the engine: by environment alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from celery import Celery
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import RunsFilter

from ingest_assets.catalog import load_catalog
from ingest_assets.dataset import api_pool, dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.conftest import create_database
from ingest_assets_tests.support.pipeline import nass_catalog
from ingest_assets_tests.support.s3 import free_port

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATASET = "nass_cel"
YEARS = (2018, 2019, 2020, 2021)
RECORDS = {2018: 1_200, 2019: 1_500, 2020: 900, 2021: 1_100}
WORKERS = ("ingest-w1", "ingest-w2")
CATALOG = nass_catalog(DATASET)

pytestmark = pytest.mark.slow


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a process we started in its own session, with its children (celery's pool)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)


def start_redis(host: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    """Debian's redis-server on ``host`` (a free port, no persistence) and its URL, once it
    answers ``PING``.
    """
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed: apt-get install -y redis-server (.ci/run does)"
    port = free_port(host)
    # (protected mode refuses clients on any address but loopback when no password is set; the
    # addresses used here are loopback or the private test network's)
    options = ["--bind", host, "--protected-mode", "no", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [server, "--port", str(port), *options],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection((host, port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert process.poll() is None, f"redis-server exited with {process.returncode}"
        assert time.monotonic() < deadline, f"redis-server did not answer on port {port}"
        time.sleep(0.2)
    return process, f"redis://{host}:{port}"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_redis("127.0.0.1", tmp_path_factory.mktemp("redis"))
    yield url
    stop(process)


@pytest.fixture(scope="module")
def standin() -> Iterator[NassStandIn]:
    with NassStandIn(NassDataset(records_per_year=RECORDS)) as server:
        yield server


@pytest.fixture
def celery_env(redis_url, standin, warehouse_url, dagster_pg_url, tmp_path) -> dict[str, str]:
    """What every run and worker shares: one environment, nothing machine-local."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    catalog = tmp_path / "datasets.yaml"
    catalog.write_text(CATALOG)
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery runs `celery`
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": dagster_pg_url,
        "DATABASE_URL": warehouse_url,
        "INGEST_DATASETS": str(catalog),
        "INGEST_STAGING": str(tmp_path / "staging"),
        "INGEST_EXECUTOR": "celery",
        "INGEST_CELERY_BROKER": f"{redis_url}/0",
        "INGEST_CELERY_BACKEND": f"{redis_url}/1",
        "NASS_API_KEY": standin.api_key,
        "NASS_BASE_URL": standin.base_url,
        "NASS_MIN_INTERVAL_SECONDS": "0",
    }


def worker_command(name: str) -> list[str]:
    """A dagster-celery worker named ``name`` with one slot, on the deployment's worker config."""
    return [
        str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
        "-y", str(PROJECT / "deploy" / "celery" / "worker.yaml"), "-n", name,
        "--", "--concurrency=1",
    ]  # fmt: skip


def await_workers(processes: list[subprocess.Popen], logs: list[Path], broker: str) -> list[str]:
    """Wait until every worker answers a Celery ping; their node names."""
    app = Celery(broker=broker)
    deadline = time.monotonic() + 120
    answered: set[str] = set()
    while len(answered) < len(processes):
        for process, log in zip(processes, logs, strict=True):
            assert process.poll() is None, f"worker exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"workers did not answer; have {answered}"
        answered |= {name for reply in app.control.ping(timeout=1) for name in reply}
    return sorted(answered)


@pytest.fixture
def workers(celery_env, tmp_path) -> Iterator[list[str]]:
    """Two Celery workers, one task at a time each, started from another working directory."""
    workdir = tmp_path / "workers"
    workdir.mkdir()
    logs = [workdir / f"{name}.log" for name in WORKERS]
    processes = [
        subprocess.Popen(
            worker_command(name),
            env=celery_env,
            cwd=workdir,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name, log in zip(WORKERS, logs, strict=True)
    ]
    try:
        yield await_workers(processes, logs, celery_env["INGEST_CELERY_BROKER"])
    finally:
        for process in processes:
            stop(process)


def facts_checksum(url: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        count, digest = conn.execute(
            "SELECT count(*), md5(string_agg(f::text, E'\\n' ORDER BY f::text)) FROM facts_data f"
        ).fetchone()
    return count, digest


def single_process_checksum(instance, pg_admin_url, standin, tmp_path, monkeypatch):
    url = create_database(pg_admin_url, "single")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "single_staging"))
    monkeypatch.setenv("NASS_API_KEY", standin.api_key)
    monkeypatch.setenv("NASS_BASE_URL", standin.base_url)
    catalog = tmp_path / "single.yaml"
    catalog.write_text(CATALOG)
    config = load_catalog(catalog)[DATASET]
    for year in YEARS:
        result = dg.materialize(
            dataset_assets(config),
            partition_key=str(year),
            resources=build_resources(),
            instance=instance,
            tags={"single_process": "baseline"},
        )
        assert result.success, f"single-process run of year {year} failed"
    return facts_checksum(url)


def launch(
    year: int, env: dict[str, str], logdir: Path, host: Sequence[str] = ()
) -> subprocess.Popen:
    """``dagster asset materialize`` of one year (prefixed by ``host``: where it runs)."""
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "ingest_assets.definitions"]
    command += ["--select", f"key:{DATASET}/raw_pages+", "--partition", str(year)]
    log = (logdir / f"run_{year}.log").open("w")
    return subprocess.Popen(
        [*host, *command], env=env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT
    )


def run_backfill(
    instance, env: dict[str, str], logdir: Path, host: Sequence[str] = ()
) -> dict[int, dict[str, str]]:
    """Launch the years as concurrent runs, wait for them, check each ran every step on a
    Celery worker and none in its own process; the worker of each step, per year.
    """
    # Give the API pool its limit up front, as docs/scaling.md asks of a deployment: runs that
    # start together on a fresh instance race to insert the pool's default limit (dagster 1.13).
    pool = api_pool(load_catalog(Path(env["INGEST_DATASETS"]))[DATASET])
    instance.event_log_storage.set_concurrency_slots(pool, 2)
    started = datetime.now(UTC)
    runs = {year: launch(year, env, logdir, host) for year in YEARS}
    for year, process in runs.items():
        code = process.wait(timeout=600)
        log = (logdir / f"run_{year}.log").read_text()
        assert code == 0, f"run of year {year} failed:\n{log[-4000:]}"
        assert env["NASS_API_KEY"] not in log

    placements: dict[int, dict[str, str]] = {}
    facts_key = dg.AssetKey([DATASET, "facts"])
    for year in YEARS:
        window = RunsFilter(tags={"dagster/partition": str(year)}, created_after=started)
        [run] = [
            run for run in instance.get_runs(window) if facts_key in (run.asset_selection or ())
        ]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        records = instance.all_logs(run.run_id)
        run_pid = next(
            r.dagster_event.pid
            for r in records
            if r.dagster_event_type == DagsterEventType.RUN_START
        )
        placements[year] = {
            r.step_key: r.dagster_event.engine_event_data.metadata["Celery worker"].value
            for r in records
            if r.dagster_event_type == DagsterEventType.ENGINE_EVENT
            and "Celery worker" in r.dagster_event.engine_event_data.metadata
        }
        steps = {f"{DATASET}__{step}" for step in ("raw_pages", "cleaned", "facts")}
        assert set(placements[year]) == steps, f"year {year}: steps not all on Celery workers"
        step_pids = {
            r.dagster_event.pid
            for r in records
            if r.dagster_event_type == DagsterEventType.STEP_START
        }
        assert step_pids and run_pid not in step_pids, f"year {year} ran a step in-process"
    return placements


def test_backfill_on_two_celery_workers_matches_a_single_process_run(
    celery_env, workers, instance, pg_admin_url, standin, warehouse_url, tmp_path, monkeypatch
):
    placements = run_backfill(instance, celery_env, tmp_path)
    used = {worker for steps in placements.values() for worker in steps.values()}
    assert used == set(workers), f"steps did not spread over both workers: {placements}"

    celery = facts_checksum(warehouse_url)
    assert celery[0] == sum(RECORDS.values())
    single = single_process_checksum(instance, pg_admin_url, standin, tmp_path, monkeypatch)
    assert celery == single
