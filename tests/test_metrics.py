"""evaluate's figures on inputs whose answer is known: a frame against itself, a blurred or
downscaled copy, a swap that always draws one face, a shaking face, a blob far from everyone."""
import cv2
import numpy as np
import pytest

from facepair.evaluate.metrics import (ID_BOUND, detail, expression_figures, face_region, gmsd,
                                       grid, id_figures, jitter, ssim)
from facepair.faces.detect import make_detector
from facepair.faces.landmarks import Landmarker
from facepair.media.video import iter_video

from conftest import OBAMA_CLIP2


@pytest.fixture(scope="module")
def faces():
    """30 frames of a recording and the 68 landmarks of each."""
    det, lm = make_detector("hog"), Landmarker()
    frames = [f for _, f in zip(range(30), (f for _, f in iter_video(OBAMA_CLIP2)))]
    return frames, np.array([lm(f, det(f)[0]) for f in frames])


def test_detail_and_full_reference_figures(faces):
    frames, marks = faces
    f, region = frames[0], face_region(marks[0], frames[0].shape)
    assert 0.03 < region.mean() < 0.5                         # the inner face, not the frame
    d = detail(f, region)
    assert d > 0                                              # a real face has detail
    # the Laplacian's answer: half the contrast halves it, a brightness offset leaves it, and the
    # same face moved with its region keeps it (detail is the face's, not its place's or light's)
    x = f.astype(np.float32)                                  # (unrounded grey: the same to 1 %)
    assert detail(x, region) == pytest.approx(d, rel=0.01)
    assert detail(x * 0.5, region) == pytest.approx(detail(x, region) / 2, rel=1e-5)
    assert detail(x + 20, region) == pytest.approx(detail(x, region), rel=1e-5)
    moved = np.roll(f, (7, -5), axis=(0, 1)), np.roll(region, (7, -5), axis=(0, 1))
    assert detail(*moved) == pytest.approx(d, rel=1e-6)
    blurred = cv2.GaussianBlur(f, (0, 0), 1.5)
    assert detail(blurred, region) / detail(f, region) < 0.6
    face_w = np.ptp(marks[0][:, 0])                           # the face squeezed to 64 px wide
    small = cv2.resize(f, None, fx=64 / face_w, fy=64 / face_w, interpolation=cv2.INTER_AREA)
    low = cv2.resize(small, f.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    assert 0.4 < detail(low, region) / detail(f, region) < 0.95
    x = f.astype(np.float32) / 255
    assert ssim(x, x) == pytest.approx(1.0) and gmsd(f, f) == pytest.approx(0.0)
    assert ssim(x, blurred.astype(np.float32) / 255) < 0.98 and gmsd(f, blurred) > 0.02


def test_grid_sees_periodic_artefacts_and_not_blur_or_noise(faces):
    """Aligned-size crops of a recording: a faint 16 px checker (the first 4 x 4 map of a 64 px
    decoder) or a 2 px column pattern (the last upsampling step) of 2 grey levels raises the
    figure; blur and random noise of the same size do not."""
    frames, marks = faces
    crops = np.stack([cv2.resize(f[int(m[:, 1].min()):int(m[:, 1].max()),
                                   int(m[:, 0].min()):int(m[:, 0].max())], (64, 64),
                                 interpolation=cv2.INTER_AREA) for f, m in zip(frames, marks)])
    base = grid(crops)
    yy, xx = np.mgrid[:64, :64]
    checker = 2 * np.sign(np.sin(2 * np.pi * (xx + 0.5) / 16) * np.sin(2 * np.pi * (yy + 0.5) / 16))
    columns = 2.0 * (xx % 2 * 2 - 1)
    for pattern in (checker, columns):
        assert grid(np.clip(crops + pattern[..., None], 0, 255)) > 1.15 * base
    assert grid(np.stack([cv2.GaussianBlur(c, (0, 0), 1.2) for c in crops])) < base
    noisy = crops + np.random.default_rng(0).normal(0, 2, crops.shape)
    assert grid(np.clip(noisy, 0, 255)) < 1.05 * base


def test_expression_figures_and_jitter(faces):
    _, marks = faces
    same = expression_figures(marks, marks)
    assert same["landmark_error"] == 0 and same["mouth_corr"] == pytest.approx(1)
    assert same["eyelid_corr"] == pytest.approx(1) and same["eyelid_ratio"] == pytest.approx(1)
    one_face = expression_figures(marks, np.repeat(marks[:1], len(marks), 0))   # draws one face
    assert one_face["mouth_corr"] == 0 and one_face["eyelid_corr"] == 0
    assert one_face["landmark_error"] > 0
    assert jitter(list(marks)) > 0
    still = [marks[0]] * 10
    assert jitter(still) == 0
    rng = np.random.default_rng(0)
    shaking = list(marks + rng.normal(0, 2, marks.shape))
    assert jitter(shaking) > 2 * jitter(list(marks))
    assert jitter([marks[0]] * 3 + [None] + list(shaking[:2])) == 0   # only runs of three count
    assert np.isnan(jitter([marks[0], None, marks[1], marks[2]]))


def test_id_needs_the_target_and_nearness():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.1, 128), rng.normal(0, 0.1, 128)
    near_b = b + rng.normal(0, 0.01, (5, 128))
    blob = b + (b - a) * 2 + rng.normal(0, 0.01, (5, 128))   # nearer B than A, far from both
    assert id_figures(near_b, b, a)["id_rate"] == 1
    f = id_figures(blob, b, a)
    assert f["id_forced_rate"] == 1 and f["id_rate"] == 0 and f["id_dist"] > ID_BOUND
