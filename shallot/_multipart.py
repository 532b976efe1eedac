"""Reading a ``multipart/form-data`` body with python-multipart: ``FormReader`` feeds it the
chunks as they arrive and turns its callbacks into form fields and ``UploadedFile``s, within
the limits of ``FormLimits`` (issue 15).

``feed`` is synchronous (the parser and its callbacks, which only collect); ``flush`` writes
what they collected to the files, in memory on the event loop, on disk in one worker-thread
call per MiB or so. A broken limit raises ``Refused`` with a 413 that names it, a malformed body
``Refused`` with a 400. The reader owns the files it opens:
``close`` frees them all, which the middleware does when the request ends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ._request import Refused, plain
from ._upload import UploadedFile, write_all

__all__ = ["FormLimits", "FormReader", "boundary_of"]

#: The 400's reason for a body that does not open with its boundary line.
_NO_OPENING_BOUNDARY = (
    "malformed multipart body: it does not open with its boundary line (a preamble before it "
    "is not accepted)"
)
#: Content bound for disk waits until this much has come, then goes in one thread call: a
#: thread round trip per chunk costs more than the write itself (benchmarks/upload.py).
_DISK_BATCH = 1024 * 1024


@dataclass(frozen=True)
class FormLimits:
    """The limits and options of ``wrap_multipart``, checked when it is built."""

    max_file_size: int
    max_field_size: int
    max_parts: int
    spool_size: int
    temp_dir: str | os.PathLike[str] | None
    encoding: str


def bad_request(reason: str) -> Refused:
    return Refused(plain(400, f"Bad Request: {reason}", close=True))


def too_large(reason: str) -> Refused:
    return Refused(plain(413, f"Payload Too Large: {reason}", close=True))


def boundary_of(content_type: str) -> bytes:
    """Returns the boundary of a ``multipart/form-data`` content type.

    Raises:
        Refused: there is none (400).
    """
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise bad_request("multipart/form-data without a boundary")
    return boundary


class FormReader:
    """Parses one multipart body into ``fields`` (``dict[str, list[str]]``) and ``files``
    (``dict[str, list[UploadedFile]]``)."""

    def __init__(self, boundary: bytes, limits: FormLimits) -> None:
        self.limits = limits
        self.fields: dict[str, list[str]] = {}
        self.files: dict[str, list[UploadedFile]] = {}
        self._opened: list[UploadedFile] = []
        self._pending: list[tuple[UploadedFile, bytes]] = []
        self._to_disk: list[tuple[UploadedFile, bytes]] = []
        self._to_disk_size = 0
        self._parts = 0
        self._ended = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._name = ""
        self._field: bytearray | None = None
        self._file: UploadedFile | None = None
        self._file_size = 0
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                    "on_end": self._on_end,
                },
            )
        except FormParserError:  # a boundary longer than the parser takes
            raise bad_request("the multipart boundary is too long") from None

    def feed(self, chunk: bytes) -> None:
        """Parses the next chunk of the body.

        Raises:
            Refused: the body is malformed (400) or breaks a limit (413).
        """
        if self._ended:
            return  # the epilogue after the closing boundary is ignored (RFC 2046 §5.1.1)
        try:
            self._parser.write(chunk)
        except FormParserError as error:
            if self._parts == 0:
                # python-multipart's message names a byte of the boundary by its code: a
                # preamble (RFC 2046 §5.1.1), which it does not take, reads "Expected boundary
                # character 45, got 106 at index 2"
                raise bad_request(_NO_OPENING_BOUNDARY) from None
            raise bad_request(f"malformed multipart body ({error})") from None

    async def flush(self, *, force: bool = False) -> None:
        """Writes the file content the last chunks carried: in memory at once, to disk once
        ``_DISK_BATCH`` bytes are waiting (or ``force``), in one worker-thread call."""
        if self._pending:
            pending, self._pending = self._pending, []
            for upload, data in pending:
                if not upload.write_nowait(data):
                    self._to_disk.append((upload, data))
                    self._to_disk_size += len(data)
        if self._to_disk and (force or self._to_disk_size >= _DISK_BATCH):
            writes, self._to_disk, self._to_disk_size = self._to_disk, [], 0
            await anyio.to_thread.run_sync(write_all, writes)

    async def finish(self) -> None:
        """Checks the body ended with its closing boundary and rewinds every file.

        Raises:
            Refused: the body was cut short (400).
        """
        if not self._ended:
            raise bad_request("the multipart body ends before its closing boundary")
        await self.flush(force=True)
        for upload in self._opened:
            await upload.seek(0)

    def close(self) -> None:
        """Closes every file this reader opened."""
        for upload in self._opened:
            upload.close()

    # python-multipart's callbacks: they only collect, and raise Refused for a broken limit.

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self.limits.max_parts:
            raise too_large(f"more than {self.limits.max_parts} parts")
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._header_name.decode("latin-1").lower()
        self._headers[name] = self._header_value.decode("latin-1")
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition")
        if disposition is None:
            raise bad_request("a multipart part has no content-disposition")
        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        if name is None:
            raise bad_request("a multipart part has no name")
        self._name = self._decode(name, "a part name")
        filename = options.get(b"filename")
        if filename is None:
            self._field = bytearray()
            return
        try:
            filename_text = filename.decode(self.limits.encoding)
        except UnicodeDecodeError:
            filename_text = filename.decode("latin-1")
        self._file = UploadedFile(
            self._name,
            filename_text,
            self._headers.get("content-type", "text/plain"),  # RFC 7578 §4.4
            self._headers,
            spool_size=self.limits.spool_size,
            temp_dir=self.limits.temp_dir,
        )
        self._opened.append(self._file)
        self._file_size = 0

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file_size += end - start
            if self._file_size > self.limits.max_file_size:
                raise too_large(f"file {self._name!r} exceeds {self.limits.max_file_size} bytes")
            self._pending.append((self._file, data[start:end]))
        elif self._field is not None:
            self._field += data[start:end]
            if len(self._field) > self.limits.max_field_size:
                raise too_large(f"field {self._name!r} exceeds {self.limits.max_field_size} bytes")

    def _on_part_end(self) -> None:
        if self._file is not None:
            self.files.setdefault(self._name, []).append(self._file)
            self._file = None
        elif self._field is not None:
            value = self._decode(bytes(self._field), f"field {self._name!r}")
            self.fields.setdefault(self._name, []).append(value)
            self._field = None

    def _on_end(self) -> None:
        self._ended = True

    def _decode(self, data: bytes, what: str) -> str:
        try:
            return data.decode(self.limits.encoding)
        except UnicodeDecodeError:
            raise bad_request(f"{what} is not valid {self.limits.encoding}") from None
