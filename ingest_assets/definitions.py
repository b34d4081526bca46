"""Dagster's entry point: the catalog becomes assets, checks and resources.

``workspace.yaml`` (``dagster dev``, the code location ``ingest_assets``), ``dg`` (``[tool.dg]``)
and ``dagster asset materialize -m ingest_assets.definitions`` all load ``defs`` from here. It is
built lazily, when Dagster asks for it: importing this module reads no catalog and changes no
process state. Connection settings come from ``ingest_assets.settings`` (tabled in README's
Configuration); resources are built in ``ingest_assets.resources``, secrets as ``dg.EnvVar``.
"""

from __future__ import annotations

from functools import cache

import dagster as dg
import pyarrow as pa

from ingest_assets.automation.notifications import notify_run_failure, notify_run_success
from ingest_assets.catalog import catalog_path, load_catalog
from ingest_assets.dataset import dataset_definitions
from ingest_assets.executors import executor_from_env
from ingest_assets.resources import build_resources
from ingest_assets.settings import current_settings, settings_environment


def use_a_memory_pool_that_returns_memory() -> None:
    """Pyarrow's default pool here, mimalloc, keeps freed pages resident: streaming a 1M-row
    year through a stage held about twice the memory it does with jemalloc, and jemalloc's own
    10 s decay let the peak follow the size of the largest page (docs/performance.md). Returning
    pages at once costs up to ~0.5 s of cleaning per million rows. An explicit
    ``ARROW_DEFAULT_MEMORY_POOL`` is left alone.
    """
    if current_settings().arrow_default_memory_pool:
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)  # hand freed pages back at once, not after 10 s
    except NotImplementedError:  # a pyarrow build without jemalloc
        pa.set_memory_pool(pa.system_memory_pool())


def build_definitions() -> dg.Definitions:
    """One ``dg.Definitions`` per dataset (its factory's), merged with what all share:
    resources, the executor and the run-status notification sensors.
    """
    use_a_memory_pool_that_returns_memory()
    datasets = [dataset_definitions(config) for config in load_catalog().values()]
    shared = dg.Definitions(
        resources=build_resources(),
        executor=executor_from_env(),
        sensors=[notify_run_failure, notify_run_success],
    )
    return dg.Definitions.merge(*datasets, shared)


@cache
def _definitions_for(
    environment: tuple[tuple[str, str], ...], catalog: tuple[str, int, int]
) -> dg.Definitions:
    return build_definitions()


def _catalog_stamp() -> tuple[str, int, int]:
    path = catalog_path()
    try:
        stat = path.stat()
    except OSError:
        return str(path), -1, -1  # build_definitions reports the missing catalog
    return str(path), stat.st_mtime_ns, stat.st_size


@dg.definitions
def defs() -> dg.Definitions:
    """What Dagster loads; a catalog mistake surfaces here as one line (see ``catalog``).

    Dagster calls this several times in one process (six in a ``dagster asset materialize``),
    so the result is kept while the settings and the catalog file are unchanged.
    """
    return _definitions_for(settings_environment(), _catalog_stamp())
