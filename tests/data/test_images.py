"""Image readers: IDX round trips, headers that lie, bombs, NPZ and image folders."""

from __future__ import annotations

import gzip
import struct
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dlspec.data.images import (
    image_shape,
    load_idx_pair,
    load_image_folder,
    load_npz,
    read_idx,
    read_images_for_predict,
)
from dlspec.errors import DataError

CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D,
         "float64": 0x0E}


def idx_bytes(a: np.ndarray, dims: tuple[int, ...] | None = None) -> bytes:
    """The IDX encoding of ``a`` (big-endian), optionally with a forged shape."""
    dims = a.shape if dims is None else dims
    head = bytes([0, 0, CODES[a.dtype.name], len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return head + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def refused(match: str, fn, *args, **kwargs) -> DataError:
    with pytest.raises(DataError, match=match) as info:
        fn(*args, **kwargs)
    return info.value


def peak_bytes(fn, *args) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(DataError):
            fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", list(CODES))
def test_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write(tmp_path / "a.idx", idx_bytes(a), gz)
    b = read_idx(path)
    assert b.dtype == a.dtype and b.dtype.isnative and b.shape == a.shape
    assert np.array_equal(a, b)


def test_gzip_detected_by_magic_not_name(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(read_idx(write(tmp_path / "plain.gz", idx_bytes(a))), a)
    assert np.array_equal(read_idx(write(tmp_path / "packed.idx", idx_bytes(a), gz=True)), a)


def test_idx_one_dimension_and_empty(tmp_path):
    labels = np.array([3, 1, 4], dtype=np.uint8)
    assert read_idx(write(tmp_path / "l", idx_bytes(labels))).tolist() == [3, 1, 4]
    assert read_idx(write(tmp_path / "e", idx_bytes(np.zeros((0, 2), np.uint8)))).shape == (0, 2)


def test_multi_member_gzip_reads(tmp_path):
    data = idx_bytes(np.arange(600, dtype=np.int32).reshape(20, 30))
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]))
    assert np.array_equal(read_idx(path), np.arange(600).reshape(20, 30))


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_truncated_and_oversized_data_refused(tmp_path, gz):
    data = idx_bytes(np.ones((10, 10), np.uint8))
    e = refused("but the", read_idx, write(tmp_path / "t", data[:-1], gz))
    assert str(e).startswith(str(tmp_path / "t")) and e.code == "data-idx"
    refused("10x10 uint8", read_idx, write(tmp_path / "o", data + b"\0", gz))


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_lying_header_refused_before_allocation(tmp_path, gz):
    # Claims 1000x1000x1000 uint8 (1 GB, under the limit) and holds 10 bytes.
    data = idx_bytes(np.zeros(10, np.uint8), dims=(1000, 1000, 1000))
    path = write(tmp_path / "lie", data, gz)
    refused("1000x1000x1000 uint8", read_idx, path)
    assert peak_bytes(read_idx, path) < 4 << 20


def test_header_over_limit_or_huge_dimension(tmp_path):
    path = write(tmp_path / "a", idx_bytes(np.zeros((10, 11), np.float32)))
    refused("over the limit of 400 bytes", read_idx, path, limit=400)
    huge = bytes([0, 0, 8, 2]) + struct.pack(">2I", 2**32 - 1, 1)
    refused("larger than 2\\*\\*31", read_idx, write(tmp_path / "h", huge))
    # 2**31 x 2**31 x 8 bytes passes each dimension check but not the total.
    big = bytes([0, 0, 0x0E, 2]) + struct.pack(">2I", 2**31, 2**31)
    refused("over the limit", read_idx, write(tmp_path / "b", big, gz=True))


@pytest.mark.parametrize("head", [b"", b"\0\0\x08", b"PK\x03\x04", b"\0\0\x07\x01",
                                  b"\0\0\x08\x00", b"\0\0\x08\x03\0\0\0\x01"])
