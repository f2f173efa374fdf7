"""PNG writing and image grids: decoded by a small PNG reader written here from the
format's specification (chunk lengths, CRCs, IHDR, zlib, row filters), and by Pillow
where it is installed (a test-only oracle)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest

from dlspec.pictures import filters_grid, grid, pairs_grid, png_bytes


def decode_png(data: bytes) -> np.ndarray:
    """A minimal PNG decoder for 8-bit grayscale / RGB, filter type 0, no interlace."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and chunks[-1][1] == b""
    w, h, depth, color, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, comp, filt, interlace) == (8, 0, 0, 0) and color in (0, 2)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    channels = 1 if color == 0 else 3
    rows = np.frombuffer(raw, np.uint8).reshape(h, 1 + w * channels)
    assert (rows[:, 0] == 0).all()  # filter type None on every row
    px = rows[:, 1:].reshape(h, w, channels)
    return px[..., 0] if channels == 1 else px


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (3, 4, 3), (64, 33)])
def test_png_round_trips_exactly(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    data = png_bytes(img)
    np.testing.assert_array_equal(decode_png(data), img)


def test_pillow_reads_the_same_pixels():
    image_mod = pytest.importorskip("PIL.Image", reason="Pillow (a test-only oracle) absent")
    rng = np.random.default_rng(1)
    for img, mode in ((rng.integers(0, 256, (9, 13), dtype=np.uint8), "L"),
                      (rng.integers(0, 256, (6, 4, 3), dtype=np.uint8), "RGB")):
        with image_mod.open(io.BytesIO(png_bytes(img))) as im:
            assert im.mode == mode and im.size == (img.shape[1], img.shape[0])
            np.testing.assert_array_equal(np.asarray(im), img)


def test_png_refuses_what_it_cannot_write():
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(h, w\) or \(h, w, 3\)"):
        png_bytes(np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ValueError, match="at least one pixel"):
        png_bytes(np.zeros((0, 3), np.uint8))


def test_grid_places_globally_scaled_tiles_with_padding():
    imgs = np.array([[[0, 1], [2, 3]], [[4, 5], [6, 7]], [[8, 9], [10, 11]]], np.float32)
    g = grid(imgs, cols=2, pad=1, background=0.0)
    assert g.shape == (2 * 2 + 3, 2 * 2 + 3) and g.dtype == np.uint8
    v = np.round(np.arange(12) / 11 * 255).astype(np.uint8)
    want = np.zeros((7, 7), np.uint8)
    want[1:3, 1:3] = v[0:4].reshape(2, 2)
    want[1:3, 4:6] = v[4:8].reshape(2, 2)
    want[4:6, 1:3] = v[8:12].reshape(2, 2)   # the fourth cell stays background
    np.testing.assert_array_equal(g, want)
    np.testing.assert_array_equal(decode_png(png_bytes(g)), want)


def test_grid_scales_each_image_alone_or_not_at_all():
    imgs = np.array([[[0, 2]], [[10, 30]], [[5, 5]]], np.float64)  # three 1x2 images
    g = grid(imgs, cols=3, pad=0, scale="each")
    np.testing.assert_array_equal(g, [[0, 255, 0, 255, 128, 128]])  # constant: mid-gray
    g = grid(np.array([[[-1.0, 0.25]], [[0.5, 2.0]]]), cols=1, pad=2, scale="none",
             background=1.0)
    assert g.shape == (1 * 2 + 3 * 2, 2 + 4)
    assert g[2, 2] == 0 and g[2, 3] == 64 and g[5, 2] == 128 and g[5, 3] == 255
    assert g[0].tolist() == [255] * 6 and g[3:5].ravel().tolist() == [255] * 12


def test_grid_rgb_and_single_channel():
    rgb = np.zeros((2, 1, 1, 3))
    rgb[0, 0, 0] = [1, 0, 0]
    rgb[1, 0, 0] = [0, 0, 1]
    g = grid(rgb, cols=2, pad=0, scale="none")
    assert g.shape == (1, 2, 3)
    np.testing.assert_array_equal(g, [[[255, 0, 0], [0, 0, 255]]])
    np.testing.assert_array_equal(decode_png(png_bytes(g)), g)
    one = grid(np.ones((1, 2, 2, 1)) * 0.5, cols=1, pad=0, scale="none")
    assert one.shape == (2, 2) and (one == 128).all()


def test_grid_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        grid(np.zeros((3, 4)), cols=2)
    with pytest.raises(ValueError, match="cols must be a positive integer"):
        grid(np.zeros((1, 2, 2)), cols=0)
    with pytest.raises(ValueError, match="scale must be one of"):
        grid(np.zeros((1, 2, 2)), cols=1, scale="local")


def test_filters_grid_is_each_hidden_units_weights_scaled_per_tile():
    k = np.zeros((6, 2))           # 6 visible as 2x3 images, 2 hidden units
    k[:, 0] = np.arange(6)         # ramp
    k[:, 1] = -np.arange(6) * 100  # reversed ramp on another scale
    g = filters_grid(k, (2, 3), cols=2, pad=0)
    ramp = np.round(np.arange(6) / 5 * 255).astype(np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(g[:, :3], ramp)
    np.testing.assert_array_equal(g[:, 3:], ramp[::-1, ::-1])
    with pytest.raises(ValueError, match="n_visible = 9"):
        filters_grid(k, (3, 3), cols=2)


def test_pairs_grid_puts_reconstructions_under_their_originals():
    orig = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])      # three 1x2 images, flat
    recon = np.array([[0.5, 1.0], [1.0, 0.5], [0.25, 0.0]])
    g = pairs_grid(orig, recon, cols=2, pad=0, image_shape=(1, 2), background=0.0)
    # rows: originals 0 1 | their reconstructions | original 2 + empty | its reconstruction
    want = np.array([[0, 255, 255, 255], [128, 255, 255, 128], [0, 0, 0, 0], [64, 0, 0, 0]],
                    np.uint8)
    np.testing.assert_array_equal(g, want)
    np.testing.assert_array_equal(decode_png(png_bytes(g)), want)
    with pytest.raises(ValueError, match="differ in shape"):
        pairs_grid(orig, recon[:2], cols=2)


