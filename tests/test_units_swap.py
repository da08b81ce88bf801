"""Putting a face back (swap/compose.py) and steadying it over time (swap/smooth.py), on small
made-up inputs whose answer is known: fast, and the mutation check's judges for those modules
(tools/mutate.py). The same through `facepair swap`: test_promises.py."""
import cv2
import numpy as np
import pytest

from facepair.swap.compose import face_mask, match_color, paste
from facepair.swap.smooth import SIGMA_SECONDS, Lookahead, SceneCuts, line_fit


def _square(lo=16, hi=48):
    """68 crop landmarks whose hull is the square [lo, hi]^2."""
    pts = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]] * 17, np.float64)
    return pts


# ---- masks ---------------------------------------------------------------------------------------

def test_box_mask_is_the_crop_less_its_edge():
    m = face_mask("box", _square(), 64, erode=1, feather=0)
    assert m.dtype == np.float32 and m.shape == (64, 64)
    assert set(np.unique(m)) == {0.0, 1.0} and m.sum() == 62 * 62                 # a 1 px edge
    assert face_mask("box", _square(), 64, erode=0, feather=0).sum() == 62 * 62   # at least 1
    # --erode 3: 3 px of edge, then 3 px more eroded away
    assert face_mask("box", _square(), 64, erode=3, feather=0).sum() == 52 * 52


def test_hull_mask_is_the_landmarks_hull_shrunk_by_erode():
    m = face_mask("hull", _square(), 64, erode=1, feather=0)
    assert m.sum() == 33 * 33 and m[16, 16] == 1 and m[15, 32] == 0 and m[32, 49] == 0
    assert face_mask("hull", _square(), 64, erode=1.4, feather=0).sum() == 31 * 31   # 1 px eroded
    m = face_mask("hull", _square(), 64, erode=2.6, feather=0)                # rounds to 3 px
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (19, 45, 19, 45) and m.sum() == 27 * 27
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    disk = np.stack([32 + 20 * np.cos(t), 32 + 20 * np.sin(t)], 1)
    whole = face_mask("hull", disk, 64, erode=1, feather=0).sum()
    area = face_mask("hull", disk, 64, erode=5, feather=0).sum()            # eroded by a disk too:
    assert area == pytest.approx(np.pi * (np.sqrt(whole / np.pi) - 5) ** 2, rel=0.02)   # 5 px less radius
    edge = face_mask("hull", _square(0, 63), 64, erode=2, feather=0)          # the crop's edge
    assert edge[:2].sum() == 0 and edge[:, -2:].sum() == 0 and edge[4, 4] == 1


def test_feather_softens_the_edge_over_about_feather_pixels():
    hard = face_mask("hull", _square(), 64, erode=1, feather=0)
    soft = face_mask("hull", _square(), 64, erode=1, feather=4)
    assert soft.sum() == pytest.approx(hard.sum(), rel=0.01)                  # moved, not lost
    row = soft[32]
    assert row[32] == pytest.approx(1, abs=1e-3) and row[2] == pytest.approx(0, abs=1e-3)
    assert 0.4 < row[16] < 0.6                                                 # half-way at the hull
    ramp = np.count_nonzero((row[:32] > 0.1) & (row[:32] < 0.9))
    assert 4 <= ramp <= 6            # 10 % to 90 %: 2.56 sigma of a Gaussian of sigma feather / 2
    column = soft[:32, 32]                                                     # up and down as well
    assert 4 <= np.count_nonzero((column > 0.1) & (column < 0.9)) <= 6
    assert not np.array_equal(face_mask("hull", _square(), 64, 1, 0.5), hard)  # any feather softens
    wide = face_mask("hull", _square(), 64, 1, 8)[32, :32]
    assert 9 <= np.count_nonzero((wide > 0.1) & (wide < 0.9)) <= 11           # twice the feather


# ---- colour --------------------------------------------------------------------------------------

