"""What the README promises and no other test checks: extract's face filters, train's --keep and
--minutes, swap's --identity, --mask box, --blend seamless, the landmark smoothing and --no-smooth, scene cuts, .mov and
.mkv output, and Ctrl-C leaving a playable video."""
import json
import re
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest

import facepair
from facepair.faces.detect import make_detector
from facepair.faces.landmarks import Landmarker
from facepair.media.image import read_image
from facepair.media.video import iter_video
from facepair.swap.smooth import Lookahead
from facepair.swap.tracker import FaceTracker

from conftest import ADDRESS, OBAMA_CLIP1, OBAMA_PHOTOS, REAGAN_CLIP, group_photo, run_cli


def _faces(folder) -> list[dict]:
    return json.loads((folder / "faceset.json").read_text())["faces"]


def _swapped(stdout: str) -> int:
    return int(re.search(r"faces swapped: (\d+)", stdout).group(1))


def test_extract_keeps_the_largest_face_unless_told_and_filters_small_and_blurry(tmp_path):
    group, blurred = tmp_path / "group.png", tmp_path / "blurred.png"
    split = group_photo(group)
    group_photo(blurred, blur_small=True)
    run = lambda src, name, **kw: facepair.extract([src], tmp_path / name, detect_size=0,
                                                   progress=False, **kw)
    run(group, "largest")
    assert [f["bbox"][0] < split for f in _faces(tmp_path / "largest")] == [True]     # Biden only
    run(group, "all", all_faces=True)
    assert sorted(f["bbox"][0] < split for f in _faces(tmp_path / "all")) == [False, True]
    widths = sorted(f["bbox"][2] - f["bbox"][0] for f in _faces(tmp_path / "all"))
    s = run(group, "big", all_faces=True, min_size=(widths[0] + widths[1]) / 2)
    assert len(_faces(tmp_path / "big")) == 1 and s.rejected["too_small"] == 1
    run(blurred, "both", all_faces=True, min_blur=0)
    blur = {f["bbox"][0] < split: f["blur"] for f in _faces(tmp_path / "both")}
    sharp = {f["bbox"][0] < split: f["blur"] for f in _faces(tmp_path / "all")}
    assert blur[False] < 0.5 * sharp[False], (blur, sharp)    # Obama's face out of focus
    s = run(blurred, "sharp", all_faces=True, min_blur=(blur[False] + blur[True]) / 2)
    kept = _faces(tmp_path / "sharp")
    assert s.rejected["blurry"] == 1 and len(kept) == 1 and kept[0]["bbox"][0] < split


def test_train_keeps_the_last_checkpoints_and_stops_on_minutes(extracted, tmp_path):
    model = tmp_path / "m"
    t = time.monotonic()
    r = run_cli("train", "--a", extracted["obama2"][0], "--b", extracted["reagan"][0], "--model", model,
                "--preset", "seed", "--batch-size", 2, "--minutes", 0.1, "--save-every", 1,
                "--keep", 2, "--quiet")
    assert r.returncode == 0, r.stderr
    state = json.loads((model / "state.json").read_text())
    assert state["step"] >= 3 and time.monotonic() - t < 120, state["step"]
    assert sorted(p.name for p in (model / "checkpoints").iterdir()) == \
        [f"step-{state['step'] - 1:08d}", f"step-{state['step']:08d}"]


def test_swap_identity_mask_and_blend(trained_model, tmp_path):
    """--identity swaps only the person of the photos; --mask box replaces a larger region than
    the face hull; --blend seamless gives another composite than feathering."""
    group = tmp_path / "group.png"
    split = group_photo(group)
    before = read_image(group).astype(int)
    outs = {}
    for name, extra in (("all", []), ("obama", ["--identity", OBAMA_PHOTOS / "obama.jpg"])):
        r = run_cli("swap", group, "--model", trained_model, "-o", tmp_path / f"{name}.png",
                    "--detect-size", 0, "--quiet", *extra)
        assert r.returncode == 0, r.stderr
        outs[name] = (_swapped(r.stdout), np.abs(read_image(tmp_path / f"{name}.png").astype(int) - before))
    assert outs["all"][0] == 2 and outs["obama"][0] == 1
    change = outs["obama"][1]
    assert change[:, :split].mean() < 1 and change[:, split:].max() > 40      # Biden: only the mark

    photo = OBAMA_PHOTOS / "obama.jpg"
    src = read_image(photo).astype(int)
    changed = {}
    for name, extra in (("hull", []), ("box", ["--mask", "box"]), ("seamless", ["--blend", "seamless"])):
        r = run_cli("swap", photo, "--model", trained_model, "-o", tmp_path / f"{name}.png", "--quiet", *extra)
        assert r.returncode == 0 and _swapped(r.stdout) == 1, r.stderr
        changed[name] = read_image(tmp_path / f"{name}.png").astype(int)
    area = {k: int((np.abs(v - src).max(2) > 12).sum()) for k, v in changed.items()}
    assert area["box"] > 1.15 * area["hull"], area
    face = np.abs(changed["hull"] - src).max(2) > 12
    assert np.abs(changed["seamless"] - changed["hull"])[face].mean() > 2


