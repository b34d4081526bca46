"""Sensors, schedules and run notifications as the daemon runs them, on a real ``dagster dev``.

One ``dagster dev`` (webserver + daemon, PostgreSQL instance storage) on a test catalog of one
Quick Stats dataset served by the stand-in, with a 5 s sensor interval and a one-minute cron:

- the new-data sensor is turned on through GraphQL (``startSensor``, the UI's toggle); its
  first tick records a baseline; a revised past year makes the next tick launch one run of the
  dataset's job for exactly that year, tagged with the year; the run succeeds, the table holds
  the revised values, the reconcile check is recorded for that year; the next tick launches
  nothing;
- that run's log shows the multiprocess executor and both staging IO managers at work;
- the refresh schedule, turned on the same way, launches its year at the next minute;
- a ``dagster asset materialize`` run with a wrong key, on the same instance, makes the failure
  sensor (watching all code locations) post once to a local webhook receiver, key redacted.

Every wait is bounded and says what it was waiting for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.assets.test_nass_pipeline import standin_rows, table_rows
from ingest_assets_tests.automation.test_notifications import Receiver
from ingest_assets_tests.conftest import create_database
from ingest_assets_tests.support.graphql import LOCATIONS, graphql, wait_for_code
from ingest_assets_tests.ui.dagster_dev import PROJECT, dagster_dev

pytestmark = pytest.mark.slow

DATASET = "nass_auto"
REVISED_YEAR = 2022
SCHEDULED_YEAR = 2023  # refresh_years 1, end_year 2023
WRONG_KEY = "wrong-key-9876-5432-1098-765432109876"
CATALOG = f"""datasets:
  {DATASET}:
    source: nass
    table: facts_data
    start_year: 2021
    end_year: 2023
    watch_years: 3
    sensor_interval_seconds: 5
    schedule: "* * * * *"
    refresh_years: 1
    query: {{source_desc: SURVEY, sector_desc: CROPS, agg_level_desc: COUNTY}}
"""
START = {
    "sensor": """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {
        __typename ... on PythonError { message } } }""",
    "schedule": """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {
        __typename ... on PythonError { message } } }""",
}
RUNS = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
    ... on Runs { results { runId status jobName tags { key value } } } } }"""
SENSOR_TICKS = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
    ... on Sensor { sensorState { ticks(limit: 20) {
        status timestamp runIds skipReason error { message } } } } } }"""
LOGS = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection {
    events { __typename ... on MessageEvent { message } } } } }"""
CHECKS = """query($key: AssetKeyInput!) {
    assetCheckExecutions(assetKey: $key, checkName: "row_counts_reconcile", limit: 10) {
        runId status evaluation { description } } }"""

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 2.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"waited {timeout:.0f}s for {what}; last seen: {last!r}")


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(pg_admin_url, receiver, tmp_path_factory):
    """The stand-in, a warehouse and ``dagster dev`` on the test catalog."""
    work = tmp_path_factory.mktemp("automation")
    (work / "datasets.yaml").write_text(CATALOG)
    records = dict.fromkeys((2021, REVISED_YEAR, SCHEDULED_YEAR), 200)
    with NassStandIn(NassDataset(records_per_year=records)) as standin:
        env = {
            **os.environ,
            "INGEST_DATASETS": str(work / "datasets.yaml"),
            "INGEST_STAGING": str(work / "staging"),
            "DATABASE_URL": create_database(pg_admin_url, "warehouse"),
            "DAGSTER_PG_URL": create_database(pg_admin_url, "dagster_auto"),
            "NASS_API_KEY": standin.api_key,
            "NASS_BASE_URL": standin.base_url,
            "NASS_MIN_INTERVAL_SECONDS": "0",
            "INGEST_WEBHOOK_URL": receiver.url,
        }
        home = work / "dagster_home"
        with dagster_dev(env, home) as url:
            wait_for_code(url)
            yield {"url": url, "env": env, "home": home, "standin": standin}


def selector(url: str, kind: str, name: str) -> dict[str, str]:
    [location] = graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]
    return {
        "repositoryLocationName": location["name"],
        "repositoryName": "__repository__",
        f"{kind}Name": name,
    }


def start(url: str, kind: str, name: str) -> dict[str, str]:
    chosen = selector(url, kind, name)
    answer = graphql(url, START[kind], {"s": chosen})
    outcome = answer["startSensor" if kind == "sensor" else "startSchedule"]
    assert outcome["__typename"] in ("Sensor", "ScheduleStateResult"), outcome
    return chosen


def runs(url: str, key: str, value: str) -> list[dict[str, Any]]:
    found = graphql(url, RUNS, {"tags": [{"key": key, "value": value}]})["runsOrError"]
    return found["results"]


def ticks(url: str, chosen: dict[str, str]) -> list[dict[str, Any]]:
    sensor = graphql(url, SENSOR_TICKS, {"s": chosen})["sensorOrError"]
    return sensor["sensorState"]["ticks"]  # newest first


