"""`data download` against a local HTTP server: checksum, resume, extraction."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicebench.errors import ChecksumError, UserError
from devicebench.workloads.download import download_dataset


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support (the stdlib server has none)."""

    ranges: list[str] = []

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        if header:
            type(self).ranges.append(header)
            start = int(header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, bytes]]:
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("tiny-imagenet-200/wnids.txt", "n1\n")
        zf.writestr("tiny-imagenet-200/train/n1/images/a.JPEG", b"x" * 5000)
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(served), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _RangeHandler.ranges = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/tiny-imagenet-200.zip", tmp_path, archive.read_bytes()
    httpd.shutdown()
    httpd.server_close()


def test_download_checks_and_extracts(server) -> None:  # type: ignore[no-untyped-def]
    url, tmp, data = server
    seen: list[int] = []
    result = download_dataset(url, tmp / "dl", sha256=hashlib.sha256(data).hexdigest(),
                              on_progress=lambda done, total: seen.append(done))
    assert result.archive.read_bytes() == data and seen[-1] == len(data)
    assert result.extracted == tmp / "dl" / "tiny-imagenet-200"
    assert (result.extracted / "wnids.txt").read_text() == "n1\n"


def test_wrong_checksum_is_an_error_and_the_file_is_not_used(server) -> None:  # type: ignore[no-untyped-def]
    url, tmp, _ = server
    with pytest.raises(ChecksumError, match="expected 0000"):
        download_dataset(url, tmp / "dl", sha256="0" * 64)
    assert not list((tmp / "dl").glob("*.zip")) and not list((tmp / "dl").glob("*.part"))
    assert not (tmp / "dl" / "tiny-imagenet-200").exists()


def test_partial_download_is_resumed(server) -> None:  # type: ignore[no-untyped-def]
    url, tmp, data = server
    (tmp / "dl").mkdir()
    (tmp / "dl" / "tiny-imagenet-200.zip.part").write_bytes(data[:1000])
    result = download_dataset(url, tmp / "dl", sha256=hashlib.sha256(data).hexdigest(), extract=False)
    assert result.resumed_from == 1000 and _RangeHandler.ranges == ["bytes=1000-"]
    assert result.archive.read_bytes() == data and result.extracted is None


def test_unreachable_server_is_a_user_error(tmp_path: Path) -> None:
    from devicebench.errors import UserError

    with pytest.raises(UserError, match="cannot reach|failed"):
        download_dataset("http://127.0.0.1:9/none.zip", tmp_path, timeout=2)


def test_to_naming_an_existing_file_is_one_line(server) -> None:  # type: ignore[no-untyped-def]
    url, tmp, _ = server
    (tmp / "afile").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder") as info:
        download_dataset(url, tmp / "afile")
    assert "\n" not in str(info.value)


def test_an_extraction_oserror_is_one_line(server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    url, tmp, _ = server

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", full)
    with pytest.raises(UserError, match="cannot extract .*No space left") as info:
        download_dataset(url, tmp / "dl")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("names", [["d/a.txt", "d/a.txt"], ["d/A.txt", "d/a.txt"]], ids=["duplicate", "case"])
def test_a_dataset_zip_with_colliding_members_is_not_extracted(tmp_path: Path, names: list[str]) -> None:
    from devicebench.workloads.download import _extract

    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, n in enumerate(names):
            zf.writestr(n, f"member {i}")
    with pytest.raises(UserError, match="two members"):
        _extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