def test_not_idx(tmp_path, head):
    e = refused("IDX", read_idx, write(tmp_path / "x", head))
    assert e.location.file == str(tmp_path / "x")


def test_corrupt_gzip_and_missing_file(tmp_path):
    refused("corrupt gzip", read_idx, write(tmp_path / "c", b"\x1f\x8b\x08\0garbage-garbage"))
    good = gzip.compress(idx_bytes(np.ones((50, 50), np.uint8)))
    refused("corrupt gzip", read_idx, write(tmp_path / "c2", good[:40]))
    refused("cannot read", read_idx, tmp_path / "absent")


def _bomb(path: Path, dims: tuple[int, ...], isize: int | None = None) -> Path:
    """A gzip of an IDX header for ``dims`` followed by 1 GiB of zeros, in ~1 MB.

    Built of many gzip members (each 1 MiB of zeros), which is valid gzip.
    """
    head = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    data = gzip.compress(head) + gzip.compress(bytes(1 << 20)) * 1024
    if isize is not None:  # forge the trailer so it agrees with the header
        data = data[:-4] + struct.pack("<I", isize)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("forged", [False, True], ids=["trailer", "forged-trailer"])
def test_gzip_bomb_refused(tmp_path, forged):
    path = _bomb(tmp_path / "bomb.gz", (10, 10), isize=116 if forged else None)
    start = time.perf_counter()
    refused("10x10 uint8 .* (more than|more data)", read_idx, path)
    assert time.perf_counter() - start < 1.0
    assert peak_bytes(read_idx, path) < 8 << 20


def test_idx_pair(tmp_path):
    x = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    images = write(tmp_path / "img.gz", idx_bytes(x), gz=True)
    labels = write(tmp_path / "lab", idx_bytes(np.array([7, 3, 7], np.uint8)))
    s = load_idx_pair(images, labels)
    assert s.x.shape == (3, 4, 5, 1) and s.x.dtype == np.uint8 and s.x.flags.c_contiguous
    assert np.array_equal(s.x[..., 0], x)
    assert s.classes == [3, 7] and s.y.tolist() == [1, 0, 1] and s.y.dtype == np.int64
    assert s.source == str(images) and len(s) == 3
    e = refused("2 labels for 3 images", load_idx_pair, images,
                write(tmp_path / "l2", idx_bytes(np.array([1, 2], np.uint8))))
    assert e.location.file == str(tmp_path / "l2")
    refused("one integer per image", load_idx_pair, images,
            write(tmp_path / "lf", idx_bytes(np.zeros(3, np.float32))))
    refused("uint8 images", load_idx_pair,
            write(tmp_path / "f", idx_bytes(np.zeros((3, 4, 5), np.float32))), labels)


# ---------------------------------------------------------------- NPZ

