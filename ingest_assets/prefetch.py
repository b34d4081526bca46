"""Running a producer one step ahead of its consumer, on the second core, in bounded memory.

Each stage of a year is a chain whose links mostly run in C++ with the GIL released (pyarrow
parsing and Parquet writing, CSV formatting, the server parsing COPY). Run in one thread they
take turns; ``ahead`` moves the producer to a thread that stays at most ``depth`` items ahead,
so two links work at once while memory holds ``depth`` items, not the year.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_SECONDS = 0.1


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put_until_stopped(buffer: queue.Queue, stop: threading.Event, item: object) -> bool:
    """Put ``item`` unless the consumer stopped first (polling, so a full buffer cannot hang)."""
    while not stop.is_set():
        try:
            buffer.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def _produce(items: Iterable[object], buffer: queue.Queue, stop: threading.Event) -> None:
    """The producer thread: every item, then ``_DONE``, or the error where it happened."""
    try:
        for item in items:
            if not _put_until_stopped(buffer, stop, item):
                return
    except BaseException as exc:  # handed to the consumer, which re-raises it
        _put_until_stopped(buffer, stop, _Failed(exc))
        return
    _put_until_stopped(buffer, stop, _DONE)


def ahead(items: Iterable[T], depth: int = 2, name: str = "prefetch") -> Generator[T, None, None]:
    """Yield ``items`` in order while a thread produces up to ``depth`` of them in advance.

    An error in the producer is raised in the consumer at the item where it happened; a
    consumer that stops early (or fails) stops the producer at its next item.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(items, buffer, stop), name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
