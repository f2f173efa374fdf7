"""Built-in datasets: lookup, verification and downloads (from a local HTTP server only)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dlspec.data.builtin import (
    DATASETS,
    ROLES,
    BuiltinDataset,
    RemoteFile,
    data_dirs,
    fetch,
)
from dlspec.data.images import read_idx
from dlspec.errors import DataError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if not self.path.startswith("/endless/"):
            return super().do_GET()
        self.send_response(200)  # no Content-Length: the body ends when the server closes
        self.end_headers()
        try:
            for _ in range(10_000):
                self.wfile.write(bytes(1 << 16))
        except OSError:
            pass


@pytest.fixture
def server(tmp_path):
    """(base URL, served folder, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DLSPEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DLSPEC_DATA", raising=False)
    return tmp_path / "cache"


def _idx(a: np.ndarray) -> bytes:
    head = bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return gzip.compress(head + a.tobytes(), mtime=0)


TOY = {"train_images": _idx(np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)),
       "train_labels": _idx(np.array([2, 0, 2, 1, 0], np.uint8)),
       "test_images": _idx(np.zeros((2, 4, 4), np.uint8)),
       "test_labels": _idx(np.array([1, 1], np.uint8))}


def toy(*bases: str) -> BuiltinDataset:
    """A small dataset whose files are published at each of ``bases``."""
    files = {}
    for role, data in TOY.items():
        name = role + ".gz"
        files[role] = RemoteFile(name, hashlib.sha256(data).hexdigest(), len(data),
                                 tuple(f"{b}/{name}" for b in bases))
    return BuiltinDataset("toy", "a toy", files, (2, 3, 1))


def publish(root: Path, data: dict[str, bytes] = TOY) -> None:
    for role, blob in data.items():
        (root / f"{role}.gz").write_bytes(blob)


def leftovers(cache: Path) -> list[str]:
    folder = cache / "toy"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verify_and_reuse(server, cache):
    base, root, requests = server
    publish(root)
    ds, seen = toy(base), []
    path = fetch(ds, "train_images", progress=lambda done, total: seen.append((done, total)))
    assert path == cache / "toy" / "train_images.gz"
    assert path.read_bytes() == TOY["train_images"]
    assert seen[-1] == (len(TOY["train_images"]),) * 2
    assert (cache / "toy" / "train_images.gz.sha256").is_file()
    assert fetch(ds, "train_images") == path and requests == ["/train_images.gz"]
    s = ds.load("train")
    assert s.x.shape == (5, 4, 4, 1) and s.classes == [0, 1, 2] and s.y.tolist() == [2, 0, 2, 1, 0]
    assert len(requests) == 2  # only the labels were new


def test_corrupted_download_refused_and_nothing_left(server, cache):
    base, root, _ = server
    publish(root, {"train_images": bytes(len(TOY["train_images"]))})  # same size, wrong bytes
    with pytest.raises(DataError, match="sha256 .*, expected") as info:
        fetch(toy(base), "train_images")
    assert f"{base}/train_images.gz" in str(info.value)
    assert leftovers(cache) == []


def test_missing_first_mirror_then_second(server, cache):
    base, root, requests = server
    (root / "good").mkdir()
    publish(root / "good")
    path = fetch(toy(f"{base}/gone", f"{base}/good"), "test_labels")
    assert path.read_bytes() == TOY["test_labels"]
    assert requests == ["/gone/test_labels.gz", "/good/test_labels.gz"]


def test_oversize_responses_capped(server, cache):
    base, root, _ = server
    publish(root, {"train_images": TOY["train_images"] + b"extra"})
    with pytest.raises(DataError, match="sends .* bytes, expected"):
        fetch(toy(base), "train_images")
    start = time.perf_counter()  # endless body, no Content-Length: stops one byte past the size
    with pytest.raises(DataError, match="more than the expected"):
        fetch(toy(f"{base}/endless"), "train_images")
    assert time.perf_counter() - start < 5
    assert leftovers(cache) == []


def test_total_failure_lists_urls_and_manual_placement(server, cache):
    base, _, _ = server
    dead = "http://127.0.0.1:1"
    with pytest.raises(DataError) as info:
        fetch(toy(base, dead), "test_images", timeout=5)
    text = str(info.value)
    assert f"{base}/test_images.gz: HTTP 404" in text and f"{dead}/test_images.gz: " in text
    assert "DLSPEC_DATA=DIR" in text and "DIR/toy/" in text and "test_labels.gz" in text
    assert info.value.code == "data-download" and leftovers(cache) == []


