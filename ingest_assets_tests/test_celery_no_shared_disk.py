"""The Celery backfill on hosts that share no disk, staging on S3, over a private network.

Three test hosts, each a network namespace on a private /24 (``support/netns.py``): ``ctl``
launches the runs (``dagster asset materialize``, as in the one-machine test), ``w1`` and ``w2``
are Celery workers. Each sees only its own folder of the tests' tree (its ``INGEST_HOME``, its
``DAGSTER_HOME``, its copy of the catalog), so nothing can pass between steps through a disk;
staging is ``s3://`` on moto's server. The hub (the bridge's address in the root namespace)
serves what a deployment shares: Redis, a PostgreSQL listening on that address alone (Dagster's
storage and the warehouse), the S3 endpoint and the NASS stand-in. The namespaces have no default
route, so no process of the pipeline can reach any address but these.

The backfill's table must equal a single-process run's, and no secret (S3 secret key, database
password, API key) may appear in Dagster's storage, the hosts' folders (compute logs), the staged
objects or any process's output.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.support.netns import PrivateNetwork
from ingest_assets_tests.support.pg_on_address import PostgresOnAddress
from ingest_assets_tests.support.s3 import SECRET_KEY, S3Endpoint, free_port
from ingest_assets_tests.support.secrets import blobs_text, dagster_storage_text, files_text, leaks
from ingest_assets_tests.test_celery_backfill import (
    BIN,
    CATALOG,
    DATASET,
    PROJECT,
    RECORDS,
    YEARS,
    await_workers,
    facts_checksum,
    run_backfill,
    single_process_checksum,
    start_redis,
    stop,
    worker_command,
)

pytestmark = pytest.mark.slow

WORKER_HOSTS = ("w1", "w2")
BUCKET = "ingest-cluster"
STAGING = f"s3://{BUCKET}/celery"
PASSWORD = "pg-5e0a1f-NO-SHARED-DISK-c93b"


@dataclass
class Cluster:
    """The network and what the hub serves on it."""

    net: PrivateNetwork
    postgres: PostgresOnAddress
    broker: str
    s3: S3Endpoint
    standin: NassStandIn
    hosts: Path  # one folder per host below
    hidden: Path  # the tree each host sees nothing of but its own folder

    def env(self, host: str) -> dict[str, str]:
        """A host's environment: its own folders, the hub's services, nothing else shared."""
        own = self.hosts / host
        home = own / "dagster_home"
        home.mkdir(parents=True)
        shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
        (own / "datasets.yaml").write_text(CATALOG)
        dagster_url = self.postgres.url("dagster").replace(
            "postgresql://", "postgresql+psycopg2://"
        )
        return {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "INGEST_HOME": str(own / "ingest"),
            "DAGSTER_HOME": str(home),
            "INGEST_DATASETS": str(own / "datasets.yaml"),
            "INGEST_STAGING": STAGING,
            "DAGSTER_PG_URL": dagster_url,
            "DATABASE_URL": self.postgres.url("warehouse"),
            "INGEST_EXECUTOR": "celery",
            "INGEST_CELERY_BROKER": f"{self.broker}/0",
            "INGEST_CELERY_BACKEND": f"{self.broker}/1",
            "NASS_API_KEY": self.standin.api_key,
            "NASS_BASE_URL": self.standin.base_url,
            "NASS_MIN_INTERVAL_SECONDS": "0",
            **self.s3.env(),
        }

    def command(self, host: str, command: list[str]) -> list[str]:
        return self.net.host_command(host, self.hosts / host, self.hidden, command)


@pytest.fixture
def cluster(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("unshare")):
        reason = "network and mount namespaces need root, ip (iproute2) and unshare"
        if os.environ.get("CI") == "true":  # CI runs as root with both installed (.ci/run)
            pytest.fail(reason)
        pytest.skip(reason)
    hub = tmp_path / "hub"
    hub.mkdir()
    with ExitStack() as stack:
        net = stack.enter_context(PrivateNetwork(("ctl", *WORKER_HOSTS)))
        postgres = PostgresOnAddress(
            hub / "pgdata", net.hub, free_port(net.hub), str(net.subnet), PASSWORD
        )
        stack.enter_context(postgres)
        for database in ("dagster", "warehouse"):
            postgres.create_database(database)
        redis, broker = start_redis(net.hub, hub)
        stack.callback(stop, redis)
        s3 = stack.enter_context(S3Endpoint(BUCKET, net.hub))
        standin = stack.enter_context(
            NassStandIn(NassDataset(records_per_year=RECORDS), host=net.hub)
        )
        yield Cluster(
            net, postgres, broker, s3, standin, tmp_path / "hosts", tmp_path_factory.getbasetemp()
        )


def assert_isolated(cluster: Cluster, pids: dict[str, int], session_home: Path) -> None:
    """Each worker: its own network namespace with no default route, reaching the hub but not
    this machine's loopback; its own folder visible, the other's and the session's not.
    """
    namespaces = {os.readlink(f"/proc/{pid}/ns/net") for pid in pids.values()}
    assert len(namespaces) == len(pids) and os.readlink("/proc/self/ns/net") not in namespaces
    with socket.socket() as listener:  # something on this machine's loopback, outside the net
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        loopback_port = listener.getsockname()[1]
        broker_host, broker_port = cluster.broker.removeprefix("redis://").split(":")
        probe = (
            "import socket, sys\n"
            "def reach(host, port):\n"
            "    try:\n"
            "        socket.create_connection((host, port), timeout=3).close()\n"
            "        return True\n"
            "    except OSError:\n"
            "        return False\n"
            f"print(reach({broker_host!r}, {broker_port}), reach('127.0.0.1', {loopback_port}))"
        )
        for host, pid in pids.items():
            assert "default" not in cluster.net.routes(host)
            namespace = cluster.net.namespaces[host]
            reached = subprocess.run(
                ["ip", "netns", "exec", namespace, sys.executable, "-c", probe],
                capture_output=True, text=True, check=True,
            ).stdout.split()  # fmt: skip
            assert reached == ["True", "False"], f"{host}: hub, loopback reached = {reached}"
            root = Path(f"/proc/{pid}/root")
            assert (root / str(cluster.hosts / host).lstrip("/")).is_dir()
            for other in set(pids) - {host}:
                assert not (root / str(cluster.hosts / other).lstrip("/")).exists()
            assert not (root / str(session_home).lstrip("/")).exists()


def test_backfill_on_workers_that_share_no_disk_matches_a_single_process_run(
    cluster, instance, ingest_home, pg_admin_url, tmp_path, monkeypatch
):
    logs = tmp_path / "logs"
    logs.mkdir()
    worker_logs = [logs / f"{host}.log" for host in WORKER_HOSTS]
    envs = {host: cluster.env(host) for host in ("ctl", *WORKER_HOSTS)}
    hub_home = tmp_path / "hub" / "dagster_home"
    hub_home.mkdir()
    storage = {"postgres": {"postgres_url": envs["ctl"]["DAGSTER_PG_URL"]}}
    with ExitStack() as stack:
        hub_instance = stack.enter_context(
            dg.instance_for_test(temp_dir=str(hub_home), overrides={"storage": storage})
        )
        processes = []
        for host, log in zip(WORKER_HOSTS, worker_logs, strict=True):
            process = subprocess.Popen(
                cluster.command(host, worker_command(f"ingest-{host}")),
                env=envs[host],
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            stack.callback(stop, process)
            processes.append(process)
        workers = await_workers(processes, worker_logs, envs["ctl"]["INGEST_CELERY_BROKER"])
        pids = {host: p.pid for host, p in zip(WORKER_HOSTS, processes, strict=True)}
        assert_isolated(cluster, pids, ingest_home)
        placements = run_backfill(hub_instance, envs["ctl"], logs, cluster.command("ctl", []))
        used = {worker for steps in placements.values() for worker in steps.values()}
        assert used == set(workers), f"steps did not spread over both workers: {placements}"
        storage_text = dagster_storage_text(envs["ctl"]["DAGSTER_PG_URL"], DATASET)
    # workers stopped: their compute logs and output are complete

    distributed = facts_checksum(cluster.postgres.url("warehouse"))
    assert distributed[0] == sum(RECORDS.values())
    single = single_process_checksum(instance, pg_admin_url, cluster.standin, tmp_path, monkeypatch)
    assert distributed == single

    staged = cluster.s3.objects("celery/")
    for year in YEARS:
        assert f"celery/pages/{DATASET}/raw_pages/{year}/manifest.json" in staged
        assert f"celery/frames/{DATASET}/cleaned/{year}.parquet" in staged
    assert not list(cluster.hosts.glob("*/**/staging"))  # no host staged on its own disk
    traces = {
        "dagster storage": storage_text,
        "hosts' folders (compute logs)": files_text(cluster.hosts),
        "staged objects": blobs_text(staged.values()),
        "process output": "\n".join(p.read_text() for p in logs.iterdir()),
    }
    assert leaks(traces, (SECRET_KEY, PASSWORD, cluster.standin.api_key)) == set()