def _smoothed(frames, sigma=1.5):
    """Each frame's first face as swap follows it: (found landmarks, smoothed landmarks)."""
    det, lm = make_detector("hog"), Landmarker()
    tracker, look, out = FaceTracker(det, lm, detect_every=5), Lookahead(sigma), {}
    for i, frame in enumerate(frames):
        tr, = tracker.landmarks(frame, i, True)
        for index, _, faces in look.push(i, None, [(tr, tr.marks)]):
            out[index] = faces[0]
        assert len(look.held) <= look.half + 1                    # holds only the frames it needs
    for index, _, faces in look.flush():
        out[index] = faces[0]
    assert sorted(out) == list(range(len(frames)))                # every frame, once, in order
    return np.array([out[i][1] for i in out]), np.array([out[i][0] for i in out])


def test_smoothing_steadies_the_face_without_lag_and_starts_afresh_on_a_scene_cut():
    """Without --no-smooth the landmarks that align the face move less from frame to frame, while
    those found (a landmark-cue model's cue) are kept as they are; a face moving steadily is
    placed where it is, not where it was (centred, no lag); at a cut from one clip to another the
    track starts again, so the frames after it carry nothing of the other shot."""
    obama = [f for i, f in iter_video(OBAMA_CLIP1) if i < 32]     # the cut: not a detection frame
    reagan = [f for i, f in iter_video(REAGAN_CLIP) if i < 8]
    found, smoothed = _smoothed(obama + reagan)
    raw, unsmoothed = _smoothed(obama + reagan, sigma=0)          # --no-smooth: as found
    assert np.array_equal(found, raw) and np.array_equal(unsmoothed, raw)
    jitter = {k: np.abs(np.diff(v[:32], 2, axis=0)).mean() for k, v in (("found", found), ("smoothed", smoothed))}
    assert jitter["smoothed"] < 0.5 * jitter["found"], jitter
    assert np.abs(smoothed[:32] - found[:32]).mean() > 0.05           # smoothing was on
    cut = len(obama)
    assert np.allclose(smoothed[cut:], _smoothed(reagan)[1])          # nothing of Obama's shot
    # steady motion: a face sliding and growing at constant speed stays exactly where it is,
    # in the middle of its track and at both ends, where only one side is known
    path = [found[0].astype(np.float64) * (1 + 0.01 * t) + np.array([3.0, -2.0]) * t for t in range(12)]
    look, key, out = Lookahead(1.5), object(), []
    for t, marks in enumerate(path):
        out += look.push(t, None, [(key, marks)])
    out += look.flush()
    assert np.allclose([faces[0][0] for _, _, faces in out], path, rtol=0, atol=1e-6)


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_mov_and_mkv_output_keep_the_video_and_audio_and_carry_the_mark(trained_model, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    r = run_cli("swap", ADDRESS, "--model", trained_model, "-o", out, "--duration", 1, "--quiet")
    assert r.returncode == 0, r.stderr
    with av.open(str(ADDRESS)) as c:
        expected = round(float(c.streams.video[0].average_rate))     # one second of frames
    with av.open(str(out)) as c:
        assert c.streams.audio and sum(1 for _ in c.decode(video=0)) == expected
    r = run_cli("verify", out)
    assert r.returncode == 0 and "watermark FOUND" in r.stdout and "tag FOUND" in r.stdout, r.stdout


def test_ctrl_c_during_a_video_swap_leaves_a_playable_labelled_file(trained_model, tmp_path):
    out = tmp_path / "out.mp4"
    p = subprocess.Popen([sys.executable, "-m", "facepair", "swap", str(ADDRESS), "--model",
                          str(trained_model), "-o", str(out), "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / ".out.mp4.partial.mp4"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < 50_000):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130 and "interrupted" in stderr, stderr
    assert stderr.strip().count("\n") == 0 and "Traceback" not in stderr
    with av.open(str(out)) as c:
        n = sum(1 for _ in c.decode(video=0))
    with av.open(str(ADDRESS)) as c:
        total = c.streams.video[0].frames
    assert 0 < n < total and f"first {n} frames" in stderr, (n, stderr)
    r = run_cli("verify", out)
    assert r.returncode == 0 and "watermark FOUND" in r.stdout, r.stdout
