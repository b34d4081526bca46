"""Whole materializations under faults: the facts end identical to a fault-free run, and a re-run
after a failure mid-year fetches only the slices that are missing or corrupt."""

from __future__ import annotations

import json
import threading
import time

import dagster as dg
import pytest

from ingest_assets.dataset import dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass.source import NassApi
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.conftest import create_database
from ingest_assets_tests.reliability.faults import inject_mix, year_checksum

pytestmark = pytest.mark.reliability

QUERY = {"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "COUNTY"}
CONFIG = NassDatasetConfig(
    name="nass_rel", source="nass", table="facts_data", start_year=2018, query=QUERY
)
YEAR = 2020
RECORDS = 70_000
# Every fault the stand-in knows, spread over its three endpoints.
MIX = [
    ("429", 1, None),
    ("429-retry-after-0", 1, "get_counts"),
    ("429-retry-after-2", 1, "api_GET"),
    ("500", 1, "get_param_values"),
    ("502", 1, "api_GET"),
    ("503", 2, None),
    ("reset", 1, "get_counts"),
    ("reset", 1, "api_GET"),
    ("truncate", 1, "api_GET"),
    ("slow:3", 1, "api_GET"),
    ("html200", 1, "get_counts"),
    ("html200", 1, "api_GET"),
]


@pytest.fixture(scope="module")
def standin():
    with NassStandIn(NassDataset(records_per_year={YEAR: RECORDS})) as server:
        yield server


def nass_api(standin: NassStandIn, **options) -> NassApi:
    settings = {
        "min_delay_seconds": 0.02,
        "backoff_base_seconds": 0.02,
        "backoff_cap_seconds": 0.1,
        "retry_after_cap_seconds": 0.5,
        "read_timeout_seconds": 2.0,
        "max_attempts": 20,
        **options,
    }
    return NassApi(api_key=standin.api_key, base_url=standin.base_url, **settings)


@pytest.fixture
def environment(standin, warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("NASS_API_KEY", standin.api_key)
    standin.clear_faults()
    standin.reset_stats()
    yield tmp_path / "staging"
    standin.clear_faults()


def materialize(instance, standin, api: NassApi | None = None, **kwargs):
    resources = {**build_resources(), "nass_api": api or nass_api(standin)}
    return dg.materialize(
        dataset_assets(CONFIG),
        partition_key=str(YEAR),
        resources=resources,
        instance=instance,
        **kwargs,
    )


def wait_for_served(standin: NassStandIn, expected: int) -> int:
    deadline = time.monotonic() + 30  # slow responses are counted when their sleep ends
    while sum(standin.stats.faults_served.values()) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return sum(standin.stats.faults_served.values())


def test_a_fault_mix_ends_with_the_table_of_a_fault_free_run(
    instance, standin, environment, warehouse_url, pg_admin_url, monkeypatch, tally
):
    assert materialize(instance, standin).success
    clean = year_checksum(warehouse_url, "facts_data", YEAR)
    assert clean[0] == clean[1] == RECORDS

    faulty_url = create_database(pg_admin_url, "warehouse_faults")
    monkeypatch.setenv("DATABASE_URL", faulty_url)
    monkeypatch.setenv("INGEST_STAGING", str(environment.parent / "staging_faults"))
    standin.reset_stats()
    injected = inject_mix(standin.inject, MIX)
    result = materialize(instance, standin)
    served = wait_for_served(standin, injected)
    tally.add("faults_injected", served)
    faulty = year_checksum(faulty_url, "facts_data", YEAR)
    tally.add("rows_lost", max(0, clean[0] - faulty[0]))
    tally.add("rows_duplicated", faulty[0] - faulty[1])
    assert result.success
    tally.add("runs_survived")
    assert served == injected
    assert faulty == clean


def _revoke_key_after_two_pages(standin: NassStandIn, stop: threading.Event) -> None:
    """Once two slices' pages have been served, the key is revoked: later requests get 401,
    which fails the step at once (no Dagster retry), mid-year."""
    while not stop.is_set():
        if standin.stats.requests_by_endpoint["api_GET"] >= 2:
            standin.api_key = "revoked-key-0000"
            return
        time.sleep(0.002)


def _raw_pages_metadata(result) -> dict:
    [event] = result.asset_materializations_for_node("nass_rel__raw_pages")
    return {k: v.value for k, v in event.metadata.items()}


def test_a_rerun_after_a_failure_mid_year_refetches_only_missing_or_corrupt_slices(
    instance, standin, environment, warehouse_url, tally
):
    stop = threading.Event()
    key = standin.api_key
    watcher = threading.Thread(target=_revoke_key_after_two_pages, args=(standin, stop))
    watcher.start()
    api = nass_api(standin, min_interval_seconds=0.05)
    try:
        failed = materialize(instance, standin, api, raise_on_error=False)
    finally:
        stop.set()
        watcher.join()
        standin.api_key = key
    tally.add("faults_injected")
    assert not failed.success
    error = failed.get_step_failure_events()[0].step_failure_data.error.to_string()
    assert "dataset nass_rel, year 2020, slice state_alpha=" in error
    assert "rejected the API key" in error

    folder = environment / "pages" / "nass_rel" / "raw_pages" / str(YEAR)
    partial = json.loads((folder / "manifest.partial.json").read_text())
    staged = partial["slices"]
    assert len(staged) >= 2 and not (folder / "manifest.json").exists()
    corrupt = folder / staged[0]["pages"][0]["file"]  # damage one page: its checksum must say so
    corrupt.write_bytes(b"\0" * 64 + corrupt.read_bytes()[64:])
    expect_reused = len(staged) - 1

    standin.reset_stats()
    rerun = materialize(instance, standin)
    assert rerun.success
    tally.add("runs_survived")
    metadata = _raw_pages_metadata(rerun)
    total = metadata["slices"]
    assert total > len(staged)  # the failure really was mid-year
    assert metadata["slices_reused"] == expect_reused
    assert standin.stats.requests_by_endpoint["api_GET"] == total - expect_reused
    logs = [
        e.message
        for e in instance.all_logs(rerun.run_id)
        if "reused" in (e.message or "") and "staged slices" in e.message
    ]
    assert logs == [f"nass_rel {YEAR}: reused {expect_reused} of {total} staged slices"]
    rows, distinct, _ = year_checksum(warehouse_url, "facts_data", YEAR)
    tally.add("rows_lost", max(0, RECORDS - rows))
    tally.add("rows_duplicated", rows - distinct)
    assert rows == distinct == RECORDS
    assert not (folder / "manifest.partial.json").exists()
