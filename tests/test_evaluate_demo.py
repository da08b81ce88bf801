"""facepair evaluate (figures, report) and facepair demo (the whole pipeline)."""
import json
import math
import os
import shutil
import time

import av
import pytest

import facepair.demo as demo_mod
from facepair.errors import FacepairError

from conftest import ADDRESS, DATA, run_cli

FIGURES = {"l1_a", "l1_b", "psnr_a", "psnr_b", "ssim_a", "ssim_b", "id_rate_a2b", "id_rate_b2a",
           "id_rate_real_a", "id_rate_real_b", "dist_a2b_to_b", "dist_a2b_to_a", "dist_b2a_to_a",
           "dist_b2a_to_b", "landmark_error_a2b", "landmark_error_b2a", "mouth_corr_a2b",
           "mouth_corr_b2a", "mouth_std_ratio_a2b", "mouth_std_ratio_b2a", "flicker_source",
           "flicker_swap", "flicker_ratio", "frame_id_rate_a2b", "frame_id_rate_b2a",
           "frame_landmark_error_a2b", "frame_landmark_error_b2a", "frame_mouth_corr_a2b",
           "frame_mouth_corr_b2a", "frame_mouth_std_ratio_a2b", "frame_mouth_std_ratio_b2a",
           "frame_swapped_a2b", "frame_swapped_b2a", "id_forced_rate_a2b", "frame_id_forced_rate_a2b",
           "frame_eyelid_corr_a2b", "frame_id_dist_b2a", "video_id_rate", "video_id_forced_rate",
           "video_mouth_corr", "video_eyelid_corr", "video_eyelid_ratio", "video_landmark_error",
           "video_detail", "video_rec_ssim", "video_rec_gmsd", "video_rec_mouth_corr",
           "video_rec_eyelid_corr", "jitter_ratio", "grid_a2b", "grid_b2a", "video_kept"}


def test_evaluate_writes_every_figure_and_a_report(trained_model, tmp_path):
    r = run_cli("evaluate", "--model", trained_model, "--json", tmp_path / "m.json", "--html",
                tmp_path / "r/report.html", "--video", ADDRESS, "--video-seconds", 1, "--max-faces", 12)
    assert r.returncode == 0, r.stderr
    figures = json.loads((tmp_path / "m.json").read_text())
    assert FIGURES <= set(figures)
    assert all(isinstance(figures[k], float) and math.isfinite(figures[k]) for k in FIGURES), \
        {k: figures[k] for k in FIGURES if not (isinstance(figures[k], float) and math.isfinite(figures[k]))}
    rates = [k for k in FIGURES if "_rate" in k or k.startswith("frame_swapped")]
    assert all(0 <= figures[k] <= 1 for k in rates), {k: figures[k] for k in rates}
    assert figures["id_rate_real_a"] >= 0.95 and figures["id_rate_real_b"] >= 0.95
    assert figures["faces_a"] > 0 and figures["source"] == "held-out validation faces"
    assert figures["frame_swapped_a2b"] == 1.0 and figures["frame_swapped_b2a"] == 1.0
    assert figures["video_frames"] == 30 and figures["video_failures"] == 0   # 1 s of the address
    assert 0 < figures["video_rec_ssim"] <= 1 and 0 < figures["video_rec_gmsd"] < 0.35 and figures["video_detail"] > 0
    assert 0 <= figures["video_kept"] <= 0.5 and "share of the face kept from the source" in r.stdout
    # the table printed says the same figures as the JSON (what a user reads is what was measured)
    assert f"{figures['video_detail']:.2f}" in r.stdout and f"{figures['video_rec_ssim']:.3f}" in r.stdout
    html = (tmp_path / "r/report.html").read_text()
    images = [p.split("'")[0] for p in html.split("src='")[1:]]
    assert len(images) >= 4                               # samples, losses, preview, frames
    # a reader is told which way each figure is better, which video the video rows come from,
    # and that a 24-step model is not yet a person's face
    assert "<th>better</th>" in html and "<td>near 1 (above: an edge)</td>" in html
    assert f"<code>{ADDRESS}</code> (a2b)" in html and "trained 24 steps only" in html
    assert html.count("<img alt='") == len(images) and figures["video"] == str(ADDRESS)
    assert figures["direction"] == "a2b"
    assert all((tmp_path / "r" / p).stat().st_size > 0 for p in images)
    # the pictures with swapped faces in them are labelled as every output is (the loss plot has none)
    from facepair.provenance.verify import verify_file
    faces = [p for p in images if not p.endswith("losses.png")]
    assert {p.rsplit("/", 1)[-1] for p in faces} >= {"samples.png", "preview.png", "frames.png", "border.png"}
    for p in faces:
        v = verify_file(tmp_path / "r" / p)
        assert v.our_tag and v.our_manifest, str(v)
        assert v.watermark or not p.endswith("frames.png"), str(v)     # grids of faces: not read back
    assert "ID (nearer the target, within 0.5)" in r.stdout and "eyelid-gap correlation" in r.stdout


