"""The one HTTP client every source uses: time-outs, bounded retries, Retry-After, redaction.

Why one client: the loaders this project replaces retried forever, or not at all, and leaked API
keys into logs through exception messages that quote the URL. Here every retry decision and every
error message goes through one place. Retries use tenacity (exponential backoff with full jitter
and a floor, so ``Retry-After: 0`` never becomes a hot loop); 400, 401, 403, 404 and 413 are never
retried blindly — the caller decides what they mean. A host name that does not resolve is not
retried either: offline, minutes of backoff would only delay the one line that says so.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, quote_plus, urlsplit

import orjson
import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
)
from urllib3.exceptions import NameResolutionError

from ingest_assets.errors import SourceError, SourceUnavailable

if TYPE_CHECKING:
    from ingest_assets.request_budget import RequestBudget

RETRYABLE_STATUS = frozenset({202, 408, 425, 429, 500, 502, 503, 504})
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class RetryableResponse(Exception):
    """Internal: a response that should be retried, carrying its wait hint."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Response:
    """One answered request: status, body, decoded data, headers and the attempts it took."""

    status: int
    body: bytes
    data: Any
    headers: Mapping[str, str]
    attempts: int

    def excerpt(self, limit: int = 200) -> str:
        return self.body[:limit].decode("utf-8", "replace")


class Redactor:
    """Replaces every known secret with ``***`` in any text that may reach a log or an error.

    A secret sent in a URL reaches error messages percent-encoded, so those forms are replaced too.
    """

    def __init__(self, secrets: Sequence[str | None]) -> None:
        forms = {form for s in secrets if s for form in (s, quote(s, safe=""), quote_plus(s))}
        self._secrets = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _unresolved_host(exc: BaseException) -> bool:
    """Whether a transport error is a failed DNS lookup (urllib3 wraps it in MaxRetryError)."""
    pending: list[object] = [exc]
    while pending:
        error = pending.pop()
        if isinstance(error, NameResolutionError | socket.gaierror):
            return True
        if isinstance(error, BaseException):
            pending += [*error.args, getattr(error, "reason", None), error.__cause__]
    return False


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class _Request(NamedTuple):
    method: str
    url: str
    params: Any
    json_body: Any
    headers: Mapping[str, str] | None


