"""Source kinds: one folder per kind of public API, all behind ``base.Source`` and ``base.Cleaner``.

A kind's folder holds everything peculiar to it: ``config`` (its catalog model), ``source`` (the
network ``Source`` and the Dagster resource holding its connection settings), ``pages`` (its
staged page format, shared by source and cleaner so cleaning never imports the network module),
``cleaner`` (staged pages to typed columns) and, where a kind needs one, a ``planner``. Shared
here: ``base`` (the interface and the fields every entry has), ``typed`` (the catalog fields of
kinds whose columns the catalog declares) and ``registry`` (one line per kind). Adding a kind is
a new folder plus one line in ``registry``.
"""
