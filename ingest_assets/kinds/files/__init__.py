"""Bulk files: a glob of delimited files (local or fsspec), a year column picks each row's year.

``config`` is the catalog entry, ``source`` streams the files and the ``FilesStore`` resource,
``pages`` the staged CSV page format both source and cleaner use, ``cleaner`` hands the pages'
records to the shared typed-columns cleaner.
"""
