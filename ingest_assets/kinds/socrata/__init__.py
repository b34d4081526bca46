"""Socrata open-data portals (SODA 2.1): columns declared in the catalog, offset paging.

``config`` is the catalog entry (portal, dataset id per year or a year column), ``source`` the
counts, paging, change signals and the ``SocrataApi`` resource, ``cleaner`` reads a staged JSON
page back into records for the shared typed-columns cleaner.
"""
