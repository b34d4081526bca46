"""``INGEST_EXECUTOR`` selects the engine; distributed engines refuse machine-local defaults.

The engine choice is tested on settings built directly; the last test loads the definitions
from the environment, as ``dagster dev`` does.
"""

from __future__ import annotations

import dagster as dg
import pytest

from ingest_assets.definitions import build_definitions
from ingest_assets.executors import executor_from_env
from ingest_assets.settings import ExplicitSettings

SHARED = {"DATABASE_URL": "postgresql://db/warehouse", "INGEST_STAGING": "s3://bucket/staging"}
BROKERS = {"INGEST_CELERY_BROKER": "redis://broker/0", "INGEST_CELERY_BACKEND": "redis://broker/1"}


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in ("INGEST_EXECUTOR", *SHARED, *BROKERS):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def executor_for(values: dict[str, str]):
    return executor_from_env(ExplicitSettings(**{name.lower(): v for name, v in values.items()}))


def test_default_runs_steps_in_the_runs_process():
    assert executor_for({}) is dg.in_process_executor
    assert executor_for({"INGEST_EXECUTOR": "in_process"}) is dg.in_process_executor


def test_multiprocess_is_dagsters_default_executor():
    assert executor_for({"INGEST_EXECUTOR": "multiprocess"}) is dg.multi_or_in_process_executor


def test_an_unknown_engine_is_named():
    with pytest.raises(ValueError, match=r"INGEST_EXECUTOR='dask' is not one of .*celery, k8s"):
        executor_for({"INGEST_EXECUTOR": "dask"})


@pytest.mark.parametrize("kind", ["celery", "k8s"])
def test_distributed_engines_need_shared_warehouse_and_staging(kind):
    with pytest.raises(ValueError, match="set DATABASE_URL and INGEST_STAGING"):
        executor_for({"INGEST_EXECUTOR": kind, **BROKERS})
    with pytest.raises(ValueError, match=r"set INGEST_STAGING \("):
        executor_for({"INGEST_EXECUTOR": kind, **BROKERS, "DATABASE_URL": "postgresql://x"})


def test_celery_needs_its_broker_and_backend():
    with pytest.raises(ValueError, match="INGEST_CELERY_BROKER and INGEST_CELERY_BACKEND"):
        executor_for({"INGEST_EXECUTOR": "celery", **SHARED})


@pytest.mark.parametrize("kind", ["celery", "k8s"])
def test_the_asset_jobs_run_on_the_selected_engine(monkeypatch, kind):
    set_env(monkeypatch, {"INGEST_EXECUTOR": kind, **SHARED, **BROKERS})
    defs = build_definitions()
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == kind
