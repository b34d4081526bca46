"""Every exception type the project raises on purpose, in one place.

Why one module: an error's type says which stage refused (catalog, source, cleaning, staging,
warehouse) and the asset factory maps each to the right Dagster failure; keeping them together
lets a stage raise another's error (the files kind raises ``SourceError`` without any HTTP)
without importing that stage. Every message names the dataset, year, slice, column or value.
"""

from __future__ import annotations


class CatalogError(ValueError):
    """The catalog file is missing, unreadable or has invalid entries."""


class SourceError(Exception):
    """A request to a source failed in a way the caller must not paper over."""


class SourceUnavailable(SourceError):
    """Retries were exhausted on a transient fault (timeouts, resets, 429, 5xx, cut bodies)."""


class CleaningError(ValueError):
    """A value that does not fit its declared column; the message names where and what."""


class StagingError(RuntimeError):
    """Staged data is missing or does not match its manifest."""


class WarehouseError(RuntimeError):
    """The warehouse does not match what the catalog declares, or a load cannot proceed."""


class WarehouseUnreachable(WarehouseError):
    """The warehouse cannot be connected to; the message names DATABASE_URL, password redacted."""


class YearOutOfRange(ValueError):
    """A year asked for that is not one of the dataset's partitions."""


class ViewRefreshError(RuntimeError):
    """A listed materialized view is missing or failed to refresh (the load itself committed)."""
