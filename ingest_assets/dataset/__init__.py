"""A dataset's definitions, built from its catalog entry.

``factory`` is the entry point (``dataset_definitions``: assets, check, job, sensor, schedule);
``spec`` derives what they share from the catalog entry; ``assets`` builds the two staging
assets, ``facts`` the warehouse asset and its checks. Machinery shared by every
dataset stays in its own package: sensors and schedules in ``automation``, IO managers in
``staging``, the loader in ``warehouse``.
"""

from ingest_assets.dataset.factory import dataset_assets, dataset_definitions, job_name
from ingest_assets.dataset.facts import EMPTY_YEAR_CHECK, RECONCILE_CHECK
from ingest_assets.dataset.spec import FULL_RELOAD_TAG, api_pool

__all__ = [
    "EMPTY_YEAR_CHECK",
    "FULL_RELOAD_TAG",
    "RECONCILE_CHECK",
    "api_pool",
    "dataset_assets",
    "dataset_definitions",
    "job_name",
]
