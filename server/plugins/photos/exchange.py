"""How an upload goes to a photo process and its renditions come back: through two temporary files, not through the
pool's pipes.

Through the pipes, the 5 MB body was joined into one bytes object on the event loop (~3.5 ms of its CPU, page
faults included) and pickled by the executor's feeder thread, and the ~12 MB of renditions and SQL literals were
unpickled in one go by its result thread: both hold the worker's GIL for milliseconds, so the event loop waits.
Here the body's pieces are written by a thread (each write releases the GIL), and the renditions' SQL literals are
read back one chunk at a time as the store sends them (a pread and an ASCII decode of ~350 KiB of base64 on
MariaDB, 512 KiB of hex on SQLite)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from server.db import Dialect
from server.errors import ServiceUnavailable
from server.plugins.photos.imaging import Limits, ProcessedPhoto, process
from server.plugins.photos.pool import RETRY_AFTER, release_memory
from server.plugins.photos.storage import blob_literals

log = logging.getLogger("pet_api.photos")


@dataclass(frozen=True, slots=True)
class SpooledLiterals:
    """A rendition's SQL literals (storage.blob_literals), in the file the photo process wrote them to."""

    path: str
    spans: tuple[tuple[int, int], ...]  # (offset, length) of each literal, in order

    def __iter__(self) -> Iterator[str]:
        with open(self.path, "rb", buffering=0) as file:
            for offset, length in self.spans:
                yield os.pread(file.fileno(), length, offset).decode("ascii")


class Exchange:
    """The two files of one upload (private to this user: mkstemp's mode 0600), removed on exit, whatever happened;
    entered in the event loop."""

    def __init__(self) -> None:
        made: list[str] = []
        try:
            for prefix in ("pet-api-photo-body-", "pet-api-photo-out-"):
                made.append(self._make(prefix))
        except OSError as exc:  # no temporary directory, or a full one: 503, nothing left behind
            _remove(made)
            raise _unavailable(exc) from None
        self.body, self.renditions = made

    @staticmethod
    def _make(prefix: str) -> str:
        fd, path = tempfile.mkstemp(prefix=prefix)
        os.close(fd)
        return path

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # In a thread, not awaited: removing ~17 MB of a file's pages took the loop ~2 ms (and nothing to cancel).
        asyncio.get_running_loop().run_in_executor(None, _remove, (self.body, self.renditions))

    async def write_body(self, pieces: list[bytes]) -> None:
        """The body's pieces, as received, into the body file, in a thread (the writes release the GIL); the list
        is emptied once they are written. 503 when the file cannot be written (a full disk)."""
        try:
            await asyncio.get_running_loop().run_in_executor(None, _write, self.body, pieces)
        except OSError as exc:
            raise _unavailable(exc) from None
        pieces.clear()


def _remove(paths: Sequence[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _write(path: str, pieces: Sequence[bytes]) -> None:
    with open(path, "wb", buffering=0) as file:
        for piece in pieces:
            file.write(piece)


def process_files(body: str, renditions: str, content_type: str, limits: Limits, dialect: Dialect) -> ProcessedPhoto:
    """In a photo process: the upload read from `body`, processed, its renditions' SQL literals (the dialect's)
    written to `renditions`; the answer names them (its renditions' data is left empty: the literals are the bytes). Its
    decoded pixels' pages go back to the system after."""
    try:
        photo = process(_read(body), content_type, limits)
        try:
            with open(renditions, "wb") as out:
                spooled = [dataclasses.replace(r, data=b"", literals=_spool(out, renditions, r.data, dialect))
                           for r in photo.renditions]
        except OSError as exc:
            raise _unavailable(exc) from None
        return dataclasses.replace(photo, renditions=tuple(spooled))
    finally:
        release_memory()


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _unavailable(exc) from None


def _spool(out: BinaryIO, path: str, data: bytes, dialect: Dialect) -> SpooledLiterals:
    spans = []
    for literal in blob_literals(data, dialect):
        encoded = literal.encode("ascii")
        spans.append((out.tell(), len(encoded)))
        out.write(encoded)
    return SpooledLiterals(path, tuple(spans))


def _unavailable(exc: OSError) -> ServiceUnavailable:
    log.warning("photo exchange file: %s", exc)
    return ServiceUnavailable("the photo could not be processed now, try again later",
                              headers={"Retry-After": RETRY_AFTER})
