"""Quick Stats bulk files (``source: nass_bulk``): a sector's whole history from one daily file.

``config`` is the catalog entry, ``layout`` the file's header and the listing's file names,
``remote`` the listing page, HEAD and the resumable download, ``filters`` the NASS ``query``
as Arrow masks, ``split`` the one streaming pass that writes per-year parts, ``source`` the
``Source`` over those parts and the ``NassBulkFiles`` resource, ``upstream`` the unpartitioned
``<dataset>/bulk_file`` asset, its job and sensor. Cleaning is the NASS cleaner's: the parts
are staged as Arrow pages of the API's fields, all text, which it types as it types API pages.
"""