def test_evaluate_on_given_facesets_and_errors(trained_model, extracted, tmp_path):
    r = run_cli("evaluate", "--model", trained_model, "--a", extracted["obama2"][0], "--b",
                extracted["reagan"][0], "--max-faces", 16, "--json", tmp_path / "m.json", "--crops-only")
    assert r.returncode == 0, r.stderr
    figures = json.loads((tmp_path / "m.json").read_text())
    assert figures["faces_a"] == 16 and figures["source"] == "face sets given"
    assert "mouth_corr_a2b" in figures and not any(k.startswith("frame_") for k in figures)
    r = run_cli("evaluate", "--model", tmp_path / "nope")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"facepair: error: model folder not found: {tmp_path / 'nope'}"], r.stderr
    # a crop deleted by hand (training skips it) was an internal error
    obama = shutil.copytree(extracted["obama2"][0], tmp_path / "obama2")
    index = json.loads((obama / "faceset.json").read_text())
    (obama / index["faces"][0]["file"]).unlink()
    r = run_cli("evaluate", "--model", trained_model, "--a", obama, "--b", extracted["reagan"][0],
                "--max-faces", 8, "--crops-only", "--json", tmp_path / "few.json", "--html", tmp_path / "few.html")
    assert r.returncode == 0, r.stderr
    few = "8 face(s) scored on one side: its correlations and spreads say little on fewer than 10 faces"
    assert f"facepair: warning: {few}" in r.stderr, r.stderr
    # not on the terminal only: in the figures and the report too
    assert json.loads((tmp_path / "few.json").read_text())["warnings"] == [few]
    assert f"<b>Warning</b>: {few}" in (tmp_path / "few.html").read_text()
    # faces cut with another margin than the model's: a table of figures that meant nothing
    (obama / "faceset.json").write_text(json.dumps(dict(index, padding=index["padding"] + 0.1)))
    r = run_cli("evaluate", "--model", trained_model, "--a", obama, "--b", extracted["reagan"][0], "--crops-only")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"face set {obama} was extracted with padding" in r.stderr
    # a --video that is missing or a picture: said before the minutes of the other figures
    for video, said in ((tmp_path / "gone.mp4", "video not found"), (DATA / "photos/obama/obama.jpg", "--video takes a video")):
        t = time.monotonic()
        r = run_cli("evaluate", "--model", trained_model, "--video", video)
        assert r.returncode == 1 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert time.monotonic() - t < 20


def test_short_demo_produces_all_files(short_samples, tmp_path):
    out = tmp_path / "demo"
    r = run_cli("demo", "-o", out, "--minutes", 0.2, "--quiet", "--calibrate-faces", 8, "--eval-faces", 12, "--swap-seconds", 1,
                env=dict(os.environ, FACEPAIR_SAMPLES=str(short_samples)))
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("swap.mp4", "report.html", "metrics.json", "model/state.json"):
        assert (out / name).is_file(), name
    assert run_cli("verify", out / "swap.mp4").returncode == 0
    assert str(out / "report.html") in r.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["id_rate_a2b"] <= 1 and metrics["step"] >= 1 and 0 < metrics["faces_a"] <= 12   # at most --eval-faces
    with av.open(str(out / "swap.mp4")) as c:        # README: the address swapped with its audio
        assert c.streams.audio and c.streams.video[0].frames >= 25


