"""The automation layer: what starts runs, and what reports on them, without a person clicking.

One module per family: ``sensors`` (new source data), ``schedules`` (catalog cadence),
``notifications`` (run status to a webhook), ``policies`` (backfill policy per source kind).
Each dataset's sensor and schedule are built by its factory (``ingest_assets.dataset``) around
the dataset's job; the two notification sensors are shared by all datasets (``definitions.py``).
"""
