"""evaluate's figures (evaluate/metrics.py) on small made-up inputs whose answer is worked out by
hand or by an independent few lines here: fast (no media, no model), and the mutation check's
judges for that module (tools/mutate.py)."""
import cv2
import numpy as np
import pytest

from facepair.evaluate import metrics as M
from facepair.faces.landmarks import INNER_FACE


def _face(mouth=0.0, lids=0.0, shift=(0.0, 0.0), eyes=40.0):
    """68 landmarks: eye centres `eyes` px apart, inner lips `mouth` px apart (3 facing pairs),
    eyelids `lids` px apart (4 facing pairs), everything else on a fixed spread of points."""
    rng = np.random.default_rng(1)
    m = rng.uniform(60, 140, (68, 2))
    m[36:42] = [100 - eyes / 2, 80]
    m[42:48] = [100 + eyes / 2, 80]
    for top, bottom in zip([37, 38, 43, 44], [41, 40, 47, 46]):
        m[top, 1] -= lids / 2
        m[bottom, 1] += lids / 2
    m[[61, 62, 63], 1] = 120 - mouth / 2
    m[[67, 66, 65], 1] = 120 + mouth / 2
    m[[61, 67], 0], m[[62, 66], 0], m[[63, 65], 0] = 95, 100, 105
    return m + np.asarray(shift)


def test_reconstruction_figures_are_per_image_as_defined():
    real = np.full((2, 16, 16, 3), 51, np.uint8)
    rec = real.copy()
    rec[0] += 51                                   # 0.2 off everywhere
    rec[1] += 102                                  # 0.4 off
    f = M.reconstruction(real, rec)
    assert f["l1"] == pytest.approx(0.3)
    # PSNR per image, then the mean (not the PSNR of the pooled error)
    assert f["psnr"] == pytest.approx((10 * np.log10(1 / 0.04) + 10 * np.log10(1 / 0.16)) / 2)
    same = M.reconstruction(real, real)
    assert same["l1"] == 0 and same["psnr"] == pytest.approx(100) and same["ssim"] == pytest.approx(1)
    assert f["ssim"] == pytest.approx((M.ssim(real[0] / 255., rec[0] / 255.) + M.ssim(real[1] / 255., rec[1] / 255.)) / 2)


