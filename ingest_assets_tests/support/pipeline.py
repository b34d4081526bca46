"""The project's resources pointed at a stand-in, a test warehouse and a temporary staging area."""

from __future__ import annotations

import os
import subprocess
import sys
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


def nass_catalog(dataset: str) -> str:
    """A one-entry catalog (YAML text): ``dataset``, NASS survey crops by county, from 2018."""
    return f"""datasets:
  {dataset}:
    source: nass
    table: facts_data
    start_year: 2018
    query: {{source_desc: SURVEY, sector_desc: CROPS, agg_level_desc: COUNTY}}
"""


PROJECT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def cli_env(
    tmp_path: Path, catalog: str, dagster_pg_url: str, warehouse_url: str, **extra: str
) -> dict[str, str]:
    """The environment of a ``dagster`` CLI run on ``catalog`` (YAML text): its own Dagster
    home on the test instance's database, the test warehouse and staging, plus ``extra``."""
    (tmp_path / "datasets.yaml").write_text(catalog)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": dagster_pg_url,
        "DATABASE_URL": warehouse_url,
        "INGEST_DATASETS": str(tmp_path / "datasets.yaml"),
        "INGEST_STAGING": str(tmp_path / "staging"),
        **extra,
    }


def run_dagster(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``dagster <args> -m ingest_assets.definitions`` in the project, as CI runs it."""
    command = [DAGSTER, *args, "-m", "ingest_assets.definitions"]
    return subprocess.run(
        command, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=300
    )
