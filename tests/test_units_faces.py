"""Alignment (faces/align.py) on made-up landmarks and pictures whose answer is known: fast, and
the mutation check's judges for that module (tools/mutate.py). Alignment on real footage:
test_extract.py."""
import cv2
import numpy as np
import pytest

from facepair.faces import align


def _similarity(scale, angle, tx, ty):
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def test_template_is_the_mean_face_inside_the_padding():
    t = align.template(100, 0.0)
    assert t.shape == (51, 2) and np.allclose(t, align.MEAN_FACE * 100)
    t = align.template(128)                                     # default padding 0.15
    assert np.allclose(t, (align.MEAN_FACE * 0.7 + 0.15) * 128)
    assert t[:, 0].min() == pytest.approx(0.15 * 128, abs=0.1) and t[:, 0].max() == pytest.approx(0.85 * 128, abs=3)
    assert align.TEMPLATE_FROM == 17 and len(align.MEAN_FACE) == 68 - 17
    assert align.MEAN_FACE[0] == pytest.approx((0.000213256, 0.106454))      # dlib's mean face
    assert align.MEAN_FACE[-1] == pytest.approx((0.42689, 0.824182))


def test_align_transform_undoes_a_similarity_exactly():
    """Landmarks that are the template moved by a known rotation, scale and shift: the fitted
    transform maps them back onto the template, whatever the jaw line does."""
    size, pad = 64, 0.2
    frame_from_crop = _similarity(2.5, 0.3, 40.0, -12.0)
    marks = np.zeros((68, 2))
    marks[17:] = align.map_points(frame_from_crop, align.template(size, pad))
    marks[:17] = np.random.default_rng(0).uniform(0, 300, (17, 2))        # the jaw: ignored
    m = align.align_transform(marks, size, pad)
    assert m.shape == (2, 3)
    assert np.allclose(align.map_points(m, marks[17:]), align.template(size, pad), atol=1e-8)
    assert np.sqrt(abs(np.linalg.det(m[:, :2]))) == pytest.approx(1 / 2.5)
    default = align.align_transform(marks, size)                           # padding 0.15
    assert np.allclose(align.map_points(default, marks[17:]), align.template(size), atol=0.5)
    assert not np.allclose(default, m)


def test_box_transform_stretches_the_detector_box_to_the_crop():
    m = align.box_transform((10, 20, 50, 100), 64)
    assert np.allclose(align.map_points(m, np.array([[10, 20], [50, 100]])), [[0, 0], [64, 64]])
    assert m[0, 1] == 0 and m[1, 0] == 0
    flat = align.box_transform((5, 5, 5, 5), 32)                          # an empty box: 1 px wide
    assert np.allclose(flat, [[32, 0, -160], [0, 32, -160]])
    assert align.box_transform((0, 0, 8, 4), 16)[1, 1] == 4 and align.box_transform((0, 0, 8, 4), 16)[0, 0] == 2


def test_map_points():
    m = np.array([[2.0, 0, 1], [0, 3.0, -1]])
    assert np.allclose(align.map_points(m, np.array([[1.0, 1.0], [0.0, 2.0]])), [[3, 2], [1, 5]])


def _area(frame, x0, y0, k, n):
    """n x n pixels: the mean of the k x k area centred on frame pixel (x0 + k i, y0 + k j)
    (k + 1 taps, the two outer ones half weight)."""
    w = np.ones(k + 1)
    w[[0, -1]] = 0.5
    w /= k
    f, h = frame.astype(np.float64), k // 2
    out = np.zeros((n, n, 3))
    for dy in range(k + 1):
        for dx in range(k + 1):
            ys, xs = y0 - h + dy, x0 - h + dx
            out += w[dy] * w[dx] * f[ys:ys + k * n:k, xs:xs + k * n:k]
    return out


def test_warp_crop_cuts_what_the_transform_says_and_shrinks_without_aliasing():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3)).astype(np.uint8)
    crop = align.warp_crop(frame, np.array([[1.0, 0, -30], [0, 1.0, -40]]), 32)
    assert crop.shape == (32, 32, 3) and np.array_equal(crop, frame[40:72, 30:62])     # 1:1
    crop = align.warp_crop(frame, np.array([[1.0, 0, 5], [0, 1.0, 0]]), 16)            # past the edge:
    assert np.array_equal(crop[:, 5:], frame[:16, :11]) and np.array_equal(crop[:, 4], frame[:16, 0])
    # shrinking 4x: each crop pixel the mean of the k x k frame area centred where the transform
    # puts it (area averaging), not one frame pixel in k (aliasing)
    crop = align.warp_crop(frame, np.array([[0.25, 0, -5.0], [0, 0.25, -2.0]]), 16)
    assert np.abs(crop.astype(int) - _area(frame, 20, 8, 4, 16)).max() <= 1
    crop = align.warp_crop(frame, np.array([[0.5, 0, -10.0], [0, 0.5, -5.0]]), 30)     # 2x
    assert np.abs(crop.astype(int) - _area(frame, 20, 10, 2, 30)).max() <= 1
    slight = np.array([[0.95, 0, 0.0], [0, 0.95, 0.0]])                           # >= 0.9: direct
    assert np.array_equal(align.warp_crop(frame, slight, 20),
                          cv2.warpAffine(frame, slight, (20, 20), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    rotated = np.array([[0.0, -0.5, 80.0], [0.5, 0.0, -5.0]])                     # det 0.25: 2x
    crop = align.warp_crop(frame, rotated, 20)
    assert crop.shape == (20, 20, 3)
    assert abs(float(crop.mean()) - float(frame.mean())) < 10 and crop.std() < 0.6 * frame.std()  # averaged