class HttpClient:
    """GETs JSON with bounded, jittered retries and secret-free errors.

    ``min_interval`` spaces requests out per client (the APIs' rate limits are per key or IP);
    ``max_total_seconds`` bounds the whole retry sequence of one request (no retry starts whose
    wait would cross it). Every wait is at least ``min_delay``; a ``Retry-After`` hint is honoured
    up to ``retry_after_cap``. ``waits`` lists the waits taken, so callers and tests can see them.
    ``budget`` (``request_budget``) spends every attempt from its host's deployment-wide rate
    and concurrency, and tells it of every 429.
    """

    def __init__(
        self,
        *,
        secrets: Sequence[str | None] = (),
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        max_attempts: int = 6,
        max_total_seconds: float = 900.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        min_delay: float = 0.2,
        retry_after_cap: float = 120.0,
        min_interval: float = 0.0,
        budget: RequestBudget | None = None,
    ) -> None:
        self.redact = Redactor(secrets)
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": "ingest_assets/0.1", **(headers or {})})
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self.max_total_seconds = max_total_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.min_delay = min_delay
        self.retry_after_cap = retry_after_cap
        self.min_interval = min_interval
        self.budget = budget
        self._last_request = 0.0
        self._pace_lock = threading.Lock()
        self.retries = 0
        self.waits: list[float] = []

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hint = getattr(error, "retry_after", None)
        if hint is not None:
            return min(max(hint, self.min_delay), self.retry_after_cap)
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (state.attempt_number - 1))
        return max(self.min_delay, random.uniform(0, ceiling))

    def _record_wait(self, state: RetryCallState) -> None:
        """Note a wait that is about to be slept (tenacity may compute one, then stop)."""
        if state.next_action is not None:
            self.waits.append(state.next_action.sleep)

    def _pace(self) -> None:
        if self.min_interval <= 0:
            return
        with self._pace_lock:
            wait = self._last_request + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_request = time.monotonic()

    def _attempt(self, request: _Request, decode: Callable[[bytes], Any], what: str) -> Response:
        self._pace()
        granted = self.budget.request(request.url) if self.budget else contextlib.nullcontext()
        with granted as slot:
            try:
                response = self.session.request(
                    request.method,
                    request.url,
                    params=request.params,
                    json=request.json_body,
                    headers=request.headers,
                    timeout=self.timeout,
                )
                body = response.content
            except TRANSPORT_ERRORS as exc:
                if _unresolved_host(exc):
                    raise SourceError(
                        f"{what}: cannot resolve the host {urlsplit(request.url).hostname} "
                        "(offline, or no DNS): nothing was fetched; check the network, or serve "
                        'the stand-ins: eval "$(./run ingest-assets standin --background)"'
                    ) from None
                raise RetryableResponse(f"{type(exc).__name__}: {self.redact(str(exc))}") from None
            except requests.RequestException as exc:  # a bad URL or the like: cannot help
                raise SourceError(f"{type(exc).__name__}: {self.redact(str(exc))}") from None
            status = response.status_code
            if status == 429 and slot is not None:
                slot.throttle(_retry_after_seconds(response.headers.get("Retry-After")))
        if status in RETRYABLE_STATUS:
            raise RetryableResponse(
                f"HTTP {status}: {self.redact(body[:120].decode('utf-8', 'replace'))}",
                _retry_after_seconds(response.headers.get("Retry-After")),
            )
        try:
            data = decode(body) if body else None
        except ValueError as exc:  # orjson.JSONDecodeError and pyarrow's ArrowInvalid are
            if 200 <= status < 300:
                # A 200 that does not decode is a cut-off transfer or a proxy's HTML page:
                # transient. The decoder's reason says which (a short row, a stray '<').
                excerpt = self.redact(body[:120].decode("utf-8", "replace"))
                reason = self.redact(str(exc).splitlines()[0][:120]) if str(exc) else ""
                raise RetryableResponse(
                    f"HTTP {status} body does not decode ({reason}): {excerpt!r}"
                ) from None
            data = None
        return Response(status, body, data, dict(response.headers), 0)

    def get(
        self,
        url: str,
        params: Any = None,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> Response:
        """GET ``url``; retry transient faults; return any final answer (2xx or 4xx) to the caller.

        ``what`` names the request (dataset, year, slice) in every error it may raise. ``decode``
        turns the body into ``data`` and raises ValueError if it does not decode (a 2xx then counts
        as a cut-off transfer and is retried); a caller that needs less than every value decoded
        into Python objects passes its own.
        """
        return self._send(_Request("GET", url, params, None, headers), what, decode)

    def post(
        self,
        url: str,
        json_body: Any,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> Response:
        """POST ``json_body`` (a query, not a change: retried like a GET) to ``url``."""
        return self._send(_Request("POST", url, None, json_body, headers), what, decode)

    def _send(self, request: _Request, what: str, decode: Callable[[bytes], Any]) -> Response:
        retrying = Retrying(
            stop=stop_any(
                stop_after_attempt(self.max_attempts), stop_before_delay(self.max_total_seconds)
            ),
            wait=self._wait,
            before_sleep=self._record_wait,
            retry=retry_if_exception_type(RetryableResponse),
            reraise=True,
        )
        started = time.monotonic()
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        self.retries += 1
                    result = self._attempt(request, decode, what)
        except RetryableResponse as exc:
            raise SourceUnavailable(
                f"{what}: gave up after {attempts} attempts in "
                f"{time.monotonic() - started:.1f}s; last error: {exc}"
            ) from None
        return Response(result.status, result.body, result.data, result.headers, attempts)