def test_image_preprocessing_undone_gives_the_raw_pixels():
    from dlspec.data.image_prep import ImagePreprocessor

    raw = np.random.default_rng(0).integers(0, 256, (5, 4, 3, 2), dtype=np.uint8)
    pre = ImagePreprocessor.fit(raw, [{"scale": 255}, {"normalize": {"mean": [0.5, 0.2],
                                                                      "std": [0.5, 0.3]}}])
    back = pre.pixels(pre.transform(raw))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, raw, atol=1e-3)


def test_samples_are_drawn_in_pixel_space_not_stretched():
    """A generator's tanh outputs under normalize {mean: 0.5, std: 0.5}: -1 is black, 1
    white, 0 mid-gray, whatever the other samples hold (a collapsed gray stays gray)."""
    from types import SimpleNamespace

    from dlspec.data.image_prep import ImagePreprocessor
    from dlspec.program_run import Pictures

    pre = ImagePreprocessor((2, 2, 1), 255.0, np.array([0.5], np.float32),
                            np.array([0.5], np.float32))
    pictures = Pictures.__new__(Pictures)
    pictures.ds, pictures.image = SimpleNamespace(inputs={"image": pre}), ("image", (2, 2, 1))
    values = np.array([[-1, 0, 0.5, 1], [0, 0, 0, 0]], np.float32)
    images, scale = pictures._shown(values)
    assert scale == "none" and images.shape == (2, 2, 2)
    np.testing.assert_allclose(images[0].ravel(), [0, 0.5, 0.75, 1], atol=1e-6)
    g = decode_png(png_bytes(grid(images, 2, pad=0, scale=scale)))
    np.testing.assert_array_equal(g[:, 2:], 128)   # the all-zero sample: gray, not stretched
    assert g[0, 0] == 0 and g[1, 1] == 255


def test_samples_draw_their_codes_from_the_noise_inputs_distribution(monkeypatch):
    """The fixed latent codes of the sample grids come from each noise input's own
    distribution (here uniform in [5, 6]), as training draws them, not always N(0, 1)."""
    from types import SimpleNamespace

    import dlspec.program_run as program_run
    from dlspec.data.image_prep import ImagePreprocessor
    from dlspec.program_run import Pictures

    seen = {}

    def node_values(net, value, feeds):
        seen.update(feeds)
        return np.zeros((len(feeds["z"]), 4), np.float32)

    monkeypatch.setattr(program_run, "node_values", node_values)
    monkeypatch.setattr(Pictures, "_generator", lambda self: "fake")
    pictures = Pictures.__new__(Pictures)
    pictures.spec = SimpleNamespace(train=SimpleNamespace(seed=0))
    pictures.program = SimpleNamespace(noise={"z": {"uniform": [3], "low": 5.0, "high": 6.0}})
    pictures.net = SimpleNamespace(graph=SimpleNamespace(
        input_map={"z": SimpleNamespace(shape=(None, 3))}))
    pictures.ds = SimpleNamespace(inputs={"image": ImagePreprocessor(
        (2, 2, 1), 255.0, np.zeros(1, np.float32), np.ones(1, np.float32))})
    pictures.image, pictures.files, pictures.listed = ("image", (2, 2, 1)), {}, []
    pictures.samples(None)
    z = seen["z"]
    assert z.shape == (program_run.SAMPLES, 3) and z.dtype == np.float32
    assert z.min() >= 5 and z.max() <= 6
    assert "samples.png" in pictures.files
