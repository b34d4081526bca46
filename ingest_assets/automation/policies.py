"""Backfill policies per source kind: how many years one backfill run covers.

Every kind here calls an API, and the staging IO managers store one year per file, so a
backfill runs one year per run (``multi_run(1)``): a failed year retries alone, and the API's
pool (``pool=api_<host>`` on raw_pages, limit in ``dagster.yaml``) spaces the requests out. A
kind that could load a range in one pass (bulk files, set-based SQL) would map to
``single_run()`` here, once its assets write ranges themselves.
"""

from __future__ import annotations

import warnings

import dagster as dg

from ingest_assets.kinds.base import DatasetConfig

# `backfill_policy=` on @asset is marked beta in 1.13; one-run-per-partition is also Dagster's
# default, so the warning says nothing actionable on every load of the definitions.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

ONE_YEAR_PER_RUN = dg.BackfillPolicy.multi_run(1)


def backfill_policy(config: DatasetConfig) -> dg.BackfillPolicy:
    """One year per run, so a failed year fails alone and retries alone."""
    return ONE_YEAR_PER_RUN