def _reference_ssim(x, y):
    """Wang et al. 2004 written out: 11x11 Gaussian window of sigma 1.5, K1 0.01, K2 0.03, data
    range 1, population (co)variances, mean over the valid region and the channels."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    blur = lambda a: cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]
    out = []
    for c in range(3):
        a, b = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        ma, mb = blur(a), blur(b)
        va, vb, cov = blur(a * a) - ma ** 2, blur(b * b) - mb ** 2, blur(a * b) - ma * mb
        out.append((((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))).mean())
    return float(np.mean(out))


def test_ssim_is_wangs_definition():
    rng = np.random.default_rng(0)
    x = cv2.GaussianBlur(rng.random((40, 48, 3)), (0, 0), 1.0)
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)
    assert M.ssim(x, y) == pytest.approx(_reference_ssim(x, y), abs=1e-4)
    assert M.ssim(x, x) == pytest.approx(1.0)
    flat_a, flat_b = np.full((20, 20, 3), 0.2), np.full((20, 20, 3), 0.4)
    # two flat pictures: only the luminance term, (2ab + C1) / (a^2 + b^2 + C1)
    assert M.ssim(flat_a, flat_b) == pytest.approx((2 * 0.2 * 0.4 + 1e-4) / (0.2 ** 2 + 0.4 ** 2 + 1e-4), abs=1e-9)


def test_correlation_of_a_constant_is_zero_and_otherwise_pearsons():
    x = np.array([0.1, 0.4, 0.2, 0.9])
    assert M._corr(x, 2 * x + 1) == pytest.approx(1) and M._corr(x, -x) == pytest.approx(-1)
    assert M._corr(x, [0.4, 0.1, 0.3, 0.2]) == pytest.approx(np.corrcoef(x, [0.4, 0.1, 0.3, 0.2])[0, 1])
    assert M._corr(x, np.full(4, 0.3)) == 0 and M._corr(np.full(4, 0.3), x) == 0
    unit = np.array([0.0, 0.5, 0.2, 1.0])                                   # a spread of exactly 1
    assert M._corr(unit, x) == pytest.approx(np.corrcoef(unit, x)[0, 1]) == pytest.approx(M._corr(x, unit))
    assert abs(M._corr(unit, x)) > 0.9
    tiny = np.array([0.0, 1e-12, 0.0, 1e-12])      # moves, but by nothing a face does
    assert M._corr(tiny, x) == 0 and M._corr(x, tiny) == 0


def test_expression_figures_against_hand_made_faces():
    src = np.stack([_face(mouth=m, lids=l) for m, l in ((4, 8), (8, 6), (12, 10), (6, 4))])
    f = M.expression_figures(src, src)
    assert f == {"landmark_error": 0.0, "mouth_corr": pytest.approx(1), "mouth_std_ratio": pytest.approx(1),
                 "eyelid_corr": pytest.approx(1), "eyelid_ratio": pytest.approx(1)}
    # a swap whose mouth opens twice as wide, lids half as far, 2 px to the right everywhere
    swap = np.stack([_face(mouth=2 * m, lids=l / 2, shift=(2, 0)) for m, l in ((4, 8), (8, 6), (12, 10), (6, 4))])
    f = M.expression_figures(src, swap)
    moved = np.linalg.norm(swap[:, INNER_FACE] - src[:, INNER_FACE], axis=2).mean(1) / 40
    assert f["landmark_error"] == pytest.approx(moved.mean())
    assert f["mouth_corr"] == pytest.approx(1) and f["mouth_std_ratio"] == pytest.approx(2)
    assert f["eyelid_corr"] == pytest.approx(1) and f["eyelid_ratio"] == pytest.approx(0.5)
    # the jaw line (points 0-16) is the target's own shape: it does not count
    jaw = swap.copy()
    jaw[:, :17] += 30
    assert M.expression_figures(src, jaw)["landmark_error"] == pytest.approx(f["landmark_error"])
    # over the inter-ocular distance: the same faces twice the size, the same error; each frame
    # over its own (a face near and one far, each 2 px off)
    assert M.expression_figures(2 * src, 2 * swap)["landmark_error"] == pytest.approx(f["landmark_error"])
    near_far = np.stack([_face(eyes=20), _face(eyes=80)])
    g = M.expression_figures(near_far, near_far + [[[2.0, 0]], [[6.0, 0]]])
    assert g["landmark_error"] == pytest.approx((2 / 20 + 6 / 80) / 2)
    # a closed mouth throughout (constant): no correlation, no spread; spread ratio of a still source
    closed = np.stack([_face(mouth=0, lids=l) for l in (8, 6, 10, 4)])
    g = M.expression_figures(src, closed)
    assert g["mouth_corr"] == 0 and g["mouth_std_ratio"] == 0
    assert M.expression_figures(closed, src)["mouth_std_ratio"] == pytest.approx(np.std([4, 8, 12, 6]) / 40 / 1e-9)


def test_face_region_is_the_inner_hull_eroded_by_2_px():
    marks = np.zeros((68, 2))
    marks[:17] = [0, 0]                                        # the jaw: left out
    marks[17:] = [[10, 10], [50, 10], [50, 40], [10, 40]] * 12 + [[30, 25]] * 3
    region = M.face_region(marks, (60, 70, 3))
    assert region.shape == (60, 70) and region.dtype == bool
    ys, xs = np.nonzero(region)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (12, 48, 12, 38) and region.sum() == 37 * 27


def test_detail_is_the_mean_absolute_laplacian_inside_the_region():
    img = np.zeros((9, 9, 3), np.uint8)
    img[4, 4] = 100                                            # one bright point: |lap| sums to 8 x 100
    assert M.detail(img, np.ones((9, 9), bool)) == pytest.approx(800 / 81)
    only_centre = np.zeros((9, 9), bool)
    only_centre[4, 4] = True
    assert M.detail(img, only_centre) == pytest.approx(400)
    grey = img.copy()
    grey[4, 4] = (200, 0, 0)                                   # grey from RGB (0.299 R)
    assert M.detail(grey, only_centre) == pytest.approx(4 * round(0.299 * 200), abs=4)


def test_grid_scores_a_lattice_and_not_a_smooth_or_random_picture():
    rng = np.random.default_rng(0)
    noise = rng.normal(128, 20, (64, 32, 32, 3))
    plain = M.grid(noise)
    assert 0.8 < plain < 1.6                                    # white noise: no lattice
    yy, xx = np.mgrid[:32, :32]
    checker = 8 * np.cos(2 * np.pi * xx / 8)[..., None]         # 8 px: on the lattice (32 / 4)
    assert M.grid(noise + checker) > 2 * plain
    assert M.grid(noise + checker.swapaxes(0, 1)) > 2 * plain                 # down as well as across
    lit = noise + rng.uniform(-60, 60, (64, 1, 1, 1))                          # each crop lit otherwise
    assert M.grid(lit) == pytest.approx(plain, rel=1e-6)
    assert M.grid(noise.mean(-1, keepdims=True).repeat(3, -1) + 50) == pytest.approx(M.grid(noise.mean(-1, keepdims=True).repeat(3, -1)))


def _reference_gmsd(x, y):
    def grad(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
        q = np.pad(g, ((1, 0), (1, 0)), mode="reflect")         # each pixel with the one before it
        g = ((q[:-1, :-1] + q[1:, :-1] + q[:-1, 1:] + q[1:, 1:]) / 4)[::2, ::2]
        p = np.pad(g, 1, mode="reflect")
        gx = sum(p[i:i + g.shape[0], 0:g.shape[1]] - p[i:i + g.shape[0], 2:g.shape[1] + 2] for i in range(3)) / 3
        gy = sum(p[0:g.shape[0], i:i + g.shape[1]] - p[2:g.shape[0] + 2, i:i + g.shape[1]] for i in range(3)) / 3
        return np.hypot(gx, gy)
    mx, my = grad(x), grad(y)
    return float(((2 * mx * my + 170) / (mx ** 2 + my ** 2 + 170)).std())


def test_gmsd_is_xues_definition():
    rng = np.random.default_rng(0)
    x = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3)).astype(np.uint8), (0, 0), 1.5)
    y = cv2.GaussianBlur(x, (0, 0), 2)
    assert M.gmsd(x, x) == 0
    assert M.gmsd(x, y) == pytest.approx(_reference_gmsd(x, y), rel=1e-3)
    assert M.gmsd(x, y) == pytest.approx(M.gmsd(y, x))


def test_id_figures_count_nearer_the_target_and_within_the_bound():
    target, source = np.zeros(128), np.zeros(128)
    source[0] = 1.0
    e = np.zeros((4, 128))
    e[0, 0] = -0.5           # 0.5 from the target (the bound counts), 1.5 from the source
    e[1, 0] = 0.4            # 0.4 / 0.6: counts
    e[2, 0] = 0.55           # nearer the source: neither
    e[3, 1] = 0.8            # nearer the target (0.8 against 1.28) but beyond the bound
    f = M.id_figures(e, target, source)
    assert f["id_rate"] == 0.5 and f["id_forced_rate"] == 0.75
    assert f["id_dist"] == pytest.approx((0.5 + 0.4 + 0.55 + 0.8) / 4)
    assert M.ID_BOUND == 0.5


def test_identity_names_each_figure_by_direction_and_side():
    a, b = np.zeros(128), np.zeros(128)
    b[0] = 1.0
    e = {"a": np.tile(a, (2, 1)), "b": np.tile(b, (3, 1)), "a2b": np.tile(b * 0.8, (2, 1)),
         "b2a": np.tile(b * 0.9, (3, 1))}
    f = M.identity(e, {"a": a, "b": b})
    assert f["id_rate_a2b"] == 1 and f["id_rate_b2a"] == 0 and f["id_forced_rate_b2a"] == 0
    assert f["id_rate_real_a"] == 1 and f["id_rate_real_b"] == 1
    assert f["id_forced_rate_a2b"] == 1 and f["id_forced_rate_real_a"] == 1
    assert f["dist_a2b_to_b"] == pytest.approx(0.2) and f["dist_a2b_to_a"] == pytest.approx(0.8)
    assert f["dist_b2a_to_a"] == pytest.approx(0.9) and f["dist_b2a_to_b"] == pytest.approx(0.1)
    assert f["dist_real_a_to_a"] == 0 and f["dist_real_b_to_b"] == 0
    assert len(f) == 14


def test_jitter_is_the_second_difference_over_the_eye_distance():
    base = _face()
    steady = [base + t * np.array([3.0, -1.0]) for t in range(6)]       # constant speed: 0
    assert M.jitter(steady) == pytest.approx(0, abs=1e-12)
    kick = [base, base + [2.0, 0], base]                                # 2 - 2*2 ... |-4| px
    assert M.jitter(kick) == pytest.approx(4 / 40)
    jaw = [m.copy() for m in kick]
    jaw[1][:17] += 50                                                  # the jaw does not count
    assert M.jitter(jaw) == pytest.approx(4 / 40)
    assert M.jitter(kick + [base + [2.0, 0]]) == pytest.approx((4 / 40 + 4 / 40) / 2)
    assert M.jitter([base, base, None, base, base]) != M.jitter([base, base, None, base, base])  # nan
    assert M.jitter(kick + [None] + steady[:2]) == pytest.approx(4 / 40)
    assert M.jitter([None, *kick]) == pytest.approx(4 / 40) and M.jitter([*kick, None]) == pytest.approx(4 / 40)
    assert M.jitter([base, None, base, base]) != M.jitter([base, None, base, base])      # nan
