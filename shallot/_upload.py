"""One uploaded file of a ``multipart/form-data`` request: its part's name, filename, content
type and headers, and its content in a spooled temporary file (in memory up to ``spool_size``,
then on disk) read with async ``read``/``seek`` (issue 15).

Disk I/O runs in a worker thread (``anyio.to_thread``); in-memory I/O, which cannot block,
runs on the event loop. The file is unlinked on disk as it is created (``tempfile``), so it
never outlives the process; ``close`` frees it at once, which ``wrap_multipart`` does when the
request ends.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable

import anyio.to_thread

__all__ = ["UploadedFile", "write_all"]


class UploadedFile:
    """A file sent in a ``multipart/form-data`` request (``request["files"][name]``).

    Attributes: ``name`` (the form field), ``filename`` (as the client gave it: never use it
    as a path unchanged), ``content_type``, ``headers`` (the part's, names lower-cased),
    ``size`` (bytes written so far) and ``file`` (the ``tempfile.SpooledTemporaryFile``, for
    code that wants a plain blocking file).
    """

    __slots__ = (
        "_on_disk",
        "_spool_size",
        "content_type",
        "file",
        "filename",
        "headers",
        "name",
        "size",
    )

    def __init__(
        self,
        name: str,
        filename: str,
        content_type: str,
        headers: dict[str, str],
        *,
        spool_size: int = 1024 * 1024,
        temp_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.headers = headers
        self.file = tempfile.SpooledTemporaryFile(
            max_size=spool_size, dir=None if temp_dir is None else os.fspath(temp_dir)
        )
        self._spool_size = spool_size
        self._on_disk = False
        #: The size of the content in bytes.
        self.size = 0

    def __repr__(self) -> str:
        return (
            f"<UploadedFile {self.name!r} filename={self.filename!r} "
            f"content_type={self.content_type!r} size={self.size}>"
        )

    @property
    def in_memory(self) -> bool:
        """Whether the content is still held in memory (it moves to disk past
        ``spool_size``)."""
        return not self._on_disk

    def write_nowait(self, data: bytes) -> bool:
        """Writes ``data`` when it stays in memory; returns False, writing nothing, when it
        would go to disk (then write it with ``write`` or in a thread)."""
        if self._on_disk or self.file.tell() + len(data) > self._spool_size:
            self._on_disk = True  # this write and every later one may block
            return False
        self.file.write(data)
        self.size = max(self.size, self.file.tell())
        return True

    async def write(self, data: bytes) -> int:
        """Writes ``data`` at the current position.

        Returns:
            The number of bytes written.
        """
        if not self.write_nowait(data):
            await anyio.to_thread.run_sync(write_all, ((self, data),))
        return len(data)

    async def read(self, size: int = -1) -> bytes:
        """Returns up to ``size`` bytes from the current position (all of the rest when
        ``size`` is negative); ``b""`` at the end."""
        if self._on_disk:
            return await anyio.to_thread.run_sync(self.file.read, size)
        return self.file.read(size)

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Moves the position, as ``io.IOBase.seek`` does.

        Returns:
            The new position.
        """
        if self._on_disk:
            return await anyio.to_thread.run_sync(self.file.seek, offset, whence)
        return self.file.seek(offset, whence)

    def close(self) -> None:
        """Closes the file and frees its memory or disk space; a closed file cannot be read."""
        self.file.close()

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self.file.closed


def write_all(writes: Iterable[tuple[UploadedFile, bytes]]) -> None:
    """Writes each ``(file, data)`` in order, blocking: run it in a worker thread."""
    for upload, data in writes:
        upload.file.write(data)
        upload.size = max(upload.size, upload.file.tell())
