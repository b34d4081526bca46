"""The project's resources pointed at a stand-in, a test warehouse and a temporary staging area."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest_assets.standin.nass_server import NassStandIn


def nass_resources(
    monkeypatch: pytest.MonkeyPatch, standin: NassStandIn, warehouse_url: str, staging: Path
) -> dict[str, object]:
    """``build_resources()`` as ``dagster dev`` would build it, with the environment set."""
    from ingest_assets.definitions import build_resources

    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGEST_STAGING", str(staging))
    monkeypatch.setenv("NASS_API_KEY", standin.api_key)
    monkeypatch.setenv("NASS_BASE_URL", standin.base_url)
    return build_resources()


PROJECT = Path(__file__).resolve().parents[2]


def cli_environment(
    tmp_path: Path,
    standin: NassStandIn,
    warehouse_url: str,
    dagster_pg_url: str,
    catalog: Path | None = None,
) -> dict[str, str]:
    """The environment a `dagster` CLI process runs with, as CI runs it: a fresh DAGSTER_HOME
    with the project's dagster.yaml, the test warehouse, the catalog (default: the shipped one)
    and the stand-in."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": dagster_pg_url,
        "DATABASE_URL": warehouse_url,
        "INGEST_STAGING": str(tmp_path / "staging"),
        "NASS_API_KEY": standin.api_key,
        "NASS_BASE_URL": standin.base_url,
        **({"INGEST_DATASETS": str(catalog)} if catalog else {}),
    }
