"""A run's years as the staging IO managers see them: one value per year, keyed by partition key.

A backfill run may cover several years (the catalog's ``years_per_run``), and Dagster then hands
an asset's output and inputs for the whole range at once; its file IO managers refuse such a
range (dagster-io/dagster#14332). Here every asset returns ``{year: stream}`` and receives
``{year: handle}``, whether the run has one year or many; the IO managers write and read each
year on its own, and each year's figures go to that year's materialization.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import dagster as dg

from ingest_assets.errors import StagingError

T = TypeVar("T")


def output_years(context: dg.OutputContext, obj: Mapping[str, T]) -> Mapping[str, T]:
    """The asset's per-year output, checked against the years the run materializes."""
    expected = list(context.asset_partition_keys)
    if sorted(obj) != sorted(expected):
        raise StagingError(
            f"{'/'.join(context.asset_key.path)} returned years {sorted(obj)}, "
            f"but the run materializes {expected}"
        )
    return obj


def publish_figures(context: dg.OutputContext, figures: Mapping[str, Mapping[str, Any]]) -> None:
    """Attach each year's figures to that year's materialization."""
    if len(figures) == 1:
        context.add_output_metadata(dict(next(iter(figures.values()))))
        return
    for year, metadata in figures.items():
        context.step_context.add_asset_metadata(
            metadata, asset_key=context.asset_key, partition_key=year
        )


def load_years(context: dg.InputContext, load: Callable[[str], T]) -> dict[str, T]:
    """One handle per year of the upstream asset the run reads."""
    return {year: load(year) for year in context.asset_partition_keys}
