"""swap --occlusion: what lies in front of the face is kept from the source (auto), or painted
over (none); the unoccluded face is still swapped; both engines; a bad value is one line."""
import sys

import cv2
import numpy as np
import pytest

from facepair.faces.detect import make_detector
from facepair.faces.landmarks import Landmarker
from facepair.media.video import iter_video
from facepair.swap import compose
from facepair.swap.options import SwapOptions
from facepair.swap.pipeline import SwapSummary, Swapper

from conftest import OBAMA_CLIP2, ROOT, run_cli

sys.path.insert(0, str(ROOT / "benchmarks"))
import occlusion as bench  # noqa: E402

FRAMES = (100, 400, 700)          # of obama_clip2: frames the small model never trained on


def _face(size=128, seed=0):
    """A smooth synthetic 'face' crop, its slightly different 'rebuild' and the hull mask."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    base = np.stack([180 + 30 * x, 130 + 20 * y, 110 + 10 * x * y], -1)
    crop = (base + rng.normal(0, 3, base.shape)).clip(0, 255).astype(np.uint8)
    rebuilt = cv2.GaussianBlur((base + 4).clip(0, 255).astype(np.uint8), (0, 0), 1.5)
    hull = np.zeros((size, size), np.float32)
    cv2.ellipse(hull, (size // 2, size // 2), (size * 2 // 5, size // 2 - 6), 0, 0, 360, 1.0, -1)
    return crop, rebuilt, hull


def test_occlusion_map_finds_a_blob_and_nothing_on_a_clean_face():
    crop, rebuilt, hull = _face()
    assert compose.occlusion(crop, rebuilt, hull).max() == 0            # a clean face: nothing
    occluded = crop.copy()
    cv2.circle(occluded, (50, 85), 14, (40, 60, 200), -1)                # a blue disc on the cheek
    occ = compose.occlusion(occluded, rebuilt, hull)
    disc = np.zeros(hull.shape, np.uint8)
    cv2.circle(disc, (50, 85), 14, 1, -1)
    assert occ[disc > 0].min() > 0.99                                    # all of it, fully
    far = cv2.dilate(disc, np.ones((21, 21), np.uint8)) == 0
    assert occ[far].max() < 0.01                                         # and only near it
    outside = occluded.copy()                                            # outside the hull: never
    cv2.circle(outside, (6, 6), 5, (40, 60, 200), -1)
    assert compose.occlusion(outside, rebuilt, hull)[:12, :12].max() == 0


def test_what_the_model_always_misses_is_no_occluder():
    """A highlight the decoder smears on every face (the prior: the median disagreement over the
    person's training faces) is not taken for something in front of the face."""
    crop, rebuilt, hull = _face()
    smeared = rebuilt.copy()
    cv2.circle(smeared, (64, 70), 8, (250, 235, 235), -1)
    assert compose.occlusion(crop, smeared, hull).max() > 0.99
    prior, _ = compose.disagreement(crop, smeared, hull)
    assert compose.occlusion(crop, smeared, hull, prior).max() == 0


def _frames():
    det, lm = make_detector("hog"), Landmarker()
    out = []
    for _, f in iter_video(OBAMA_CLIP2, only=set(FRAMES)):
        marks = lm(f, det(f)[0])
        occluded = f.copy()
        centre = np.round(0.5 * marks[3] + 0.5 * marks[31]).astype(int)   # the cheek
        r = int(0.12 * np.ptp(marks[:, 0]))
        cv2.circle(occluded, tuple(int(v) for v in centre), r, (30, 60, 220), -1)
        disc = np.zeros(f.shape[:2], np.uint8)
        cv2.circle(disc, tuple(int(v) for v in centre), r - 1, 1, -1)
        hull = np.zeros(f.shape[:2], np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(marks).astype(np.int32)), 1)
        out.append((f, occluded, disc > 0, hull > 0, marks))
    return out


@pytest.fixture(scope="module")
def frames():
    return _frames()


def _swap(model, frame, **opts):
    out = frame.copy()
    s = SwapSummary()
    Swapper(model, SwapOptions(progress=False, **opts)).process([out], 0, False, s)
    assert s.faces_swapped == 1
    return out


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_auto_keeps_the_occluder_that_none_paints_over(trained_model, frames, engine):
    if engine == "onnx":
        pytest.importorskip("onnxruntime")
    for clean, occluded, disc, hull, marks in frames:
        disc = disc & hull
        kept = {m: (np.abs(_swap(trained_model, occluded, occlusion=m, engine=engine).astype(int)
                           - occluded).max(-1) <= 12)[disc].mean() for m in ("none", "auto")}
        assert kept["auto"] >= 0.9 and kept["none"] < 0.5, kept


