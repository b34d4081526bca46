"""ingest_assets: a Dagster asset platform that keeps a PostgreSQL copy of public statistics APIs.

The data's path is visible in the package layout:
catalog (``catalog``) → source (``sources``) → staged pages (``staging.pages``) →
cleaned frame (``cleaning``, ``staging.frames``) → facts (``warehouse``), wired together as
year-partitioned assets in ``assets`` and exposed to Dagster by ``definitions``.
"""
