"""Backfill policies: how many years one backfill run covers.

A run's process start-up (imports, the instance, the definitions) costs seconds, which is most of
the time of a small year; so a dataset's ``years_per_run`` lets a backfill take several years per
run. The assets and staging IO managers take a run's years one by one (``dataset.years``), so each
year is still staged, cleaned, reconciled and swapped on its own. The default, one year per run,
keeps a failing year's retry to itself; ``all`` (``single_run()``) is what
``dagster asset materialize --partition-range`` requires.
"""

from __future__ import annotations

import warnings

import dagster as dg

from ingest_assets.kinds.base import DatasetConfig

# `backfill_policy=` on @asset is marked beta in 1.13; the warning says nothing actionable on
# every load of the definitions.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def backfill_policy(config: DatasetConfig) -> dg.BackfillPolicy:
    """Runs of at most ``years_per_run`` consecutive years, or one run for ``all``."""
    if config.years_per_run == "all":
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(config.years_per_run)
