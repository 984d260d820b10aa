"""Download a dataset archive: resumable (HTTP Range), SHA-256 checked, then extracted.

Used by ``devicebench data download tiny-imagenet --to DIR``. The archive is written to
``<name>.part`` and renamed only once complete and checked, so an interrupted download is
resumed from where it stopped and a corrupt one is never used.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from devicebench.workloads.files import file_sha256
from devicebench.errors import ChecksumError, UserError

__all__ = ["DownloadResult", "download_dataset", "ChecksumError"]

_CHUNK = 1 << 20


@dataclass
class DownloadResult:
    archive: Path
    sha256: str
    resumed_from: int
    extracted: Path | None



def download_dataset(
    url: str,
    to: Path,
    *,
    sha256: str | None = None,
    extract: bool = True,
    on_progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 60.0,
) -> DownloadResult:
    """Fetch ``url`` into ``to``, resuming a partial ``.part`` file, check, extract.

    Raises:
        UserError: the server cannot be reached or answers with an error, or the archive is
            not a zip.
        ChecksumError: the SHA-256 differs from ``sha256`` (the bad file is removed).
    """
    if to.exists() and not to.is_dir():
        raise UserError(f"--to {to} is a file, not a folder: give a folder for the archive and the extracted set")
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create folder {to}: {exc.strerror or exc}") from None
    name = PurePosixPath(urllib.parse.urlparse(url).path).name or "dataset.zip"
    archive, part = to / name, to / (name + ".part")
    resumed = 0
    if not archive.is_file():
        resumed = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={resumed}-"} if resumed else {})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - user-given URL
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and resumed:  # the .part is already whole
                response = None
            else:
                raise UserError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise UserError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
        if response is not None:
            with response:
                if resumed and response.status != 206:
                    resumed = 0  # the server ignored Range: start again
                length = response.headers.get("Content-Length")
                total = resumed + int(length) if length and length.isdigit() else None
                done = resumed
                try:
                    with part.open("ab" if resumed else "wb") as fh:
                        while True:
                            chunk = response.read(_CHUNK)
                            if not chunk:
                                break
                            fh.write(chunk)
                            done += len(chunk)
                            if on_progress is not None:
                                on_progress(done, total)
                except OSError as exc:  # disk full, or the folder became unwritable
                    raise UserError(f"cannot write {part}: {exc.strerror or exc} (run again to resume)") from None
                if total is not None and done < total:
                    raise UserError(f"download of {url} stopped at {done} of {total} bytes: run again to resume")
        digest = file_sha256(part, _CHUNK)
        if sha256 and digest.lower() != sha256.strip().lower():
            part.unlink()
            raise ChecksumError(
                f"SHA-256 of {name} is {digest}, expected {sha256.strip().lower()}: the file was "
                "deleted and not used (run again, or check --url/--sha256)"
            )
        os.replace(part, archive)
    else:
        digest = file_sha256(archive, _CHUNK)
        if sha256 and digest.lower() != sha256.strip().lower():
            raise ChecksumError(f"existing {archive} has SHA-256 {digest}, expected {sha256}: delete it and run again")
    extracted = None
    if extract:
        extracted = _extract(archive, to)
    return DownloadResult(archive=archive, sha256=digest, resumed_from=resumed, extracted=extracted)


def _extract(archive: Path, to: Path) -> Path:
    """Extract safely (no absolute paths or ``..``, no two members whose names collide
    exactly or case-insensitively); returns the dataset root folder.

    Raises:
        UserError: not a zip, an unsafe or colliding member name, or extraction failed
            (disk full, permissions, a name the file system refuses).
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            seen: set[str] = set()
            for n in names:
                if n.startswith("/") or ".." in PurePosixPath(n).parts:
                    raise UserError(f"{archive} holds an unsafe path {n!r}: not extracted")
                key = n.rstrip("/").casefold()
                if key in seen:
                    raise UserError(f"{archive} holds two members named {n!r} (exactly or but for case): not extracted")
                seen.add(key)
            zf.extractall(to)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, ValueError, zipfile.LargeZipFile) as exc:
        raise UserError(f"{archive} is not a readable zip archive ({exc})") from None
    except OSError as exc:
        raise UserError(f"cannot extract {archive} into {to}: {exc.strerror or exc} "
                        f"({getattr(exc, 'filename', '') or 'disk full or not writable?'})") from None
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    return to / tops.pop() if len(tops) == 1 else to
