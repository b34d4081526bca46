"""The shrink guard: a full load may not take a year holding rows down to 0, or by more than the
catalog's ``max_shrink`` fraction, unless an operator confirmed it for that run.

A source that answers "0 rows" or "far fewer rows" for a while (an outage, a changed filter, a
file replaced by a stub) reconciles perfectly against itself, so the count chain cannot catch
it; only the year's rows before the load can. The decision is taken inside the load transaction
(``loader.replace_year``) so the old year stays whenever it refuses. An incremental merge never
removes rows, so it never shrinks a year; a full reload of an incremental dataset is guarded.

An operator confirms with the run tag ``ingest/confirm_shrink=true`` (Launchpad, backfill dialog)
or, for ``dagster asset materialize`` (which has no ``--tags``), the variable
``INGEST_CONFIRM_SHRINK`` listing ``dataset`` or ``dataset/year`` entries, comma-separated.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass

from ingest_assets.settings import current_settings

CONFIRM_TAG = "ingest/confirm_shrink"
CONFIRM_ENV = "INGEST_CONFIRM_SHRINK"
USER_TAG = "dagster/user"


@dataclass(frozen=True)
class ShrinkGuard:
    """What a full load may remove from a year, and who (if anyone) confirmed more."""

    max_shrink: float
    confirmed_by: str | None = None

    def exceeded(self, before: int, after: int) -> bool:
        """True when replacing ``before`` rows by ``after`` goes beyond the allowed shrink."""
        if before == 0:  # the first load of a year (or an empty one) is never blocked
            return False
        return after == 0 or (before - after) / before > self.max_shrink

    def refusal(self, dataset: str, year: int, before: int, after: int) -> str | None:
        """Why the load may not commit, or None when it may."""
        if not self.exceeded(before, after) or self.confirmed_by:
            return None
        return (
            f"dataset {dataset}, year {year}: the load would shrink the year from {before:,} "
            f"rows to {after:,} rows ({(before - after) / before:.0%} fewer; max_shrink "
            f"{self.max_shrink:g}); refused, the year keeps its {before:,} rows. If the source "
            f"really shrank, rerun with the tag {CONFIRM_TAG}=true or "
            f"{CONFIRM_ENV}={dataset}/{year}"
        )


def confirmation(tags: Mapping[str, str], dataset: str, year: int) -> str | None:
    """Who confirmed a shrink of this year for the run, or None."""
    if tags.get(CONFIRM_TAG, "").lower() == "true":
        return f"tag {CONFIRM_TAG} by {tags.get(USER_TAG) or 'an unnamed user'}"
    entries = {e.strip() for e in current_settings().ingest_confirm_shrink.split(",")}
    if dataset in entries or f"{dataset}/{year}" in entries:
        return f"cli {CONFIRM_ENV} by {getpass.getuser()}"
    return None