def finished(url: str, run_id: str) -> str | None:
    [run] = [r for r in runs_all(url) if r["runId"] == run_id]
    return run["status"] if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None


def runs_all(url: str) -> list[dict[str, Any]]:
    return graphql(url, RUNS, {"tags": []})["runsOrError"]["results"]


def tag(run: dict[str, Any], key: str) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


def run_messages(url: str, run_id: str) -> list[str]:
    events = graphql(url, LOGS, {"id": run_id})["logsForRun"]["events"]
    return [f"{event['__typename']}: {event.get('message') or ''}" for event in events]


def failure_posts(receiver: Receiver) -> list[str]:
    return [post["text"] for post in receiver.posts if "failed" in post["text"]]


def launch_failing_cli_run(env: dict[str, str], home: Path) -> subprocess.CompletedProcess:
    """``dagster asset materialize`` as CI runs it, on the same instance, with a wrong key."""
    command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize"]
    command += ["-m", "ingest_assets.definitions", "--select", f"{DATASET}/raw_pages"]
    command += ["--partition", "2021"]
    return subprocess.run(
        command,
        cwd=PROJECT,
        env={**env, "DAGSTER_HOME": str(home), "NASS_API_KEY": WRONG_KEY},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_sensor_schedule_and_failure_notice_under_the_daemon(stack, receiver):
    url, standin = stack["url"], stack["standin"]
    sensor = start(url, "sensor", f"{DATASET}_new_data")
    start(url, "schedule", f"{DATASET}_refresh")

    baseline = wait_for("the sensor's first tick", lambda: ticks(url, sensor), timeout=90)
    assert baseline[-1]["status"] == "SKIPPED" and not baseline[-1]["runIds"], baseline[-1]
    assert "no change" in (baseline[-1]["skipReason"] or ""), baseline[-1]

    standin.dataset.revise(REVISED_YEAR)
    name = f"{DATASET}_new_data"
    requested = wait_for(
        "a run requested by the sensor", lambda: runs(url, "dagster/sensor_name", name), 90
    )
    assert len(requested) == 1, f"the sensor launched {len(requested)} runs: {requested}"
    [run] = requested
    assert tag(run, "dagster/partition") == str(REVISED_YEAR), run["tags"]
    assert run["jobName"] == f"{DATASET}_job"
    status = wait_for("the sensor's run to finish", lambda: finished(url, run["runId"]), 180)
    assert status == "SUCCESS"
    warehouse = stack["env"]["DATABASE_URL"]
    assert table_rows(warehouse, REVISED_YEAR) == standin_rows(standin, REVISED_YEAR)

    # The run went through the project's executor and both staging IO managers.
    messages = run_messages(url, run["runId"])
    assert any("multiprocess executor" in m for m in messages), messages[:10]
    for manager in ("pages_io_manager", "frames_io_manager"):
        assert any(m.startswith("HandledOutputEvent") and manager in m for m in messages), manager

    checks = graphql(url, CHECKS, {"key": {"path": [DATASET, "facts"]}})
    [execution] = [
        e
        for e in checks["assetCheckExecutions"]
        if e["runId"] == run["runId"] and e["status"] != "SKIPPED"  # planned-only records
    ]
    assert execution["status"] == "SUCCEEDED"
    assert f"year {REVISED_YEAR}:" in execution["evaluation"]["description"], execution

    def a_later_tick() -> dict[str, Any] | None:
        later = [t for t in ticks(url, sensor) if run["runId"] not in t["runIds"]]
        newest = later[0] if later else None
        requested = next(t for t in ticks(url, sensor) if run["runId"] in t["runIds"])
        if not newest or newest["timestamp"] <= requested["timestamp"]:
            return None
        return None if newest["status"] == "STARTED" else newest  # a tick still evaluating

    after = wait_for("a sensor tick after the run", a_later_tick, timeout=60)
    assert after["status"] == "SKIPPED" and not after["runIds"], after

    cli = launch_failing_cli_run(stack["env"], stack["home"])
    assert cli.returncode != 0, cli.stdout[-2000:]
    [notice] = wait_for("the failure notice", lambda: failure_posts(receiver), timeout=120)
    assert f"{DATASET}/raw_pages" in notice and "year 2021" in notice and "401" in notice
    assert WRONG_KEY not in notice

    scheduled = wait_for(
        "a run launched by the schedule",
        lambda: runs(url, "dagster/schedule_name", f"{DATASET}_refresh"),
        timeout=90,
    )
    assert [tag(r, "dagster/partition") for r in scheduled] == [str(SCHEDULED_YEAR)]
    status = wait_for(
        "the schedule's run to finish", lambda: finished(url, scheduled[0]["runId"]), 180
    )
    assert status == "SUCCESS"
    with psycopg.connect(warehouse) as conn:
        years = conn.execute("SELECT DISTINCT year FROM facts_data ORDER BY 1").fetchall()
    assert years == [(REVISED_YEAR,), (SCHEDULED_YEAR,)]
    assert len(failure_posts(receiver)) == 1  # the failing run was reported once