def test_no_download_when_off(server, cache):
    base, root, requests = server
    publish(root)
    with pytest.raises(DataError, match="downloading is off"):
        fetch(toy(base), "train_images", download=False)
    assert requests == []


def test_user_data_dir_first_and_verified(server, cache, tmp_path, monkeypatch):
    base, root, requests = server
    publish(root)
    mine = tmp_path / "mine"
    (mine / "toy").mkdir(parents=True)
    publish(mine / "toy")
    monkeypatch.setenv("DLSPEC_DATA", str(mine))
    assert fetch(toy(base), "train_labels") == mine / "toy" / "train_labels.gz"
    assert requests == [] and sorted(os.listdir(mine / "toy")) == sorted(
        f"{r}.gz" for r in TOY)  # nothing written into the user's folder
    assert len(list((cache / "verified").iterdir())) == 1


def test_user_copy_with_wrong_hash_is_an_error(server, cache, tmp_path, monkeypatch):
    base, root, requests = server
    publish(root)
    mine = tmp_path / "mine"
    (mine / "toy").mkdir(parents=True)
    bad = mine / "toy" / "train_labels.gz"
    bad.write_bytes(bytes(len(TOY["train_labels"])))
    monkeypatch.setenv("DLSPEC_DATA", str(mine))
    ds = toy(base)
    expected, actual = ds.files["train_labels"].sha256, hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(DataError) as info:
        fetch(ds, "train_labels")
    assert info.value.location.file == str(bad) and info.value.code == "data-hash"
    assert expected in str(info.value) and actual in str(info.value)
    bad.write_bytes(b"short")
    with pytest.raises(DataError, match="size 5 bytes, expected"):
        fetch(ds, "train_labels")
    assert requests == []


def test_verification_is_cached_by_size_and_mtime(server, cache):
    base, root, _ = server
    publish(root)
    ds = toy(base)
    path = fetch(ds, "train_images")
    st = path.stat()
    # Same size and mtime: trusted without rehashing (so a changed byte goes unseen)...
    path.write_bytes(bytes(st.st_size))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fetch(ds, "train_images", download=False) == path
    # ...a new mtime means rehashing, and a bad cached copy is downloaded again.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(DataError, match="sha256"):
        fetch(ds, "train_images", download=False)
    assert fetch(ds, "train_images").read_bytes() == TOY["train_images"]


def test_lookups_and_arguments(monkeypatch, tmp_path):
    monkeypatch.setenv("DLSPEC_DATA", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    assert data_dirs() == [tmp_path / "a", tmp_path / "b", tmp_path / "cache"]
    monkeypatch.delenv("DLSPEC_DATA")
    monkeypatch.delenv("DLSPEC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dirs() == [tmp_path / "xdg" / "dlspec"]
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_dirs() == [Path.home() / ".cache" / "dlspec"]
    with pytest.raises(DataError, match="unknown built-in dataset 'mnst'"):
        fetch("mnst", "train_images")
    with pytest.raises(ValueError, match="no file 'train'"):
        fetch("mnist", "train")
    with pytest.raises(ValueError, match="'train' or 'test'"):
        DATASETS["mnist"].load("validation")


def test_mnist_registry():
    mnist = DATASETS["mnist"]
    assert tuple(mnist.files) == ROLES
    assert mnist.files["test_labels"] == RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542,
        ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
         "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz",
         "http://yann.lecun.com/exdb/mnist/t10k-labels-idx1-ubyte.gz"))
    for f in mnist.files.values():
        assert f.urls[0].startswith("https://") and "yann.lecun.com" in f.urls[-1]


@pytest.fixture
def shared_mnist(monkeypatch) -> Path:
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"{SHARED / 'mnist'} is absent: the MNIST files are not shipped with dlspec")
    monkeypatch.setenv("DLSPEC_DATA", str(SHARED))
    return SHARED / "mnist"


def test_mnist_from_shared_data(shared_mnist):
    test = DATASETS["mnist"].load("test", download=False)
    assert test.x.shape == (10000, 28, 28, 1) and test.x.dtype == np.uint8
    assert test.classes == list(range(10))
    assert np.bincount(test.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                            1009]
    train = DATASETS["mnist"].load("train", download=False)
    assert train.x.shape == (60000, 28, 28, 1) and train.x.flags.c_contiguous
    assert train.x.mean() == pytest.approx(33.3184, abs=1e-4)
    assert np.bincount(train.y)[:3].tolist() == [5923, 6742, 5958]


def test_mnist_train_images_read_fast(shared_mnist):
    start = time.perf_counter()
    x = read_idx(fetch("mnist", "train_images", download=False))
    assert x.shape == (60000, 28, 28)
    assert time.perf_counter() - start < 1.5
