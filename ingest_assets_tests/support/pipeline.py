"""The project's resources pointed at a stand-in, a test warehouse and a temporary staging area."""

from __future__ import annotations

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