def _alpha(sw, frame, occlusion):
    """How much of the swapped face swap pastes at each pixel of `frame`, 0..1."""
    fm = sw.models[0]
    jobs = sw.find([frame], 0, SwapSummary())
    _, rebuilt = fm.forward(jobs[:1], None, [0] if occlusion else ())
    mask = sw.mask(jobs[0], fm.size, rebuilt.get(0))
    out = np.zeros(frame.shape, np.uint8)
    compose.paste(out, np.full((fm.size, fm.size, 3), 255, np.uint8), mask, jobs[0][1])
    return out[..., 0] / 255


def test_auto_still_swaps_the_unoccluded_face(trained_model, frames):
    sw = Swapper(trained_model, SwapOptions(progress=False, occlusion="auto"))
    for clean, occluded, disc, hull, marks in frames:
        near = cv2.dilate(disc.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        for frame in (clean, occluded):
            face = (_alpha(sw, frame, False) > 0.99) & ~near
            # mostly: a model of 24 steps draws a blur (the trained ones: benchmarks/occlusion.py)
            assert (_alpha(sw, frame, True)[face] >= 0.5).mean() >= 0.7


def test_occlusion_none_is_the_swap_of_before(trained_model, frames):
    """--occlusion none: the mask is the landmark hull as before (no rebuild is run)."""
    sw = Swapper(trained_model, SwapOptions(progress=False, occlusion="none"))
    jobs = sw.find([frames[0][1]], 0, SwapSummary())
    swapped, rebuilt = sw.models[0].forward(jobs, None, [0])
    assert rebuilt == {} and swapped.shape[0] == 1 and sw.models[0].prior is None


def test_the_prior_is_kept_in_the_model_folder(trained_model, frames, tmp_path, monkeypatch):
    """The occlusion prior (rebuilds of 32 training faces, about 0.5 s at every swap's start) is
    worked out at the first swap and kept in the model folder; the next swap reads it and gives
    the same pixels without the rebuilds. A file made from another checkpoint or a damaged one
    is worked out again; a folder that cannot be written still swaps."""
    import shutil

    from facepair.model import store
    from facepair.swap import pipeline
    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    kept = model / store.PRIOR_FILE.format(side="a")
    kept.unlink(missing_ok=True)
    frame = frames[0][1]
    first = _swap(model, frame, occlusion="auto")
    assert kept.exists()
    worked_out, rework = [], pipeline.FaceModel._occlusion_prior
    monkeypatch.setattr(pipeline.FaceModel, "_occlusion_prior",
                        lambda self, *a: worked_out.append(1) or rework(self, *a))
    assert np.array_equal(_swap(model, frame, occlusion="auto"), first) and worked_out == []
    tensors, meta = store.read_tensors(kept)                       # as if from another checkpoint
    store.save_tensors(kept, tensors, {"made_from": meta["made_from"].replace("step-", "step-9")})
    assert np.array_equal(_swap(model, frame, occlusion="auto"), first) and worked_out == [1]
    assert store.read_tensors(kept)[1] == meta                      # made again, and kept
    kept.write_bytes(b"not a safetensors file")
    assert np.array_equal(_swap(model, frame, occlusion="auto"), first) and len(worked_out) == 2
    elsewhere = tmp_path / "elsewhere.safetensors"                  # a link, even to a good one:
    kept.rename(elsewhere)                                          # not followed, replaced
    kept.symlink_to(elsewhere)
    assert np.array_equal(_swap(model, frame, occlusion="auto"), first) and len(worked_out) == 3
    assert not kept.is_symlink() and store.read_tensors(kept)[1] == meta
    kept.unlink()

    def refuse(*a, **k):
        raise PermissionError("read-only")
    monkeypatch.setattr(pipeline, "save_tensors", refuse)
    assert np.array_equal(_swap(model, frame, occlusion="auto"), first) and not kept.exists()


def test_bad_occlusion_is_one_line_exit_2(trained_model, tmp_path):
    r = run_cli("swap", OBAMA_CLIP2, "--model", trained_model, "-o", tmp_path / "o.mp4",
                "--occlusion", "maybe")
    assert r.returncode == 2
    assert r.stderr.strip().startswith("facepair: error:") and len(r.stderr.strip().splitlines()) == 1
    assert "--occlusion" in r.stderr


def test_video_rebuilds_every_second_frame_and_lends_maps_to_the_frames_between():
    """On video a face is rebuilt on every OCCLUSION_STRIDE-th frame; a face between borrows the
    maps of the same face (its track) in the frames either side, and one with none to borrow is
    rebuilt. Another face standing in its place after a scene cut (a track of its own) lends it
    nothing: the last frame before a cut took the next shot's map."""
    from facepair.swap.pipeline import OCCLUSION_STRIDE, neighbours, rebuilds
    face = np.array([[100.0, 100], [160, 100], [130, 170]])
    other = face + 400                                       # a second face, elsewhere
    mine, theirs, next_shot = object(), object(), object()   # the tracker's Tracks
    jobs = [(k, None, None, face + k, None, 0, mine) for k in range(5)] + [(1, None, None, other, None, 0, theirs)]
    keys = rebuilds(jobs, first_index=0)
    assert OCCLUSION_STRIDE == 2 and keys == [0, 2, 4, 5]    # frames 0, 2, 4; the lone face of frame 1
    assert neighbours(jobs, 1, keys) == [0, 2] and neighbours(jobs, 3, keys) == [2, 4]
    assert rebuilds(jobs, first_index=None) == list(range(6))        # stills: every face
    cut = jobs[:2] + [(2, None, None, face + 2, None, 0, next_shot)]
    assert neighbours(cut, 1, [0, 2]) == [0] and rebuilds(cut, first_index=0) == [0, 2]


def test_a_video_swap_hands_the_trackers_tracks_to_the_occlusion_maps(trained_model, tmp_path, monkeypatch):
    """The unit test above feeds made-up tracks; here a real video swap must hand the tracker's
    Track with each face, so that about every second face borrows its map: without tracks
    (None) every face is rebuilt, maps never lent, and the scene-cut guard is moot."""
    import facepair.swap.pipeline as pipeline
    seen = []
    real = pipeline.rebuilds

    def spy(jobs, first_index):
        picked = real(jobs, first_index)
        seen.append((len(jobs), len(picked), all(j[6] is not None for j in jobs)))
        return picked
    monkeypatch.setattr(pipeline, "rebuilds", spy)
    pipeline.swap(OBAMA_CLIP2, trained_model, tmp_path / "o.mp4",
                  SwapOptions(duration=1.0, progress=False, occlusion="auto"))
    faces, rebuilt = sum(s[0] for s in seen), sum(s[1] for s in seen)
    assert faces >= 20 and all(s[2] for s in seen), seen
    assert 0.4 <= rebuilt / faces <= 0.65, (rebuilt, faces)


def test_the_summary_says_how_much_of_the_face_was_kept(trained_model, frames):
    """swap says how much of the faces it kept from the source (video_kept in evaluate): about
    the occluder's share of the hull with auto, nothing with none."""
    clean, occluded, disc, hull, marks = frames[0]
    kept, text = {}, {}
    for m in ("none", "auto"):
        s = SwapSummary()
        Swapper(trained_model, SwapOptions(progress=False, occlusion=m)).process([occluded.copy()], 0, False, s)
        kept[m], text[m] = s.kept_share, str(s)
    share = (disc & hull).sum() / hull.sum()
    assert kept["none"] == 0 and "kept from the source" not in text["none"]
    assert 0.7 * share <= kept["auto"] <= 0.5, (kept, share)
    assert f"{kept['auto']:.1%} of the face" in text["auto"]


def test_the_occlusion_benchmark_pastes_textures_on_frames_larger_than_its_textures():
    """benchmarks/occlusion.py on the 720p address: its texture occluders are cut from 256 px
    frames, scaled up where the frame is larger (it failed there before)."""
    rng = np.random.default_rng(0)
    frame = np.full((720, 1280, 3), 128, np.uint8)
    mask = np.zeros((720, 1280), np.uint8)
    cv2.circle(mask, (640, 360), 60, 255, -1)
    textures = [rng.integers(0, 256, (256, 256, 3)).astype(np.uint8)]
    marks = np.array([[640 + 80 * np.cos(t), 360 + 100 * np.sin(t)] for t in np.linspace(0, 6.2, 68)])
    out = bench.fill(frame, mask, "texture", marks, textures, rng)
    assert out.shape == frame.shape
    assert np.abs(out[mask > 0].astype(int) - 128).mean() > 20      # the texture is there
    assert (out[mask == 0] == 128).mean() > 0.99                    # and only there
