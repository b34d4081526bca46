"""Sources: one module per kind of public API, all behind ``base.Source`` and ``base.Cleaner``.

``registry`` lists the kinds; adding one is a new module here plus one line there.
"""
