"""The factory: one catalog entry → that dataset's whole ``dg.Definitions``.

A dataset is three assets (``raw_pages`` → ``cleaned`` → ``facts``, with the reconcile check),
one job over them named ``<dataset>_job`` (its partitions are the dataset's years), and the
new-data sensor and refresh schedule, both targeting that job, so every run they start is a
run of the job for one year. The CLI's demo, the benchmark and the tests resolve the same job
by name (``job_name``) instead of building their own selection.
"""

from __future__ import annotations

import dagster as dg

from ingest_assets.automation.schedules import refresh_schedule
from ingest_assets.automation.sensors import new_data_sensor
from ingest_assets.dataset.assets import cleaned_asset, raw_pages_asset
from ingest_assets.dataset.facts import facts_asset
from ingest_assets.dataset.spec import DatasetSpec
from ingest_assets.kinds.base import DatasetConfig, Upstream


def job_name(dataset: str) -> str:
    """The name of a dataset's job: ``<dataset>_job``."""
    return f"{dataset}_job"


def _upstream(spec: DatasetSpec) -> Upstream:
    """What the kind adds upstream of ``raw_pages`` (nothing for most kinds)."""
    if spec.kind.upstream is None:
        return Upstream(keys=(), assets=(), definitions=dg.Definitions())
    return spec.kind.upstream(spec.config)


def _assets(spec: DatasetSpec, upstream: Upstream) -> list[dg.AssetsDefinition]:
    return [raw_pages_asset(spec, upstream.keys), cleaned_asset(spec), facts_asset(spec)]


def dataset_assets(config: DatasetConfig) -> list[dg.AssetsDefinition]:
    """The three assets of one catalog entry (the check inside ``facts``) and any upstream
    asset of its kind, without the rest.
    """
    spec = DatasetSpec.of(config)
    upstream = _upstream(spec)
    return [*upstream.assets, *_assets(spec, upstream)]


def dataset_job(
    spec: DatasetSpec, upstream: Upstream | None = None
) -> dg.UnresolvedAssetJobDefinition:
    """All of the dataset's year assets and its check, one year per run (a kind's upstream
    assets, unpartitioned, have their own job).
    """
    upstream = upstream or _upstream(spec)
    return dg.define_asset_job(
        job_name(spec.name),
        selection=dg.AssetSelection.groups(spec.name) - dg.AssetSelection.assets(*upstream.keys),
        description=f"Loads one year of {spec.name}: raw pages, cleaned, facts and its check.",
        tags={"dataset": spec.name},
    )


def dataset_definitions(config: DatasetConfig) -> dg.Definitions:
    """Assets, check, job, new-data sensor and refresh schedule of one catalog entry."""
    spec = DatasetSpec.of(config)
    upstream = _upstream(spec)
    job = dataset_job(spec, upstream)
    own = dg.Definitions(
        assets=_assets(spec, upstream),
        jobs=[job],
        sensors=[new_data_sensor(config, job)],
        schedules=[refresh_schedule(config, job)],
    )
    return dg.Definitions.merge(own, upstream.definitions)
