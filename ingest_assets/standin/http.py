"""HTTP scaffolding the API stand-ins share, so each stand-in module holds only its API.

Here: serving on a local port from a daemon thread (start/stop, a with-block, the bound
address), a server that drops its kept-alive connections when stopped, a handler base that
tracks its connection and sends headers and body without Nagle delays, and a thread-safe queue
of injected faults with the fault names every stand-in accepts, and the request statistics tests
assert on. What a request is answered with (routes, bodies, what each fault looks like) stays in
the stand-in's own module.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import socket
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

COMMON_FAULTS = (
    "429",
    "429-retry-after-0",
    "429-retry-after-2",
    "500",
    "502",
    "503",
    "reset",
    "truncate",
    "html200",
)
"""Fault names both stand-ins accept (each decides how it looks); some add parametrised ones."""


class StandInServer(ThreadingHTTPServer):
    """Tracks its open connections so that stopping also drops idle keep-alive ones; handlers
    reach their stand-in as `self.server.standin`.
    """

    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[TrackedHandler], standin: Any
    ) -> None:
        super().__init__(address, handler)
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def server_close(self) -> None:
        super().server_close()
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class TrackedHandler(BaseHTTPRequestHandler):
    """A connection its StandInServer knows about while it is open."""

    server: StandInServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        super().finish()


class ServedStandIn:
    """A stand-in served by a StandInServer from a daemon thread: `start()`/`stop()` or a
    with-block. `handler` answers its requests; `thread_name` names the serving thread.
    """

    def __init__(
        self, host: str, port: int, handler: type[TrackedHandler], thread_name: str
    ) -> None:
        self._address = (host, port)
        self._handler = handler
        self._thread_name = thread_name
        self._server: StandInServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The host and port the server is bound to."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; start() it first")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> Self:
        if self._server is None:
            self._server = StandInServer(self._address, self._handler, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=self._thread_name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclasses.dataclass
class _Fault:
    name: str
    remaining: int
    endpoint: str | None


class FaultQueue:
    """Injected faults waiting for requests, served in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def add(self, fault: str, times: int, endpoint: str | None) -> None:
        """Queue `fault` for the next `times` requests to `endpoint` (None: any endpoint)."""
        with self._lock:
            self._faults.append(_Fault(fault, times, endpoint))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, endpoint: str, applies: Callable[[str], bool]) -> str | None:
        """Pop one serving of the first queued fault for `endpoint` that `applies` accepts."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (None, endpoint) and applies(fault.name):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.name
        return None


class HasEndpoint(Protocol):
    """What a stand-in logs of a request: at least the endpoint it was routed to."""

    @property
    def endpoint(self) -> str: ...


RequestT = TypeVar("RequestT", bound=HasEndpoint)


class RequestStats(Generic[RequestT]):
    """Thread-safe request statistics of a stand-in, the same counters for every API.

    Handler threads call ``started``/``finished`` around each request (``served``,
    ``fault_served`` and ``cache_lookup`` in between); tests read a ``snapshot`` or the live
    counters and ``reset`` them between phases. ``peak_concurrency`` restarts from the requests
    still in flight, so a reset during traffic stays truthful.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests_by_endpoint: Counter[str] = Counter()
        self.requests: list[RequestT] = []
        self.faults_served: Counter[str] = Counter()
        self.rows_served = 0
        self.max_rows_served = 0
        self.in_flight = 0
        self.peak_concurrency = 0
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests_by_endpoint.values())

    def reset(self) -> None:
        with self._lock:
            self.requests_by_endpoint.clear()
            self.requests.clear()
            self.faults_served.clear()
            self.rows_served = self.max_rows_served = 0
            self.cache_hits = self.cache_misses = 0
            self.peak_concurrency = self.in_flight

    def snapshot(self) -> RequestStats[RequestT]:
        """A consistent copy, safe to read while requests run."""
        with self._lock:
            state = {k: copy.deepcopy(v) for k, v in vars(self).items() if k != "_lock"}
        copied: RequestStats[RequestT] = RequestStats()
        vars(copied).update(state)
        return copied

    def started(self, request: RequestT | None = None) -> None:
        """A request arrived; logged now when given (else by ``finished``)."""
        with self._lock:
            self.in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
            if request is not None:
                self._log(request)

    def finished(
        self, request: RequestT | None = None, rows: int = 0, fault: str | None = None
    ) -> None:
        """A request was answered (or dropped): log it when given, count its rows and fault."""
        with self._lock:
            self.in_flight -= 1
            if request is not None:
                self._log(request)
            self._served(rows)
            if fault:
                self.faults_served[fault] += 1

    def served(self, rows: int) -> None:
        with self._lock:
            self._served(rows)

    def fault_served(self, fault: str) -> None:
        with self._lock:
            self.faults_served[fault] += 1

    def cache_lookup(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.cache_hits += 1
            else:
                self.cache_misses += 1

    def _log(self, request: RequestT) -> None:
        self.requests_by_endpoint[request.endpoint] += 1
        self.requests.append(request)

    def _served(self, rows: int) -> None:
        self.rows_served += rows
        self.max_rows_served = max(self.max_rows_served, rows)
