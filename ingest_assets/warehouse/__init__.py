"""The warehouse: PostgreSQL tables that hold the facts, and the bookkeeping around loads.

``resource`` is the Dagster resource (connection URL, embedded default); ``tables`` creates
year-partitioned facts tables and detects drift; ``loader`` streams cleaned Parquet into them
with COPY and swaps a year in atomically (or upserts, for incremental datasets); ``ledger``
records every load and keeps incremental watermarks.
"""