def test_demo_samples_download_checks_sha256_and_fails_clearly_offline(tmp_path, monkeypatch):
    local = {rel: ((DATA / rel).as_uri(), sha) for rel, (_, sha) in demo_mod.SAMPLES.items()}
    monkeypatch.setattr(demo_mod, "SAMPLES", local)
    got = demo_mod.download_samples(tmp_path / "cache")
    assert all((got / rel).read_bytes() == (DATA / rel).read_bytes() for rel in local)
    rel = next(iter(local))
    monkeypatch.setattr(demo_mod, "SAMPLES", {rel: (local[rel][0], "0" * 64)})
    with pytest.raises(FacepairError, match="sha256"):
        demo_mod.download_samples(tmp_path / "other")
    monkeypatch.setattr(demo_mod, "SAMPLES", {rel: ("http://127.0.0.1:9/x.mp4", "0" * 64)})
    with pytest.raises(FacepairError, match="offline"):
        demo_mod.download_samples(tmp_path / "offline")
    r = run_cli("demo", "-o", tmp_path / "d", env=dict(os.environ, FACEPAIR_SAMPLES=str(tmp_path / "empty")))
    assert r.returncode == 1 and "FACEPAIR_SAMPLES" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_demo_cuts_faces_at_the_size_of_the_preset_it_trains(trained_model, tmp_path, monkeypatch):
    """A new demo cuts faces at its preset's crop size; a demo folder whose model exists keeps
    that model's preset and size, even when asked for another (train then says so, in one line,
    before any face set is cut again)."""
    import shutil

    import facepair.api as api
    cut = []
    monkeypatch.setattr(api, "extract", lambda clips, folder, **kw: cut.append(kw["size"])
                        or folder.mkdir(parents=True) or "")
    def train(opts):
        raise FacepairError("stop here")
    monkeypatch.setattr(api, "train", train)
    with pytest.raises(FacepairError, match="stop here"):
        demo_mod.demo(tmp_path / "new", progress=False)
    assert cut == [128, 128]                                  # hd, the default: 128 px
    cut.clear()
    shutil.copytree(trained_model, tmp_path / "old/model")   # a `seed` model: 64 px faces
    with pytest.raises(FacepairError, match="stop here"):
        demo_mod.demo(tmp_path / "old", preset="hd", progress=False)
    assert cut == [64, 64]


def test_a_demo_stopped_while_it_extracts_cuts_that_face_set_again(tmp_path, monkeypatch):
    """Ctrl-C during the demo's extract keeps the faces found so far, indexed; the next run took
    that index for the whole face set and trained on it without a word."""
    import facepair.api as api
    from facepair.errors import Interrupted
    from facepair.faces.faceset import new_index, save_index

    def stopped(clips, folder, **kw):             # what an interrupted extract leaves
        (folder / "faces").mkdir(parents=True)
        save_index(folder, new_index(kw["size"], 0.15, True, "hog", []))
        raise Interrupted("interrupted after 10 frame(s)")
    monkeypatch.setattr(api, "extract", stopped)
    with pytest.raises(Interrupted):
        demo_mod.demo(tmp_path / "d", progress=False)
    cut = []
    monkeypatch.setattr(api, "extract", lambda clips, folder, **kw: cut.append(folder.name)
                        or folder.mkdir(parents=True) or "")
    monkeypatch.setattr(api, "train", lambda opts: (_ for _ in ()).throw(FacepairError("stop here")))
    with pytest.raises(FacepairError, match="stop here"):
        demo_mod.demo(tmp_path / "d", progress=False)
    assert cut == ["obama.partial", "reagan.partial"]          # obama's cut again, not reused
    assert sorted(p.name for p in (tmp_path / "d/faces").iterdir()) == ["obama", "reagan"]


def _clip_repeating_a_timestamp(dst, frames=40, repeat=4):
    """Frames of two people in turn (Obama's even, Reagan's odd: each frame's face far from the
    last's), MJPEG in Matroska; frame `repeat` carries the timestamp of the frame before (a
    damaged or oddly cut file), which the swap leaves out of its output."""
    from fractions import Fraction
    from conftest import OBAMA_CLIP1, REAGAN_CLIP
    from facepair.media.video import iter_video
    people = [iter_video(OBAMA_CLIP1), iter_video(REAGAN_CLIP)]
    with av.open(str(dst), "w") as o:
        s = o.add_stream("mjpeg", rate=30)
        s.width, s.height, s.pix_fmt, s.time_base = 256, 256, "yuvj420p", Fraction(1, 30)
        for n in range(frames):
            _, rgb = next(people[n % 2])
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
            f.pts, f.time_base = n, Fraction(1, 30)
            for p in s.encode(f):
                p.pts = p.dts = p.pts - (p.pts >= repeat)       # the encoder refuses a repeat
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    return dst


def test_video_figures_pair_each_frame_with_its_own_swap_after_one_left_out(trained_model, tmp_path):
    """A frame that repeats its predecessor's timestamp is left out of the swap's output; evaluate
    paired the source's frames with the output's by position, so every frame after it was
    scored against the swap of the next one (here another person, elsewhere in the frame)."""
    from facepair.evaluate.score import video_figures
    from facepair.swap.options import SwapOptions
    from facepair.swap.pipeline import swap
    clip = _clip_repeating_a_timestamp(tmp_path / "cut.mkv")
    summary = swap(clip, trained_model, tmp_path / "o.mp4", SwapOptions(progress=False))
    assert summary.left_out == [4] and summary.frames == 40
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 39
    res = video_figures(trained_model, clip, reconstruct=False)
    assert res["video_frames"] == 39, res["video_frames"]
    # each swapped face found where its own source frame had it
    assert res["video_landmark_error"] < 0.1, res["video_landmark_error"]