def test_colour_modes():
    rng = np.random.default_rng(0)
    face = rng.integers(60, 120, (32, 32, 3)).astype(np.uint8)
    orig = rng.integers(120, 220, (32, 32, 3)).astype(np.uint8)
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1
    sel = mask > 0.5
    assert match_color(face, orig, mask, "none") is face
    tiny = np.zeros_like(mask)
    tiny[0, :15] = 1                                                          # under 16 px: as it is
    for mode in ("mean", "lab", "hist"):
        assert match_color(face, orig, tiny, mode) is face
    tiny[1, 0] = 1
    assert match_color(face, orig, tiny, "mean") is not face                 # 16: matched
    half = mask * 0.5                                                         # not over one half: none
    assert match_color(face, orig, half, "mean") is face
    mean = match_color(face, orig, mask, "mean")
    want = face + (orig[sel].mean(0) - face.astype(np.float32)[sel].mean(0))
    assert mean.dtype == np.uint8 and np.abs(mean - want.clip(0, 255)).max() <= 1
    lab = match_color(face, orig, mask, "lab")
    fl, ol = (cv2.cvtColor(x, cv2.COLOR_RGB2LAB).astype(float)[sel] for x in (lab, orig))
    assert fl.mean(0) == pytest.approx(ol.mean(0), abs=1) and fl.std(0) == pytest.approx(ol.std(0), rel=0.03)
    before = cv2.cvtColor(face, cv2.COLOR_RGB2LAB).astype(float)[sel]
    assert np.abs(before.mean(0) - ol.mean(0)).max() > 20                     # it had to move
    hist = match_color(face, orig, mask, "hist")
    assert hist.dtype == np.uint8 and mean.dtype == np.uint8 and lab.dtype == np.uint8
    for c in range(3):                                                        # each channel's values
        assert np.abs(np.sort(hist[..., c].ravel()).astype(int) - np.sort(orig[..., c].ravel())).max() <= 2
    flat = np.full((32, 32, 3), 100, np.uint8)
    assert np.array_equal(match_color(flat, np.full((32, 32, 3), 150, np.uint8), mask, "mean"),
                          np.full((32, 32, 3), 150, np.uint8))
    bright = np.full((32, 32, 3), 250, np.uint8)
    assert match_color(flat, bright + 0, mask, "mean").max() == 250
    over = match_color(np.full((32, 32, 3), 10, np.uint8), bright, mask * 0 + 1, "mean")
    assert over.max() == 250
    spread = rng.integers(10, 60, (32, 32, 3)).astype(np.uint8)                # shifted past 255:
    up = match_color(spread, np.full((32, 32, 3), 250, np.uint8), mask, "mean")   # held at 255
    assert up.max() == 255 and up.min() > 180
    down = match_color(spread + 190, np.full((32, 32, 3), 5, np.uint8), mask, "mean")   # held at 0
    assert down.min() == 0 and down.max() < 60
    for mode in ("lab", "hist"):
        assert match_color(spread, np.full((32, 32, 3), 250, np.uint8), mask, mode).min() > 150, mode

# ---- pasting -------------------------------------------------------------------------------------

def _shift(x, y):
    """frame -> crop: the crop's corner at frame (x, y), same scale."""
    return np.array([[1.0, 0, -x], [0, 1.0, -y]])


def test_paste_puts_the_face_where_the_transform_says_and_nowhere_else():
    frame = np.full((100, 120, 3), 40, np.uint8)
    face = np.random.default_rng(0).integers(0, 255, (20, 20, 3)).astype(np.uint8)
    full = np.ones((20, 20), np.float32)
    out = frame.copy()
    paste(out, face, full, _shift(30, 50))
    assert np.array_equal(out[50:70, 30:50], face)
    outside = np.ones(out.shape[:2], bool)
    outside[50:70, 30:50] = False
    assert (out[outside] == 40).all()
    out = frame.copy()
    paste(out, face, full * 0.25, _shift(30, 50))                              # a quarter of the face
    quarter = face * 0.25 + 40 * 0.75                                          # up to rounding
    assert np.abs(out[50:70, 30:50] - quarter).max() <= 0.5 + 1e-3
    out = frame.copy()
    paste(out, face, np.zeros_like(full), _shift(30, 50))
    assert np.array_equal(out, frame)
    half = frame.copy()                                                        # half outside the frame
    paste(half, face, full, _shift(110, 90))
    assert np.array_equal(half[90:100, 110:120], face[:10, :10])
    gone = frame.copy()
    paste(gone, face, full, _shift(500, 500))                                  # wholly outside
    assert np.array_equal(gone, frame)
    edge = frame.copy()
    paste(edge, face, full, _shift(119, 10))                                   # 1 px inside: too thin
    assert np.array_equal(edge, frame)
    paste(edge, face, full, _shift(30, 99))                                    # 1 row at the bottom
    assert np.array_equal(edge, frame)
    paste(edge, face, full, _shift(118, 10))                                   # 2 px: pasted
    assert np.array_equal(edge[10:30, 118:], face[:, :2])
    turned, inner = frame.copy(), np.zeros_like(full)                          # a quarter turn, with
    inner[1:-1, 1:-1] = 1                                                      # face_mask's 1 px edge
    paste(turned, face, inner, np.array([[0.0, 1.0, -20.0], [-1.0, 0.0, 80.0]]))   # crop x = y - 20
    assert np.array_equal(turned[21:39, 62:80], np.rot90(face, -1)[1:-1, 1:-1])
    assert (turned != 40).any(2).sum() == 18 * 18                              # every face pixel
    flat = np.full((20, 20, 3), 200, np.uint8)                                 # half a pixel off:
    soft = frame.copy()
    paste(soft, flat, full, _shift(30.5, 50.5))                                # the edge half-covered
    assert set(np.unique(soft)) <= {40, 80, 120, 200} and (soft == 200).all(2).sum() == 19 * 19
    big = frame.copy()                                                          # crop coords at half scale
    paste(big, face, full, np.array([[0.5, 0, -10.0], [0, 0.5, -5.0]]))
    assert np.array_equal(big[10:50:2, 20:60:2], face)                          # every crop pixel
    assert (big[:10] == 40).all() and (big[:, :20] == 40).all() and (big[50:] == 40).all() and (big[:, 60:] == 40).all()


