"""Atomic, verified file writes on any fsspec filesystem, shared by both IO managers."""

from __future__ import annotations

import hashlib
import os
import uuid

import fsspec
import orjson

from ingest_assets.errors import StagingError


class StagingArea:
    """A root folder (local path or fsspec URL) that files are written into atomically."""

    def __init__(self, base: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(base)
        self.base = base

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def write_bytes(self, path: str, data: bytes) -> str:
        """Write via a temporary name then rename, so a crash never leaves a half file."""
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with self.fs.open(tmp, "wb") as handle:
            handle.write(data)
            if hasattr(handle, "fileno"):
                handle.flush()
                os.fsync(handle.fileno())
        self.fs.mv(tmp, path)
        return hashlib.sha256(data).hexdigest()

    def write_json(self, path: str, value: object) -> None:
        self.write_bytes(path, orjson.dumps(value, option=orjson.OPT_INDENT_2))

    def read_json(self, path: str) -> dict | None:
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as handle:
            return orjson.loads(handle.read())

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
        if not self.fs.exists(folder):
            return
        for path in self.fs.ls(folder, detail=False):
            if path.rsplit("/", 1)[-1] not in keep:
                self.fs.rm(path)