def test_npz_round_trip(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (4, 6, 5, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=x, names=np.array(["dog", "cat", "dog", "ant"]))
    s = load_npz(tmp_path / "d.npz", x_key="images", y_key="names")
    assert np.array_equal(s.x, x) and s.classes == ["ant", "cat", "dog"]
    assert s.y.tolist() == [2, 1, 2, 0]
    np.savez_compressed(tmp_path / "g.npz", x=x[..., 0], y=np.array([5, 5, 2, 9], np.int16))
    s = load_npz(tmp_path / "g.npz")
    assert s.x.shape == (4, 6, 5, 1) and s.classes == [2, 5, 9] and s.y.tolist() == [1, 1, 0, 2]


def test_npz_refusals(tmp_path):
    x = np.zeros((2, 3, 3), np.uint8)
    np.savez(tmp_path / "obj.npz", x=x, y=np.array([1, "a"], dtype=object))
    refused("object array.*never unpickles", load_npz, tmp_path / "obj.npz")
    np.savez(tmp_path / "f.npz", x=x.astype(np.float32), y=np.array([0, 1]))
    refused("expected uint8 images", load_npz, tmp_path / "f.npz")
    np.savez(tmp_path / "k.npz", images=x, y=np.array([0, 1]))
    refused("no array 'x'", load_npz, tmp_path / "k.npz")
    np.savez(tmp_path / "n.npz", x=x, y=np.array([0, 1, 2]))
    refused("3 labels", load_npz, tmp_path / "n.npz")
    np.savez(tmp_path / "yf.npz", x=x, y=np.array([0.5, 1.0]))
    refused("integer or string label", load_npz, tmp_path / "yf.npz")
    np.save(tmp_path / "a.npy", x)
    refused("not an .npz", load_npz, tmp_path / "a.npy")
    e = refused("not an .npz", load_npz, write(tmp_path / "p.npz", b"\x80\x04garbage"))
    assert e.location.file == str(tmp_path / "p.npz") and e.code == "data-npz"


def test_npz_forged_header_refused_before_allocation(tmp_path):
    header = {"descr": "|u1", "fortran_order": False, "shape": (100000, 100, 100)}
    member = bytearray()
    np.lib.format.write_array_header_1_0(_Sink(member), header)
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", bytes(member) + bytes(100))
        z.writestr("y.npy", bytes(member) + bytes(100))
    refused("x.*100000, 100, 100.*but 100 are stored", load_npz, path)
    assert peak_bytes(load_npz, path) < 4 << 20


class _Sink:
    def __init__(self, buf: bytearray) -> None:
        self.buf = buf

    def write(self, data: bytes) -> None:
        self.buf += data


# ---------------------------------------------------------------- image folders

def test_image_folder_without_pillow(tmp_path, monkeypatch):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.png").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "PIL", None)
    refused("needs Pillow: pip install pillow", load_image_folder, tmp_path)
    refused("needs Pillow", read_images_for_predict, tmp_path)


@pytest.fixture
def Image():
    return pytest.importorskip("PIL.Image", reason="Pillow is optional; folder tests need it")


def _png(Image, path: Path, a: np.ndarray) -> Path:
    """Save ``a`` (H, W) grayscale, (H, W, 3) RGB or (H, W, 4) RGBA; the suffix picks the format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def test_image_folder(tmp_path, Image):
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (5, 7, 6), dtype=np.uint8)
    for i, (cls, name) in enumerate([("zebra", "b.png"), ("zebra", "a.PNG"), ("ant", "c.png"),
                                     ("ant", "b.bmp"), ("ant", "a.gif")]):
        _png(Image, tmp_path / cls / name, imgs[i])
    (tmp_path / "ant" / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden").mkdir()
    s = load_image_folder(tmp_path)
    assert s.classes == ["ant", "zebra"] and s.y.tolist() == [0, 0, 0, 1, 1]
    assert s.x.shape == (5, 7, 6, 1) and s.x.dtype == np.uint8
    # Sorted paths: ant/a.gif, ant/b.bmp, ant/c.png, zebra/a.PNG, zebra/b.png
    for got, want in zip(s.x[..., 0], imgs[[4, 3, 2, 1, 0]], strict=True):
        assert np.array_equal(got, want)


def test_image_folder_rgb_and_alpha(tmp_path, Image):
    rgb = np.random.default_rng(3).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    _png(Image, tmp_path / "a" / "x.png", rgb)
    _png(Image, tmp_path / "b" / "y.png", np.dstack([rgb, np.full((4, 4), 255, np.uint8)]))
    s = load_image_folder(tmp_path)
    assert s.x.shape == (2, 4, 4, 3) and np.array_equal(s.x[1], rgb)
    _png(Image, tmp_path / "b" / "z.png", np.dstack([rgb, np.zeros((4, 4), np.uint8)]))
    e = refused("transparent pixels", load_image_folder, tmp_path)
    assert e.location.file == str(tmp_path / "b" / "z.png")


def test_image_folder_mismatches(tmp_path, Image):
    _png(Image, tmp_path / "a" / "1.png", np.zeros((4, 4), np.uint8))
    _png(Image, tmp_path / "a" / "2.png", np.zeros((5, 4), np.uint8))
    e = refused("4x5 grayscale but .*1.png is 4x4 grayscale", load_image_folder, tmp_path)
    assert e.location.file == str(tmp_path / "a" / "2.png")
    _png(Image, tmp_path / "a" / "2.png", np.zeros((4, 4, 3), np.uint8))
    refused("4x4 RGB but .* 4x4 grayscale; all images must have the same size and mode",
            load_image_folder, tmp_path)
    (tmp_path / "a" / "2.png").write_bytes(b"\x89PNG broken")
    refused("cannot read image", load_image_folder, tmp_path)


def test_image_folder_layout_errors(tmp_path, Image):
    refused("not a folder", load_image_folder, tmp_path / "absent")
    refused("no class folders", load_image_folder, tmp_path)
    (tmp_path / "empty").mkdir()
    e = refused("no images", load_image_folder, tmp_path)
    assert e.location.file == str(tmp_path / "empty")


def test_images_for_predict(tmp_path, Image):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    got, names = read_images_for_predict(write(tmp_path / "x.idx", idx_bytes(x), gz=True))
    assert got.shape == (2, 3, 4, 1) and names == ["0", "1"]
    np.savez(tmp_path / "x.npz", x=x)
    got, names = read_images_for_predict(tmp_path / "x.npz")
    assert np.array_equal(got[..., 0], x) and names == ["0", "1"]
    folder = tmp_path / "imgs"
    paths = [_png(Image, folder / "b.png", x[0]), _png(Image, folder / "sub" / "a.png", x[1])]
    _png(Image, folder / ".cache" / "c.png", x[1])
    got, names = read_images_for_predict(folder)
    assert names == [str(p) for p in paths] and np.array_equal(got[..., 0], x)
    got, names = read_images_for_predict(paths[1])
    assert names == [str(paths[1])] and got.shape == (1, 3, 4, 1)
    (tmp_path / "none").mkdir()
    refused("no images", read_images_for_predict, tmp_path / "none")


@pytest.mark.parametrize("gz", [False, True])
def test_image_shape_reads_headers_only(tmp_path, gz):
    """validate learns one image's shape from a header, as training will read it."""
    x = np.zeros((5, 7, 3), np.uint8)
    assert image_shape(write(tmp_path / "i.idx", idx_bytes(x), gz), "idx") == (7, 3, 1)
    # a forged header: its shape, never its 2**31-pixel data, is all that is read
    forged = write(tmp_path / "f.idx", idx_bytes(x, (2, 2**15, 2**15)), gz)
    assert image_shape(forged, "idx") == (2**15, 2**15, 1)
    np.savez_compressed(tmp_path / "c.npz", x=np.zeros((4, 6, 5, 3), np.uint8), y=np.arange(4))
    assert image_shape(tmp_path / "c.npz", "npz") == (6, 5, 3)
    np.savez(tmp_path / "g.npz", x=np.zeros((4, 6, 5), np.uint8), y=np.arange(4))
    assert image_shape(tmp_path / "g.npz", "npz") == (6, 5, 1)


def test_image_shape_is_none_where_the_header_does_not_tell(tmp_path):
    np.savez(tmp_path / "k.npz", images=np.zeros((2, 3, 3), np.uint8))
    np.savez(tmp_path / "v.npz", x=np.zeros((2, 3), np.uint8))
    for path, fmt in [(tmp_path / "k.npz", "npz"), (tmp_path / "v.npz", "npz"),
                      (write(tmp_path / "p.npz", b"\x80\x04garbage"), "npz"),
                      (write(tmp_path / "n.idx", b"\x00\x00\x08"), "idx"),
                      (tmp_path / "missing.npz", "npz"), (tmp_path / "v.npz", "image_folder")]:
        assert image_shape(path, fmt) is None, path
