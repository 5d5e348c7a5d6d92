"""Tests for reglab.data.download against a real HTTP server on 127.0.0.1."""

import gzip
import http.server
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from reglab.data.download import download_file
from reglab.data.sources import FASHION_MNIST, MNIST
from reglab.data.vision import load

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data absent")
LABELS = MNIST.files["test"][1]  # t10k-labels: 4.5 kB, quick to serve


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves ../shared/data; the server's mode can truncate, corrupt or fail."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        server.requests += 1
        if server.mode == "flaky" and server.requests <= server.failures:
            self.send_error(503)
            return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        sent = body
        if server.mode == "truncate":
            sent = body[: len(body) // 2]
        elif server.mode == "corrupt":
            # same length, gzip stream intact, one decompressed byte changed
            raw = bytearray(gzip.decompress(body))
            raw[len(raw) // 2] ^= 0xFF
            body = sent = gzip.compress(bytes(raw))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(sent)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(SHARED))
    )
    httpd.mode, httpd.requests, httpd.failures = "ok", 0, 0
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _fetch(server, dest, **kwargs):
    url = f"{server.url}/mnist/{LABELS.name}"
    options = dict(retries=2, backoff=0.0, timeout=5.0) | kwargs
    return download_file(url, dest / LABELS.name, LABELS, **options)


def test_download_writes_the_verified_file_and_nothing_else(server, tmp_path):
    path = _fetch(server, tmp_path)
    assert path.read_bytes() == (SHARED / "mnist" / LABELS.name).read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [LABELS.name]


def test_truncating_server_fails_after_retries_leaving_no_file(server, tmp_path):
    server.mode = "truncate"
    with pytest.raises(OSError, match=r"failed after 3 attempt\(s\).* sent \d+ of \d+"):
        _fetch(server, tmp_path)
    assert server.requests == 3
    assert list(tmp_path.iterdir()) == []


def test_corrupt_bytes_fail_the_checksum_leaving_no_file(server, tmp_path):
    server.mode = "corrupt"
    with pytest.raises(ValueError, match=r"checksum mismatch for download of .*sha256"):
        _fetch(server, tmp_path)
    assert server.requests == 1  # a wrong checksum is not retried
    assert list(tmp_path.iterdir()) == []


def test_transient_server_errors_are_retried(server, tmp_path):
    server.mode, server.failures = "flaky", 2
    _fetch(server, tmp_path)
    assert server.requests == 3
    assert (tmp_path / LABELS.name).is_file()


def test_missing_file_is_not_retried(server, tmp_path):
    url = f"{server.url}/mnist/absent.gz"
    with pytest.raises(OSError, match=r"HTTP 404 after 1 attempt\(s\)"):
        download_file(url, tmp_path / "absent.gz", LABELS, retries=3, backoff=0.0)
    assert list(tmp_path.iterdir()) == []


def test_failed_download_keeps_an_existing_good_file(server, tmp_path):
    good = _fetch(server, tmp_path).read_bytes()
    server.mode = "corrupt"
    with pytest.raises(ValueError, match="checksum mismatch"):
        _fetch(server, tmp_path)
    assert (tmp_path / LABELS.name).read_bytes() == good


def test_load_with_download_fetches_full_fashion_train_into_the_cache(server, tmp_path):
    x, y = load(
        "fashion-mnist",
        download=True,
        data_dir=tmp_path,
        base_url=f"{server.url}/fashion-mnist/",
    )
    assert x.shape == (60_000, 784) and np.bincount(y).tolist() == [6000] * 10
    names = sorted(p.name for p in (tmp_path / "fashion-mnist").iterdir())
    assert names == sorted(f.name for f in FASHION_MNIST.files["train"])
    # a second load reads the cache: no request reaches the server
    before = server.requests
    load(
        "fashion-mnist",
        download=True,
        data_dir=tmp_path,
        base_url="http://127.0.0.1:9/",
    )
    assert server.requests == before


def test_load_with_download_replaces_a_corrupt_cached_copy(
    server, tmp_path, monkeypatch
):
    monkeypatch.setenv("REGLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("REGLAB_DATA", raising=False)
    cached = tmp_path / "mnist" / LABELS.name
    cached.parent.mkdir()
    cached.write_bytes(b"not a gzip file")
    _, y = load("mnist", split="test", download=True, base_url=f"{server.url}/mnist")
    assert y[:3].tolist() == [7, 2, 1]
    assert cached.read_bytes() == (SHARED / "mnist" / LABELS.name).read_bytes()


def test_negative_retries_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="retries must be >= 0, got -1"):
        download_file("http://127.0.0.1:9/x", tmp_path / "x", LABELS, retries=-1)
