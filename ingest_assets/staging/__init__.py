"""Staging: where fetched pages and cleaned frames wait between assets, as files.

Two IO managers, one per kind of staged data: ``pages`` writes raw API responses exactly as
received (compressed, atomically, with a manifest of slices) and ``frames`` writes cleaned
tables as Parquet row groups. Both hand downstream assets a small handle, never a whole year in
memory. Storage is any fsspec URL (a local folder by default, ``s3://…`` for workers that share
no disk); ``storage`` says how writes stay atomic on each.
"""
