"""Which engine runs a run's steps, chosen by configuration alone (``INGEST_EXECUTOR``).

``in_process`` (default) runs a run's steps one after another in the run's own process. A
partition's run is three linear steps (raw_pages → cleaned → facts) with nothing to run side by
side, and a process per step paid Dagster's and the project's imports and a rebuild of the
definitions three times over — most of a small year's time (docs/performance.md). Pools still
apply in-process (a step waits for its ``api_<host>`` slot). ``multiprocess`` is Dagster's
default executor: one process per step on the run's machine (runs of many assets at once), or
``execution: {config: {in_process: {}}}`` per run. ``celery``
sends every step to Celery workers through ``INGEST_CELERY_BROKER`` (results via
``INGEST_CELERY_BACKEND``; workers read the same two); ``k8s`` runs every step as a
Kubernetes Job, inheriting image, namespace and env from the instance's ``K8sRunLauncher``. The
distributed engines need everything a step reads to be reachable from any worker, so they refuse to
load without an explicit warehouse URL and staging location (the defaults live under the local
``INGEST_HOME``, which another worker cannot see). See docs/scaling.md.
"""

from __future__ import annotations

import dagster as dg

from ingest_assets.settings import Settings, current_settings

EXECUTOR_KINDS = ("in_process", "multiprocess", "celery", "k8s")
SHARED_SETTINGS = ("DATABASE_URL", "INGEST_STAGING")
CELERY_SETTINGS = ("INGEST_CELERY_BROKER", "INGEST_CELERY_BACKEND")


def _unset(config: Settings, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if getattr(config, name.lower()) is None]


def executor_from_env(config: Settings | None = None) -> dg.ExecutorDefinition:
    """The executor named by ``INGEST_EXECUTOR`` (``in_process`` when unset)."""
    config = config or current_settings()
    kind = config.ingest_executor.strip().lower() or "in_process"
    if kind not in EXECUTOR_KINDS:
        raise ValueError(f"INGEST_EXECUTOR={kind!r} is not one of {', '.join(EXECUTOR_KINDS)}")
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multi_or_in_process_executor
    missing = _unset(config, SHARED_SETTINGS)
    if missing:
        raise ValueError(
            f"INGEST_EXECUTOR={kind} runs steps on other workers, which cannot reach this "
            f"machine's embedded defaults: set {' and '.join(missing)} (a shared PostgreSQL URL "
            "and a shared fsspec URL or folder)"
        )
    if kind == "celery":
        from dagster_celery import celery_executor

        unset = _unset(config, CELERY_SETTINGS)
        if unset:
            raise ValueError(f"INGEST_EXECUTOR=celery needs {' and '.join(unset)} (broker URLs)")
        # Env references, resolved when a run starts: runs read the variables workers read.
        return celery_executor.configured(
            {"broker": {"env": CELERY_SETTINGS[0]}, "backend": {"env": CELERY_SETTINGS[1]}}
        )
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor
