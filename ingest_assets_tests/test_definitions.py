"""The code location's process setup: the Arrow memory pool it chooses, and the choice it leaves
to an operator."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "from ingest_assets.definitions import build_definitions; build_definitions(); "
    "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"
)


def _pool_after_loading_definitions(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return completed.stdout.strip().splitlines()[-1]


@pytest.mark.integration  # loads the definitions in a child process
def test_loading_the_definitions_switches_arrow_to_a_pool_that_returns_memory():
    assert _pool_after_loading_definitions() == "jemalloc"


@pytest.mark.integration
def test_an_operators_arrow_memory_pool_is_kept():
    assert _pool_after_loading_definitions(ARROW_DEFAULT_MEMORY_POOL="system") == "system"


SHARED_RESOURCES = {"pages_io_manager", "frames_io_manager", "warehouse"}


def test_the_shipped_definitions_have_every_asset_check_and_resource(monkeypatch):
    """The shipped catalog as Dagster loads it: three assets and a check per dataset, every
    resource they require, and secrets passed as env references, never as values."""
    import dagster as dg

    from ingest_assets.catalog import load_catalog
    from ingest_assets.definitions import build_definitions
    from ingest_assets.kinds.registry import SOURCE_KINDS

    monkeypatch.setenv("NASS_API_KEY", "key-0123456789")
    monkeypatch.setenv("DATABASE_URL", "postgresql://loader:pw-0123456789@db.invalid/warehouse")
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    names = sorted(load_catalog())
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {f"{n}/{stage}" for n in names for stage in ("raw_pages", "cleaned", "facts")}
    checks = {
        (c.asset_key.to_user_string(), c.name) for c in defs.resolve_asset_graph().asset_check_keys
    }
    expected_checks = ("row_counts_reconcile", "year_not_empty")
    assert checks == {(f"{n}/facts", check) for n in names for check in expected_checks}
    kinds = {kind.resource.resource_key for kind in SOURCE_KINDS.values()}
    resources = defs.resources or {}
    assert set(resources) >= SHARED_RESOURCES | kinds
    assert isinstance(resources["nass_api"].api_key, dg.EnvVar)
    assert isinstance(resources["warehouse"].database_url, dg.EnvVar)


def test_defs_is_built_once_until_the_catalog_or_the_settings_change(tmp_path, monkeypatch):
    """Dagster calls ``defs`` several times a process; it is built again only when what it is
    built from changes."""
    from ingest_assets.definitions import defs

    catalog = tmp_path / "datasets.yaml"
    entry = "  {0}:\n    source: nass\n    table: {0}\n    start_year: 2020\n    query: {{}}\n"
    catalog.write_text("datasets:\n" + entry.format("first"))
    monkeypatch.setenv("INGEST_DATASETS", str(catalog))
    built = defs()
    assert defs() is built
    catalog.write_text("datasets:\n" + entry.format("first") + entry.format("second"))
    rebuilt = defs()
    assert rebuilt is not built
    assert {key.path[0] for key in rebuilt.resolve_asset_graph().get_all_asset_keys()} == {
        "first",
        "second",
    }
    monkeypatch.setenv("NASS_MIN_INTERVAL_SECONDS", "7")
    assert defs() is not rebuilt
