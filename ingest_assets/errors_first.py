"""Errors first, in one line: the mistakes a user can fix, said before (or instead of) a traceback.

A catalog typo, an unreachable ``DATABASE_URL`` or a year outside a dataset's range each used to
end in 70-120 lines of Dagster traceback with the cause near the bottom. Commands that a person
runs (``ingest-assets``, and Dagster's CLI through ``./run dagster``) print ``error: <line>``
naming what is wrong and what to do; ``INGEST_DEBUG=1`` shows the traceback as well.
"""

from __future__ import annotations

import re
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence

from ingest_assets.catalog import load_catalog
from ingest_assets.errors import CatalogError, WarehouseUnreachable, YearOutOfRange
from ingest_assets.partitions import check_years
from ingest_assets.settings import current_settings

FIXABLE = (CatalogError, YearOutOfRange, WarehouseUnreachable)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def one_line_or_none(exc: BaseException) -> str | None:
    """The message of a fixable mistake anywhere in ``exc``'s chain, else None. Its first line
    stands alone; a catalog's further problems follow it, one per line.
    """
    for error in _chain(exc):
        if isinstance(error, FIXABLE):
            return str(error)
    return None


def _option(argv: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def partition_refusal(argv: Sequence[str]) -> str | None:
    """For ``asset materialize --partition YEAR``: the dataset's years, if YEAR is not one."""
    partition, select = _option(argv, "--partition"), _option(argv, "--select") or ""
    if partition is None or not partition.isdigit():
        return None
    for name, config in load_catalog().items():
        if re.search(rf"\b{re.escape(name)}\b", select):
            try:
                check_years(config, [int(partition)])
            except YearOutOfRange as exc:
                return str(exc)
    return None


def run_dagster_cli(argv: Sequence[str]) -> int:
    """Dagster's own CLI, with a fixable mistake said first, in one line.

    Its SupersessionWarning (``dagster`` is superseded by ``dg``) is silenced: the README shows
    both, and the ``dagster`` commands it shows are the ones CI and the design name.
    """
    from dagster._cli import main as dagster_main
    from dagster._utils.warnings import SupersessionWarning

    warnings.filterwarnings("ignore", category=SupersessionWarning)
    sys.argv = ["dagster", *argv]
    try:
        dagster_main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    except Exception as exc:
        line = one_line_or_none(exc) or partition_refusal(argv)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        if current_settings().ingest_debug:
            traceback.print_exc()
        else:
            print("(INGEST_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_dagster_cli(sys.argv[1:]))
