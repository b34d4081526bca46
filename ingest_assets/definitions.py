"""Dagster's entry point: the catalog becomes assets, checks and resources.

``dagster dev``, ``dagster asset materialize -m ingest_assets.definitions`` and the tests all
load ``defs`` from here. Connection settings come from ``ingest_assets.settings`` (documented in
docs/operations.md); resources are built in ``ingest_assets.resources``.
"""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from ingest_assets.assets.factory import dataset_assets
from ingest_assets.automation import automation_definitions
from ingest_assets.catalog import load_catalog
from ingest_assets.executors import executor_from_env
from ingest_assets.resources import build_resources
from ingest_assets.settings import current_settings


def use_a_memory_pool_that_returns_memory() -> None:
    """pyarrow's default pool here, mimalloc, keeps freed pages resident: streaming a 1M-row
    year through a stage held about twice the memory it does with jemalloc, and jemalloc's own
    10 s decay let the peak follow the size of the largest page (docs/performance.md). Returning
    pages at once costs up to ~0.5 s of cleaning per million rows. An explicit
    ``ARROW_DEFAULT_MEMORY_POOL`` is left alone."""
    if current_settings().arrow_default_memory_pool:
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)  # hand freed pages back at once, not after 10 s
    except NotImplementedError:  # a pyarrow build without jemalloc
        pa.set_memory_pool(pa.system_memory_pool())


def build_definitions() -> dg.Definitions:
    use_a_memory_pool_that_returns_memory()
    catalog = load_catalog()
    assets = [asset for config in catalog.values() for asset in dataset_assets(config)]
    base = dg.Definitions(assets=assets, resources=build_resources(), executor=executor_from_env())
    return dg.Definitions.merge(base, automation_definitions(catalog))


defs = build_definitions()
