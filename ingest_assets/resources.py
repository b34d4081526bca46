"""The one place resources are built from the settings: source kinds, IO managers, warehouse.

``dagster dev``, the CLI and the tests get the same resources from the same settings; tests pass
a ``Settings`` they built instead of changing the process environment.
"""

from __future__ import annotations

from ingest_assets.embedded import ingest_home
from ingest_assets.kinds.registry import SOURCE_KINDS
from ingest_assets.settings import Settings, current_settings, secret_reference
from ingest_assets.staging.frames import ParquetFramesIOManager
from ingest_assets.staging.pages import StagedPagesIOManager
from ingest_assets.warehouse.resource import Warehouse


def staging_base(config: Settings | None = None) -> str:
    """``INGEST_STAGING`` (any fsspec URL, shared by all workers) or a local folder."""
    config = config or current_settings()
    return config.ingest_staging or str(ingest_home() / "staging")


def build_resources(config: Settings | None = None) -> dict[str, object]:
    """Every resource the assets need, keyed as the assets require them."""
    config = config or current_settings()
    base = staging_base(config).rstrip("/")
    resources: dict[str, object] = {
        kind.resource.resource_key: kind.resource.from_settings(config)
        for kind in SOURCE_KINDS.values()
    }
    resources |= {
        "pages_io_manager": StagedPagesIOManager(base_path=f"{base}/pages"),
        "frames_io_manager": ParquetFramesIOManager(base_path=f"{base}/frames"),
        "warehouse": Warehouse(database_url=secret_reference("database_url", config.database_url)),
    }
    return resources