def test_seamless_blend_clones_the_face_into_the_frame():
    rng = np.random.default_rng(1)
    frame = np.full((100, 120, 3), 90, np.uint8)
    face = np.clip(rng.normal(160, 30, (40, 40, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((40, 40), np.float32)
    mask[5:35, 5:35] = 1
    feathered, seamless = frame.copy(), frame.copy()
    paste(feathered, face, mask, _shift(40, 30))
    paste(seamless, face, mask, _shift(40, 30), blend="seamless")
    inside = np.s_[40:60, 50:70]
    assert np.abs(seamless[inside].astype(int) - feathered[inside]).mean() > 20   # not an alpha blend
    # the face's detail comes through (the gradients), its level follows the frame's
    assert np.corrcoef(seamless[inside][..., 0].ravel(), face[10:30, 10:30, 0].ravel())[0, 1] > 0.9
    assert abs(float(seamless[inside].mean()) - 90) < abs(float(face.mean()) - 90) / 2
    assert (seamless[:25] == 90).all() and (seamless[:, :40] == 90).all()
    few = np.zeros((40, 40), np.float32)
    few[10:14, 10:14] = 1                                                     # 16 px: feathered instead
    a, b = frame.copy(), frame.copy()
    paste(a, face, few, _shift(40, 30), blend="seamless")
    paste(b, face, few, _shift(40, 30))
    assert np.array_equal(a, b)


# ---- smoothing -----------------------------------------------------------------------------------

def test_line_fit_is_a_gaussian_weighted_least_squares_line():
    t = np.arange(5.0)
    line = 3 * t - 2
    assert line_fit(t, line, 2.0, 1.0) == pytest.approx(4.0)
    assert line_fit(t, line, 0.0, 1.0) == pytest.approx(-2.0)                # an end: still no lag
    assert line_fit([7.0], [np.array([1.0, 2.0])], 7.0, 1.5) == pytest.approx([1.0, 2.0])
    assert line_fit([3.0], [np.array([5.0])], 4.0, 0.5) == pytest.approx([5.0])      # off its time too
    assert line_fit([2, 2], [1.0, 3.0], 2.0, 1.0) == pytest.approx(2.0)               # one time, twice
    assert line_fit([0, 1], [0.0, 1.0], 0.5, 10.0) == pytest.approx(0.5)              # wide: a line
    bump = np.array([0.0, 1.0, 0.0])
    w = np.exp(-0.5)                                                           # u = +-1, sigma 1
    assert line_fit([0, 1, 2], bump, 1.0, 1.0) == pytest.approx(1 / (1 + 2 * w))
    values = np.array([0.0, 1.0, 4.0, 2.0])
    for at, sigma in ((0.0, 1.5), (1.0, 0.7), (3.0, 2.0)):
        weights = np.sqrt(np.exp(-0.5 * ((np.arange(4) - at) / sigma) ** 2))
        slope, icpt = np.polyfit(np.arange(4.0), values, 1, w=weights)
        assert line_fit(np.arange(4), values, at, sigma) == pytest.approx(slope * at + icpt)
    pts = np.stack([line, -line], 1)[:, None].repeat(3, 1)                     # (n, 3, 2) values
    assert line_fit(t, pts, 1.0, 1.0) == pytest.approx(np.array([[1.0, -1.0]] * 3))


def test_the_smoothing_window_is_bounded_whatever_rate_a_file_declares():
    """A crafted file declaring 1,000,000 frames a second made the window hold every frame
    (3.8 GB for 600 frames of 720p): the rate counts up to 240 frames a second."""
    assert Lookahead.for_video(30).half == 3
    assert Lookahead.for_video(1e6).half == Lookahead.for_video(240).half == 24


def test_lookahead_holds_each_frame_until_the_frames_after_it_are_read():
    look = Lookahead(1.5)
    assert look.half == 3 and Lookahead(0.4).half == 1 and Lookahead(2.0).half == 4
    assert Lookahead(0).half == 0 and Lookahead(-1).half == 0
    assert Lookahead.for_video(30).sigma == pytest.approx(SIGMA_SECONDS * 30) == pytest.approx(1.5)
    off = Lookahead.for_video(30, smooth=False)
    assert off.sigma == 0 and off.half == 0
    rng = np.random.default_rng(0)
    path = [rng.normal(0, 1, (68, 2)) + 5 * t for t in range(10)]
    released = []
    for t, marks in enumerate(path):
        got = look.push(t, f"frame {t}", [("face", marks)])
        assert [g[0] for g in got] == ([t - 3] if t >= 3 else [])
        released += got
    rest = look.flush()
    assert [g[0] for g in rest] == [7, 8, 9] and look.flush() == []
    released += rest
    for index, payload, ((smoothed, found),) in released:
        assert payload == f"frame {index}" and found is path[index]
        near = [i for i in range(10) if abs(i - index) <= 3]
        assert smoothed == pytest.approx(line_fit(near, [path[i] for i in near], index, 1.5))
    assert not look.paths                                                      # nothing kept after


def test_lookahead_keeps_tracks_apart_and_passes_frames_through_unsmoothed():
    look, a, b = Lookahead(1.0), np.zeros((68, 2)), np.ones((68, 2))
    out = []
    for t in range(6):
        faces = [("a", a + t)] + ([("b", b * 100 - t * t)] if t >= 2 else [])
        out += look.push(t, None, faces)
    out += look.flush()
    assert [o[0] for o in out] == list(range(6))
    for index, _, faces in out:
        assert faces[0][0] == pytest.approx(a + index)                          # steady: exactly
    b_track = {i: faces[1][0] for i, _, faces in out if len(faces) == 2}
    near = [i for i in range(2, 6) if abs(i - 3) <= 2]
    assert b_track[3] == pytest.approx(line_fit(near, [b * 100 - i * i for i in near], 3, 1.0))
    plain = Lookahead(0)
    got = plain.push(0, "p", [("a", a)])
    assert len(got) == 1 and got[0][2][0][0] is a and not plain.paths


def test_lookahead_forgets_a_face_it_no_longer_needs():
    look = Lookahead(1.0)                                                      # half 2
    for t in range(3):
        look.push(t, None, [("gone", np.zeros((68, 2)))])
    for t in range(3, 9):
        look.push(t, None, [])
    assert "gone" not in look.paths and len(look.held) <= 3


def test_scene_cuts():
    cuts = SceneCuts()
    grey = lambda v: np.full((72, 128, 3), v, np.uint8)
    assert cuts(grey(100)) is False                                            # the first frame
    assert cuts(grey(100)) is False
    assert cuts(grey(131)) is True                                             # 31 grey levels
    assert cuts(grey(161)) is False                                            # 30: not over
    assert SceneCuts(threshold=5)(grey(0)) is False
    low = SceneCuts(threshold=5)
    low(grey(0))
    assert low(grey(6)) is True
    noise = np.random.default_rng(0).integers(0, 255, (72, 128, 3)).astype(np.uint8)
    c = SceneCuts()
    c(noise)
    assert c(np.ascontiguousarray(noise[:, ::-1])) is False                    # thumbnails: same gist


def test_a_file_that_is_no_video_is_one_line_with_ffmpegs_reason(tmp_path):
    """FFmpeg's reason in words, without its error number or the path said twice
    ("[Errno 1094995529] Invalid data found when processing input: 'x.mp4'")."""
    from facepair.errors import FacepairError
    from facepair.media.video import VideoReader
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(FacepairError) as e:
        VideoReader(junk)
    assert str(e.value) == f"cannot open video {junk}: Invalid data found when processing input"
