"""The bulk files on the web: the listing page, a file's HEAD, and a download that resumes.

Only the current file of a sector is kept and its name carries the date, so the name is read
from the listing page and the file is then identified by name + ``ETag``. ``Download`` is a
read-only stream of the file's bytes: it first replays what an earlier attempt left on disk
(all of it, when one got the whole file: then nothing is requested, and the pass verifies the
gzip again as it reads it), appends what arrives
to that copy and, after a cut connection, asks for the rest with ``Range`` (and ``If-Range``,
so a file replaced meanwhile is refused rather than spliced). Nothing that arrived is fetched
twice, in one attempt or across retries.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3

from ingest_assets.errors import SourceError, SourceUnavailable
from ingest_assets.kinds.nass_bulk.layout import file_pattern

READ_BYTES = 1 << 20
_CUT = (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class RemoteFile:
    """The current file of a sector as published: what identifies it and its size."""

    name: str
    url: str
    etag: str
    last_modified: str
    size: int

    @property
    def version(self) -> str:
        """Name and ETag: the file's identity; a split is reused while it is unchanged."""
        return f"{self.name}@{self.etag}"


def _get(session: requests.Session, url: str, what: str, timeout: float, **kwargs):
    try:
        response = session.request(kwargs.pop("method", "GET"), url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise SourceUnavailable(f"{what}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise SourceUnavailable(f"{what}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise SourceError(f"{what}: HTTP {response.status_code}")
    return response


def current_file(
    session: requests.Session, listing_url: str, file: str, timeout: float
) -> RemoteFile:
    """The newest listed name of ``file`` and its ``ETag``, ``Last-Modified`` and size."""
    what = f"bulk file listing {listing_url}"
    page = _get(session, listing_url, what, timeout).text
    names = sorted({m.group(0): m.group(1) for m in file_pattern(file).finditer(page)}.items())
    if not names:
        raise SourceError(f"{what}: no {file} file is listed")
    name = max(names, key=lambda item: item[1])[0]
    url = listing_url.rstrip("/") + "/" + name
    head = _get(session, url, f"HEAD {url}", timeout, method="HEAD")
    etag = head.headers.get("ETag")
    if not etag:
        raise SourceError(f"HEAD {url}: no ETag; the file's version cannot be told")
    modified = head.headers.get("Last-Modified", "")
    return RemoteFile(name, url, etag, modified, int(head.headers.get("Content-Length", -1)))


class Download(io.RawIOBase):
    """The bytes of ``remote``: first those already in ``copy_path`` (an earlier attempt's), then
    the rest over HTTP, appended to ``copy_path`` as they arrive and resumed after a cut.

    ``reused`` counts the bytes read from the earlier copy, ``received`` all bytes so far.
    """

    def __init__(
        self,
        session: requests.Session,
        remote: RemoteFile,
        copy_path: Path,
        timeout: float,
        max_resumes: int = 5,
    ) -> None:
        super().__init__()
        self._session, self._remote, self._timeout = session, remote, timeout
        if copy_path.exists() and not 0 <= copy_path.stat().st_size <= remote.size:
            copy_path.unlink()  # longer than the file (or its size unknown): not its prefix
        self._copy: io.BufferedRandom = copy_path.open("a+b")
        self._copy.seek(0)
        self._response: requests.Response | None = None
        self._resumes_left = max_resumes
        self._on_disk = copy_path.stat().st_size
        self.reused = self._on_disk
        self.received = 0
        self.resumes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.received < self._on_disk:
            wanted = min(len(buffer), self._on_disk - self.received)
            count = self._copy.readinto(memoryview(buffer)[:wanted])  # a slice, not a copy
            self.received += count
            return count
        while True:
            chunk = self._next_chunk(len(buffer))
            if chunk is not None:
                break
        self._copy.write(chunk)
        self.received += len(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def _next_chunk(self, size: int) -> bytes | None:
        """Up to ``size`` bytes; b"" at the end of the file, None after a cut (resume next)."""
        if self.received == self._remote.size:
            return b""  # all of it was on disk already
        if self._response is None:
            self._response = self._open()
        try:
            chunk = self._response.raw.read(min(size, READ_BYTES), decode_content=False)
        except _CUT:
            chunk = b""
        if chunk or self.received + len(chunk) >= self._remote.size:
            return chunk
        self._cut()
        return None

    def _cut(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        if self._resumes_left == 0:
            raise SourceUnavailable(
                f"download of {self._remote.name}: connection cut at byte {self.received:,} of "
                f"{self._remote.size:,} too many times"
            )
        self._resumes_left -= 1
        self.resumes += 1

    def _open(self) -> requests.Response:
        headers = {"Accept-Encoding": "identity"}
        if self.received:
            headers |= {"Range": f"bytes={self.received}-", "If-Range": self._remote.etag}
        what = f"download of {self._remote.name}"
        response = _get(
            self._session, self._remote.url, what, self._timeout, headers=headers, stream=True
        )
        expected = 206 if self.received else 200
        if response.status_code != expected or response.headers.get("ETag") != self._remote.etag:
            response.close()
            raise SourceError(
                f"{what}: the file changed while downloading (HTTP {response.status_code}, "
                f"ETag {response.headers.get('ETag')!r}, expected {self._remote.etag!r}); re-run"
            )
        return response

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._copy.close()
        self._session.close()
        super().close()
