"""USDA NASS Quick Stats: a fixed 39-field record layout, no paging, 50,000 records a request.

``fields`` is the record layout (also used by the stand-in), ``config`` the catalog entry,
``planner`` the count-driven split of a year into pieces within the limit, ``pages`` the CSV and
JSON page formats, ``source`` the requests and the ``NassApi`` resource, ``cleaner`` the typing
of staged pages (suppression codes, thousands separators, schema drift).
"""
