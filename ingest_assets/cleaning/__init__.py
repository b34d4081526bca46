"""Cleaning: records from staged pages become typed Arrow tables with snake_case columns.

``types`` holds the shared column model and casts (one mapping from PostgreSQL types to Arrow
types, and errors that name the column and the value); each source kind has its own module for
what is peculiar to its records. Nothing here fetches or loads.
"""
