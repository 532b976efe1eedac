"""UploadedFile: a spooled temporary file with async read, seek and write (issue 15)."""

from __future__ import annotations

import os
from pathlib import Path

from shallot import UploadedFile


def upload_in(folder: Path, spool_size: int) -> UploadedFile:
    return UploadedFile("doc", "a.txt", "text/plain", {}, spool_size=spool_size, temp_dir=folder)


async def test_small_content_stays_in_memory(tmp_path: Path) -> None:
    upload = upload_in(tmp_path, 10)
    assert await upload.write(b"0123456789") == 10
    assert upload.in_memory
    assert upload.size == 10
    assert await upload.seek(2) == 2
    assert await upload.read(3) == b"234"
    assert await upload.read() == b"56789"
    assert await upload.read() == b""
    upload.close()
    assert upload.closed


async def test_content_past_the_spool_size_moves_to_disk(tmp_path: Path) -> None:
    upload = upload_in(tmp_path, 10)
    await upload.write(b"01234")
    assert upload.write_nowait(b"56789")
    assert not upload.write_nowait(b"!")  # would pass the spool size: nothing written
    assert upload.size == 10
    await upload.write(b"abc")
    assert not upload.in_memory
    assert upload.size == 13
    assert await upload.seek(-3, os.SEEK_END) == 10
    assert await upload.read() == b"abc"
    await upload.seek(0)
    assert await upload.read() == b"0123456789abc"
    assert os.listdir(tmp_path) == []  # unlinked as it was made
    upload.close()


def test_repr_names_the_file() -> None:
    upload = UploadedFile("doc", "a.txt", "text/plain", {})
    try:
        assert repr(upload) == (
            "<UploadedFile 'doc' filename='a.txt' content_type='text/plain' size=0>"
        )
    finally:
        upload.close()
