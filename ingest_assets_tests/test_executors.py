"""``INGEST_EXECUTOR`` selects the engine; distributed engines refuse machine-local defaults."""

from __future__ import annotations

import dagster as dg
import pytest

from ingest_assets.definitions import build_definitions
from ingest_assets.executors import executor_from_env

SHARED = {"DATABASE_URL": "postgresql://db/warehouse", "INGEST_STAGING": "s3://bucket/staging"}
BROKERS = {"INGEST_CELERY_BROKER": "redis://broker/0", "INGEST_CELERY_BACKEND": "redis://broker/1"}


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in ("INGEST_EXECUTOR", *SHARED, *BROKERS):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_default_runs_steps_in_the_runs_process(monkeypatch):
    set_env(monkeypatch, {})
    assert executor_from_env() is dg.in_process_executor
    set_env(monkeypatch, {"INGEST_EXECUTOR": "in_process"})
    assert executor_from_env() is dg.in_process_executor


def test_multiprocess_is_dagsters_default_executor(monkeypatch):
    set_env(monkeypatch, {"INGEST_EXECUTOR": "multiprocess"})
    assert executor_from_env() is dg.multi_or_in_process_executor


def test_an_unknown_engine_is_named(monkeypatch):
    set_env(monkeypatch, {"INGEST_EXECUTOR": "dask"})
    with pytest.raises(ValueError, match=r"INGEST_EXECUTOR='dask' is not one of .*celery, k8s"):
        executor_from_env()


@pytest.mark.parametrize("kind", ["celery", "k8s"])
def test_distributed_engines_need_shared_warehouse_and_staging(monkeypatch, kind):
    set_env(monkeypatch, {"INGEST_EXECUTOR": kind, **BROKERS})
    with pytest.raises(ValueError, match="set DATABASE_URL and INGEST_STAGING"):
        executor_from_env()
    set_env(monkeypatch, {"INGEST_EXECUTOR": kind, **BROKERS, "DATABASE_URL": "postgresql://x"})
    with pytest.raises(ValueError, match=r"set INGEST_STAGING \("):
        executor_from_env()


def test_celery_needs_its_broker_and_backend(monkeypatch):
    set_env(monkeypatch, {"INGEST_EXECUTOR": "celery", **SHARED})
    with pytest.raises(ValueError, match="INGEST_CELERY_BROKER and INGEST_CELERY_BACKEND"):
        executor_from_env()


@pytest.mark.parametrize("kind", ["celery", "k8s"])
def test_the_asset_jobs_run_on_the_selected_engine(monkeypatch, kind):
    set_env(monkeypatch, {"INGEST_EXECUTOR": kind, **SHARED, **BROKERS})
    defs = build_definitions()
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == kind
