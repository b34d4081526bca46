"""``ahead``: order kept, memory bounded, errors and early stops passed across the thread."""

import threading
import time
from contextlib import closing

import pytest

from ingest_assets.prefetch import ahead


def test_items_arrive_in_order_from_another_thread():
    threads = set()

    def produce():
        for i in range(100):
            threads.add(threading.current_thread().name)
            yield i

    assert list(ahead(produce(), depth=3, name="producer")) == list(range(100))
    assert threads == {"producer"}


def _recorded(count: int, produced: list[int]):
    """0..count-1, noting each item in ``produced`` as it is made."""
    for i in range(count):
        produced.append(i)
        yield i


def test_the_producer_stays_at_most_depth_items_ahead():
    produced = []
    items = ahead(_recorded(50, produced), depth=2)
    assert next(items) == 0
    time.sleep(0.3)  # give the producer every chance to run further ahead
    # one consumed, two waiting in the queue, one produced and blocked on the full queue
    assert len(produced) <= 4
    items.close()


def test_an_error_in_the_producer_is_raised_where_it_happened():
    def produce():
        yield 1
        yield 2
        raise ValueError("page 3 of slice s does not parse")

    received = []
    with pytest.raises(ValueError, match="page 3 of slice s"):
        for item in ahead(produce()):
            received.append(item)
    assert received == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []
    with closing(ahead(_recorded(10_000, produced), depth=2)) as items:
        for item in items:
            if item == 5:
                break
    count = len(produced)
    time.sleep(0.3)
    assert count == len(produced) < 20
    assert not any(t.name == "prefetch" for t in threading.enumerate())
