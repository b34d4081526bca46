"""``<dataset>/bulk_file``: the downloaded and split file, upstream of the year partitions.

An unpartitioned asset, so Dagster shows one materialization per pass (or reuse) with the
file's figures. The year-partitioned ``raw_pages`` depends on it without an input (``deps``):
it reads only its own year's part through the split's manifest, never the whole file. The
asset has its own job and sensor: the sensor watches the listing page and the file's ETag and
runs the pass when a new file is published; the dataset's new-data sensor then sees which
years' counts or checksums changed and requests just those years.
"""

import dagster as dg

from ingest_assets.kinds.base import DatasetConfig, Upstream
from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.kinds.nass_bulk.source import NassBulkFiles
from ingest_assets.kinds.nass_bulk.store import SplitStore

RESOURCE_KEY = NassBulkFiles.resource_key


def bulk_file_key(name: str) -> dg.AssetKey:
    """The key of a bulk dataset's ``bulk_file`` asset, which its year partitions depend on."""
    return dg.AssetKey([name, "bulk_file"])


def _metadata(manifest: dict, reused: bool, disk_bytes: int) -> dict[str, dg.MetadataValue]:
    years = manifest["years"]
    return {
        "file": dg.MetadataValue.text(manifest["file"]),
        "etag": dg.MetadataValue.text(manifest["etag"]),
        "last_modified": dg.MetadataValue.text(manifest["last_modified"]),
        "bytes": dg.MetadataValue.int(manifest["bytes"]),
        "bytes_downloaded": dg.MetadataValue.int(0 if reused else manifest["bytes_downloaded"]),
        "bytes_from_disk": dg.MetadataValue.int(
            0 if reused else manifest.get("bytes_from_disk", 0)
        ),
        "resumes": dg.MetadataValue.int(manifest["resumes"]),
        "rows_read": dg.MetadataValue.int(manifest["rows_read"]),
        "rows_kept": dg.MetadataValue.int(sum(p["rows"] for p in years.values())),
        "rows_kept_per_year": dg.MetadataValue.json({y: p["rows"] for y, p in years.items()}),
        "seconds": dg.MetadataValue.float(manifest["seconds"]),
        "reused": dg.MetadataValue.bool(reused),
        "disk_bytes": dg.MetadataValue.int(disk_bytes),
    }


def bulk_file_asset(config: NassBulkDatasetConfig) -> dg.AssetsDefinition:
    """The asset of one dataset: a pass over the current file, or the reuse of its split."""
    # The dataset package builds on the kinds registry, so its step helpers are imported here.
    from ingest_assets.dataset.assets import FETCH_RETRY, failing_without_retries

    @dg.asset(
        key=bulk_file_key(config.name),
        group_name=config.name,
        required_resource_keys={RESOURCE_KEY},
        kinds={"nass_bulk", "gzip"},
        retry_policy=FETCH_RETRY,
        owners=config.owners or None,
        tags={"source": config.source, "dataset": config.name},
        description=f"The Quick Stats bulk file {config.file!r}, downloaded and split by year "
        "in one pass (rows matching the query); reused while its name and ETag are unchanged.",
    )
    def bulk_file(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        files: NassBulkFiles = getattr(context.resources, RESOURCE_KEY)
        store = SplitStore(files.work_dir, config)
        with failing_without_retries():
            remote = files.remote(config)
            manifest, reused = store.ensure(remote, files.download, context.log.info)
        disk = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
        return dg.MaterializeResult(metadata=_metadata(manifest, reused, disk))

    return bulk_file


def bulk_file_sensor(config: NassBulkDatasetConfig, job) -> dg.SensorDefinition:
    """Runs the pass when the listed file's name or ETag differs from the current split's.

    Before the first split it requests nothing: loading history is a backfill's decision.
    """

    @dg.sensor(
        name=f"{config.name}_bulk_file_sensor",
        job=job,
        minimum_interval_seconds=config.sensor_interval_seconds,
        required_resource_keys={RESOURCE_KEY},
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def watch(context: dg.SensorEvaluationContext):
        files: NassBulkFiles = getattr(context.resources, RESOURCE_KEY)
        current = SplitStore(files.work_dir, config).current()
        if current is None:
            return dg.SkipReason(f"{config.name}: no split yet; materialize bulk_file first")
        remote = files.remote(config)
        if remote.version == f"{current[1]['file']}@{current[1]['etag']}":
            return dg.SkipReason(f"{config.name}: {remote.version} is already split")
        return dg.RunRequest(run_key=remote.version, tags={"ingest/bulk_file": remote.name})

    return watch


def bulk_upstream(config: DatasetConfig) -> Upstream:
    """The asset, job and sensor the kind adds upstream of the dataset's ``raw_pages``."""
    assert isinstance(config, NassBulkDatasetConfig)
    asset = bulk_file_asset(config)
    job = dg.define_asset_job(
        f"{config.name}_bulk_file_job",
        selection=[asset.key],
        description=f"Downloads and splits the bulk file of {config.name} (or reuses it).",
    )
    definitions = dg.Definitions(
        assets=[asset], jobs=[job], sensors=[bulk_file_sensor(config, job)]
    )
    return Upstream(keys=(asset.key,), assets=(asset,), definitions=definitions)
