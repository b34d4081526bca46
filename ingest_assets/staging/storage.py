"""Atomic, verified file writes on any fsspec filesystem, shared by both IO managers.

A reader must never see half a file, and how that is guaranteed depends on the filesystem:

- **A local folder (or NFS)** has an atomic rename: a file is written under a temporary name in
  its own folder, flushed to disk, then renamed over its final name.
- **Object storage (S3 and S3-compatible, GCS, ...)** has no rename: "move" is a copy then a
  delete, and a crash between the two leaves both. There a file is written straight at its final
  key, atomic by construction: an object becomes visible only when its upload completes, whole
  (a single ``PUT``, or a multipart upload that nothing can read until it is completed). Streams
  are opened with ``autocommit=False`` and committed only when the writer finished without
  error; on an error the multipart upload is aborted and the key keeps its previous object, if
  any.

On top of that, readers trust only what a manifest lists: pages are written first, the manifest
last (also one whole object), and every page is checked against the SHA-256 the manifest records
(``read_verified``), so a page left by an attempt that died before its manifest is never read.

Object-store listings are not cached (``use_listings_cache=False``): another worker writes into
the same prefixes, and a cached listing would hide its manifests.

Credentials are never handled here: s3fs (botocore) reads ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_ENDPOINT_URL`` from the environment, so they appear in no
configuration, metadata or log this project writes.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO

import fsspec
import orjson
from fsspec.implementations.local import LocalFileSystem

from ingest_assets.errors import StagingError


class StagingArea:
    """A root folder (local path or fsspec URL) that files are written into atomically."""

    def __init__(self, base: str) -> None:
        protocol = fsspec.core.split_protocol(base)[0]
        options = {} if protocol in (None, "file", "local") else {"use_listings_cache": False}
        self.fs, self.root = fsspec.core.url_to_fs(base, **options)
        self.base = base
        self.renames = isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def url(self, path: str) -> str:
        """``path`` as a user finds it: a local path, or the store's URL (``s3://bucket/…``)."""
        return path if self.renames else self.fs.unstrip_protocol(path)

    @contextmanager
    def open_atomic(self, path: str) -> Iterator[IO[bytes]]:
        """A binary stream whose content appears at ``path`` whole, and only if the block ends
        without an error (see the module docstring for how, per kind of filesystem).
        """
        if self.renames:
            yield from self._renamed(path)
            return
        handle = self.fs.open(path, "wb", autocommit=False)
        try:
            yield handle
            handle.close()  # uploads the last part; nothing is visible yet
            handle.commit()  # completes the upload: the object appears, whole
        except BaseException:
            with suppress(Exception):
                handle.close()
            handle.discard()  # aborts the upload; the key keeps its previous object
            raise

    def _renamed(self, path: str) -> Iterator[IO[bytes]]:
        """Write under a temporary name beside ``path``, fsync, rename over ``path``."""
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(tmp, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            with suppress(FileNotFoundError):
                os.remove(tmp)

    def write_bytes(self, path: str, data: bytes) -> str:
        """Write a whole file atomically (an object store's single ``PUT``); its SHA-256."""
        if self.renames:
            with self.open_atomic(path) as handle:
                handle.write(data)
        else:
            self.fs.pipe_file(path, data)
        return hashlib.sha256(data).hexdigest()

    def write_json(self, path: str, value: object) -> None:
        self.write_bytes(path, orjson.dumps(value, option=orjson.OPT_INDENT_2))

    def read_json(self, path: str) -> dict | None:
        try:
            with self.fs.open(path, "rb") as handle:
                return orjson.loads(handle.read())
        except FileNotFoundError:
            return None

    def read_verified(self, path: str, sha256: str) -> bytes:
        try:
            with self.fs.open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            raise StagingError(f"staged file {path} is missing") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StagingError(f"staged file {path} does not match its manifest checksum")
        return data

    def is_intact(self, path: str, sha256: str) -> bool:
        try:
            self.read_verified(path, sha256)
        except StagingError:
            return False
        return True

    def remove_except(self, folder: str, keep: set[str]) -> None:
        try:
            paths = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return
        for path in paths:
            if path.rsplit("/", 1)[-1] not in keep:
                self.fs.rm(path)
