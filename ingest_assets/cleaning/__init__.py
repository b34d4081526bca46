"""Cleaning stages every kind shares: records from staged pages become typed Arrow tables.

``columns`` is the column model (one mapping from PostgreSQL types to Arrow types), ``casts``
the string-to-type casts whose errors name the column and the value, ``typed_columns`` the
generic cleaner of the kinds whose columns the catalog declares. What is peculiar to one kind's
records lives in its own ``kinds/<kind>/cleaner.py``. Nothing here fetches or loads.
"""
