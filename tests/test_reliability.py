"""Nothing a user does, or a crash, loses work or ends in an internal error (issue 13): saves
that survive a crash at any point, resume that falls back to a checkpoint that loads, no step
taken on non-finite gradients, no non-finite weights saved, flags checked, verify claiming only
our own marks."""
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from facepair.errors import FacepairError
from facepair.media.video import iter_video
from facepair.model.autoencoder import FacePair
from facepair.model.presets import PRESETS
from facepair.model.store import load_weights, read_state
from facepair.training import checkpoint
from facepair.training.losses import make_loss
from facepair.training.step import train_step

from conftest import OBAMA_CLIP1, OBAMA_CLIP2, OBAMA_PHOTOS, REAGAN_CLIP, group_photo, run_cli


class Crash(BaseException):
    """Stands for the process dying at that point (nothing after it runs)."""


def _tiny():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(3, 4)).sum().backward()
    opt.step()
    return model, opt


def _loads(model_dir) -> int:
    """The step of the checkpoint state.json names, after loading its weights and optimizer."""
    state = read_state(model_dir)
    model, opt = _tiny()
    load_weights(model_dir, model, state)
    checkpoint.load_optimizer(model_dir, opt, state)
    return state["step"]


def test_a_crash_anywhere_in_a_save_leaves_a_loadable_checkpoint(tmp_path, monkeypatch):
    """Saving the same step twice (a run ending on a multiple of --save-every, a resume with
    nothing to do) and a crash at each file operation of that save, in turn: state.json always
    names a checkpoint that loads."""
    model, opt = _tiny()
    real_replace, real_rmtree = os.replace, shutil.rmtree
    points = 0
    for crash_at in range(1, 50):
        folder = tmp_path / f"m{crash_at}"
        checkpoint.save(folder, 4, model, opt, {"preset": "x"}, keep=3)
        checkpoint.save(folder, 5, model, opt, {"preset": "x"}, keep=3)
        calls = [0]

        def counted(real):
            def f(*a, **k):
                calls[0] += 1
                if calls[0] == crash_at:
                    raise Crash
                return real(*a, **k)
            return f
        monkeypatch.setattr(os, "replace", counted(real_replace))
        monkeypatch.setattr(shutil, "rmtree", counted(real_rmtree))
        try:
            checkpoint.save(folder, 5, model, opt, {"preset": "x"}, keep=3)
            finished = True
        except Crash:
            finished = False
        monkeypatch.undo()
        assert _loads(folder) == 5, crash_at
        if finished:
            break
        points += 1
    assert points >= 4                                  # the save has several steps to crash in
    kept = sorted(p.name for p in (folder / "checkpoints").iterdir() if p.name.startswith("step-"))
    assert len(kept) == 2 and kept[0] == "step-00000004" and kept[1].startswith("step-00000005")


def test_resume_falls_back_to_the_newest_checkpoint_that_loads(extracted, tmp_path):
    model = tmp_path / "m"
    common = ["--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model", model,
              "--preset", "seed", "--batch-size", 2, "--save-every", 2, "--quiet"]
    assert run_cli("train", *common, "--steps", 4).returncode == 0
    state = json.loads((model / "state.json").read_text())
    assert state["checkpoint"].endswith("step-00000004")
    (model / state["checkpoint"] / "model.safetensors").write_bytes(b"damaged")
    r = run_cli("train", *common, "--steps", 6)
    assert r.returncode == 0, r.stderr
    assert "steps 2 -> 6" in r.stdout
    warnings = [l for l in r.stderr.splitlines() if l.startswith("facepair: warning:")]
    assert len(warnings) == 1 and "step-00000004" in warnings[0] and "step 2" in warnings[0], r.stderr
    shutil.rmtree(model / json.loads((model / "state.json").read_text())["checkpoint"])
    r = run_cli("train", *common, "--steps", 7)
    assert r.returncode == 0 and "steps 4 -> 7" in r.stdout, r.stderr
    for folder in (model / "checkpoints").iterdir():
        shutil.rmtree(folder)
    r = run_cli("train", *common, "--steps", 8)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"facepair: error: no checkpoint in {model} loads "
                                                   "(the folder's weights are damaged or gone; the "
                                                   "newest: checkpoint file missing"), lines


def test_kill_9_at_random_points_while_saving_every_step(extracted, tmp_path):
    """kill -9 at random moments of a run that saves every step (so most kills land in or near
    a save); after each, the folder loads and training resumes."""
    model = tmp_path / "m"
    args = [sys.executable, "-m", "facepair", "train", "--a", str(extracted["obama1"][0]), "--b",
            str(extracted["reagan"][0]), "--model", str(model), "--preset", "seed",
            "--batch-size", "4", "--save-every", "1", "--preview-every", "1000", "--keep", "2",
            "--quiet"]
    rng = random.Random(0)
    for attempt in range(2):
        p = subprocess.Popen(args + ["--steps", "100000"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 300
            start = None
            while time.time() < deadline and p.poll() is None:
                try:
                    step = json.loads((model / "state.json").read_text())["step"]
                except (FileNotFoundError, json.JSONDecodeError, KeyError):
                    step = -1
                if start is None and step >= 0:
                    start = step
                if start is not None and step >= start + 2:
                    break
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 0.5))
            p.kill()                                     # SIGKILL (nothing, if it has ended)
        finally:
            p.wait()
        assert p.returncode == -signal.SIGKILL, (attempt, p.returncode)    # running until killed
        saved = json.loads((model / "state.json").read_text())["step"]
        r = subprocess.run(args + ["--steps", str(saved + 1)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (attempt, r.stderr)
        assert "Traceback" not in r.stderr


def test_no_step_on_non_finite_gradients_and_no_non_finite_save(tmp_path):
    torch.manual_seed(0)
    model = FacePair(PRESETS["seed"].model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(2, 3, 64, 64)
    batch = [x, x, x, x]
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    p = next(model.parameters())
    hook = p.register_hook(lambda g: g * float("inf"))      # a finite loss, an infinite gradient
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    assert train_step(model, opt, scaler, batch, contextlib.nullcontext(), make_loss("l1")) is None
    hook.remove()
    after = dict(model.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before)   # no step taken (BatchNorm's
    #                                                              running statistics may move)
    assert train_step(model, opt, scaler, batch, contextlib.nullcontext(), make_loss("l1")) is not None
    checkpoint.save(tmp_path, 1, model, opt, {"preset": "seed"})
    with torch.no_grad():
        p.fill_(float("nan"))
    with pytest.raises(FacepairError, match="non-finite"):
        checkpoint.save(tmp_path, 2, model, opt, {"preset": "seed"})
    assert read_state(tmp_path)["step"] == 1                 # the good checkpoint stays


def test_diverging_training_rolls_back_then_stops_with_one_line(extracted, tmp_path):
    model = tmp_path / "m"
    r = run_cli("train", "--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model",
                model, "--preset", "seed", "--batch-size", 4, "--lr", "1e6", "--steps", 200, "--quiet")
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("facepair: error: training diverged") and "lower --lr" in lines[-1]
    assert sum("rolled back" in l for l in lines) == 3
    assert all(l.startswith("facepair: ") for l in lines)
    state = json.loads((model / "state.json").read_text())
    m = FacePair(PRESETS["seed"].model)
    load_weights(model, m, state)
    assert all(torch.isfinite(v).all() for v in m.state_dict().values())


@pytest.mark.parametrize("args", [
    ("train", "--save-every", "0"), ("train", "--preview-every", "0"), ("train", "--keep", "0"),
    ("train", "--batch-size", "0"), ("train", "--minutes", "-1"), ("train", "--keep-previews", "-1"),
    ("evaluate", "--max-faces", "0"), ("swap", "--detect-every", "0"), ("swap", "--crf", "99"),
    # a negative seed was saved into the model folder before failing;
    # a huge duration overflowed; a huge erode or feather ran for minutes
    ("train", "--seed", "-1"), ("swap", "--duration", "1e308"),
    ("swap", "--erode", "5000"), ("swap", "--feather", "1e6"),
    # the bounds themselves (64 crop px; a 1,024 px crop), just past them
    ("swap", "--erode", "65"), ("swap", "--feather", "64.5"), ("extract", "--size", "1025"),
])
def test_bad_numbers_in_flags_are_one_line_exit_2(args, tmp_path):
    cmd, *flag = args
    base = {"train": ["--a", tmp_path, "--b", tmp_path, "--model", tmp_path / "m"],
            "evaluate": ["--model", tmp_path / "m"],
            "swap": [OBAMA_PHOTOS / "obama.jpg", "--model", tmp_path / "m", "-o", tmp_path / "o.png"],
            "extract": [OBAMA_PHOTOS / "obama.jpg", "-o", tmp_path / "fs"]}[cmd]
    r = run_cli(cmd, *base, *flag)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facepair: error:") and flag[0] in lines[0], lines


def test_the_bounds_of_flags_are_taken():
    """The largest values the bounds above allow are accepted (a bound off by one refused them)."""
    from facepair.cli import build_parser
    p = build_parser()
    a = p.parse_args(["swap", "x.jpg", "--model", "m", "-o", "o.png", "--erode", "64", "--feather", "64"])
    assert a.erode == 64 and a.feather == 64
    assert p.parse_args(["extract", "x.jpg", "-o", "fs", "--size", "1024"]).size == 1024


def test_resume_keeps_its_seed_and_validation_faces_when_the_face_set_changed(extracted, tmp_path):
    """A resume reads the seed and the split back from state.json: a face set that lost its
    first third keeps the validation faces still there held out (none of them moves into
    training), and another --seed is said to be ignored."""
    a, model = tmp_path / "a", tmp_path / "m"
    shutil.copytree(extracted["obama1"][0], a)
    common = ["--a", a, "--b", extracted["reagan"][0], "--model", model, "--preset", "seed",
              "--batch-size", 2, "--quiet"]
    assert run_cli("train", *common, "--steps", 1).returncode == 0
    before = set(read_state(model)["validation"]["a"])
    index = json.loads((a / "faceset.json").read_text())
    cut = len(index["faces"]) // 3
    gone = {f"{a.resolve()}/{e['file']}" for e in index["faces"][:cut]}
    index["faces"] = index["faces"][cut:]
    (a / "faceset.json").write_text(json.dumps(index))
    r = run_cli("train", *common, "--steps", 2, "--seed", 7)
    assert r.returncode == 0 and "--seed 7 ignored" in r.stderr, r.stderr
    left = before - gone
    assert gone & before and left and f"its {len(left)} validation faces still there stay held out" in r.stderr
    state = read_state(model)
    assert state["seed"] == 0 and set(state["validation"]["a"]) == left


def test_auto_precision_takes_fp16_on_a_gpu_that_only_emulates_bf16(monkeypatch):
    from facepair.runtime import resolve_precision
    emulated = lambda including_emulation=True: including_emulation        # a Turing/Volta card
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", emulated)
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"


def test_faces_sets_of_different_geometry_are_refused_by_name(extracted, tmp_path):
    small = tmp_path / "small"
    assert run_cli("extract", REAGAN_CLIP, "-o", small, "--every", 60, "--padding", 0.25, "--size", 64,
                   "--quiet").returncode == 0
    r = run_cli("train", "--a", extracted["obama1"][0], "--b", extracted["reagan"][0], small,
                "--model", tmp_path / "m", "--preset", "seed", "--steps", 1)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(small) in lines[0] and "0.25" in lines[0], lines


def test_previews_are_pruned(extracted, tmp_path):
    model = tmp_path / "m"
    r = run_cli("train", "--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model",
                model, "--preset", "seed", "--batch-size", 4, "--steps", 5, "--preview-every", 1,
                "--keep-previews", 2, "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (model / "previews").iterdir()) == \
        ["latest.png", "step-00000004.png", "step-00000005.png"]


def test_verify_claims_only_our_own_marks(tmp_path):
    """A JPEG comment that merely says "synthetic", or a C2PA manifest that no longer validates,
    does not make a file one of ours."""
    from facepair.provenance import credentials
    from PIL import Image
    photo = OBAMA_PHOTOS / "obama2.jpg"
    foreign = tmp_path / "foreign.jpg"
    Image.open(photo).save(foreign, "JPEG", quality=90, comment=b"synthetic media, made elsewhere")
    r = run_cli("verify", foreign)
    assert r.returncode == 1 and "no facepair marks" in r.stdout and "not facepair's" in r.stdout, r.stdout
    signed = bytearray(credentials.sign_bytes(photo.read_bytes(), ".jpg", "test"))
    ok = tmp_path / "signed.jpg"
    ok.write_bytes(bytes(signed))
    r = run_cli("verify", ok)
    assert r.returncode == 0 and "SYNTHETIC (facepair)" in r.stdout      # our manifest, valid
    signed[len(signed) // 2] ^= 0xFF
    bad = tmp_path / "tampered.jpg"
    bad.write_bytes(bytes(signed))
    r = run_cli("verify", bad)
    assert r.returncode == 1 and "no facepair marks" in r.stdout and "Invalid" in r.stdout, r.stdout


def test_signing_identity_is_never_replaced_and_made_once(tmp_path):
    from facepair.provenance import credentials
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    env = dict(os.environ, FACEPAIR_CONFIG_DIR=str(tmp_path / "cfg"))
    code = "from facepair.provenance import credentials; credentials.ensure_identity()"
    for _ in range(3):                                   # two first runs at once, three times
        procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(2)]
        assert all(p.wait(timeout=120) == 0 for p in procs)
        folder = tmp_path / "cfg"
        key = serialization.load_pem_private_key((folder / credentials.KEY_FILE).read_bytes(), None)
        leaf = x509.load_pem_x509_certificates((folder / credentials.CHAIN_FILE).read_bytes())[0]
        assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
        shutil.rmtree(folder)
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", tmp_path / "nomodel", "-o",
                tmp_path / "o.png", env=env)
    assert r.returncode == 1 and "model folder not found" in r.stderr   # identity made, then this
    folder = tmp_path / "cfg"
    key_bytes = (folder / credentials.KEY_FILE).read_bytes()
    (folder / credentials.CHAIN_FILE).unlink()
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", tmp_path / "nomodel", "-o",
                tmp_path / "o.png", env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and credentials.CHAIN_FILE in lines[0], lines
    assert (folder / credentials.KEY_FILE).read_bytes() == key_bytes and not (folder / credentials.CHAIN_FILE).exists()


def test_extract_identity_finds_you_when_you_are_not_the_largest_face(tmp_path):
    """A group picture: Biden large, Obama small. --identity obama.jpg keeps Obama's face."""
    group = tmp_path / "group.png"
    split = group_photo(group)
    r = run_cli("extract", group, "-o", tmp_path / "me", "--identity", OBAMA_PHOTOS / "obama.jpg",
                "--detect-size", 0, "--quiet")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "me/faceset.json").read_text())
    assert len(meta["faces"]) == 1 and meta["faces"][0]["bbox"][0] >= split    # the right one
    boxes = [f["bbox"] for f in json.loads((tmp_path / "me/faceset.json").read_text())["faces"]]
    assert boxes[0][2] - boxes[0][0] < 100                     # the smaller face of the two


def test_relative_paths_work_from_any_working_folder(tmp_path):
    """Face sets extracted and a model trained with paths relative to one folder; training
    resumes and evaluation finds the source footage from another."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    for name, clip in (("a", OBAMA_CLIP1), ("b", REAGAN_CLIP)):
        r = run_cli("extract", clip, "-o", name, "--every", 20, "--size", 64, "--quiet", cwd=work)
        assert r.returncode == 0, r.stderr
    common = ["--a", "a", "--b", "b", "--model", "m", "--preset", "seed", "--batch-size", 2, "--quiet"]
    r = run_cli("train", *common, "--steps", 1, cwd=work)
    assert r.returncode == 0, r.stderr
    # a few dozen faces a side: said at the start (not on the resume below), with what to expect
    small = [l for l in r.stderr.splitlines() if "faces to train on" in l]
    assert len(small) == 2 and small[0].startswith("facepair: warning: side A has only") and \
        "expect swaps of new footage that follow the mouth less" in small[1], r.stderr
    r = run_cli("train", *[str(work / a) if a in ("a", "b", "m") else a for a in common], "--steps", 2,
                cwd=elsewhere)
    assert r.returncode == 0 and "steps 1 -> 2" in r.stdout and "warning" not in r.stderr, r.stderr
    r = run_cli("evaluate", "--model", work / "m", "--json", "f.json", "--max-faces", 8, cwd=elsewhere)
    assert r.returncode == 0 and "not found" not in r.stderr, r.stderr
    assert "frame_landmark_error_a2b" in json.loads((elsewhere / "f.json").read_text())


def test_calibration_is_kept_without_new_steps_and_its_absence_is_said(extracted, tmp_path):
    model = tmp_path / "m"
    common = ["--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model", model,
              "--preset", "mouth", "--batch-size", 4, "--steps", 2, "--calibrate-faces", 4]
    r = run_cli("train", *common)
    assert r.returncode == 0, r.stderr
    measured = json.loads((model / "state.json").read_text())["cue_calibration"]
    # measured again in this process: each source frame is searched for faces once, not once
    # per setting tried (15)
    from facepair.evaluate import calibrate
    from facepair.swap.tracker import FaceTracker
    from facepair.swap.pipeline import Swapper
    searched, search, colours, init = [], FaceTracker.landmarks, [], Swapper.__init__

    def counting_search(self, frame, *a):
        searched.append(frame.shape)
        return search(self, frame, *a)

    def noting_colour(self, model_dir, opts, *a, **k):
        colours.append(opts.color)
        init(self, model_dir, opts, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FaceTracker, "landmarks", counting_search)
        mp.setattr(Swapper, "__init__", noting_colour)
        best = calibrate.calibrate(model, 4, "cpu")
    assert set(best) == {"a2b", "b2a"} and len(searched) == 8, len(searched)   # 4 frames a side
    # measured with lab, as every model's settings were chosen, whatever --color a swap takes
    assert colours == ["lab", "lab"], colours
    r = run_cli("train", *common)                          # nothing left to do
    assert r.returncode == 0 and "measuring" not in r.stdout, r.stdout
    assert json.loads((model / "state.json").read_text())["cue_calibration"] == measured
    bare = tmp_path / "bare"
    r = run_cli("train", *[bare if a == model else a for a in common[:-1]], 0, "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", bare, "-o", tmp_path / "o.png", "--quiet")
    assert r.returncode == 0 and "never calibrated" in r.stderr, r.stderr


def test_ctrl_c_while_the_cue_is_measured_says_what_was_kept(extracted, tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM) in the calibration after training: exit 130 with a line saying that
    the steps are saved and the cue is not measured (it said "interrupted" alone)."""
    import facepair
    from facepair.errors import Interrupted
    from facepair.evaluate import calibrate

    def stopped(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(calibrate, "calibrate", stopped)
    model = tmp_path / "m"
    with pytest.raises(Interrupted, match="step 2 is saved in .*its cue not measured"):
        facepair.train(a=[extracted["obama1"][0]], b=[extracted["reagan"][0]], model_dir=str(model),
                       preset="mouth", steps=2, batch_size=4, progress=False, calibrate_faces=4)
    state = json.loads((model / "state.json").read_text())
    assert state["step"] == 2 and "cue_shift" not in state and "cue_calibration" not in state
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", model, "-o", tmp_path / "o.png", "--quiet")
    assert r.returncode == 0 and "never calibrated" in r.stderr, r.stderr   # as the line says


def test_source_frames_stream_one_at_a_time_and_a_shorter_video_is_named(extracted, monkeypatch):
    """Calibration and evaluation read each entry's source frame as the video reaches it (not all
    of them first: 512 frames of 4K footage are 12 GB); a video shorter than its face set says."""
    from facepair.evaluate import frames
    from facepair.faces.faceset import load_index
    entries = load_index(extracted["obama1"][0])["faces"][::100]
    decoded, stream = [], frames.iter_video
    monkeypatch.setattr(frames, "iter_video", lambda path, **kw: ((decoded.append(i), (i, f))[1] for i, f in stream(path, **kw)))
    for i, frame in frames.iter_source_frames(entries):
        assert decoded[-1] == entries[i]["frame"] and frame.shape == (256, 256, 3)
    late = dict(entries[-1], frame=10 ** 6)
    with pytest.raises(FacepairError, match="ends before frame 1000000"):
        list(frames.iter_source_frames([late]))


def _mov_with_two_audio_streams(dst, seconds=2.0, delay=0.0, pcm="pcm_u8"):
    """The address's first seconds as .mov: its video as it is, its audio as 8-bit PCM (which
    .mp4 refuses; or another `pcm`) and as the original AAC; with `delay`, both start that many
    seconds after the picture (a clip cut from a longer recording)."""
    import av
    from conftest import ADDRESS
    with av.open(str(ADDRESS)) as i, av.open(str(dst), "w") as o:
        vi, ai = i.streams.video[0], i.streams.audio[0]
        vo = o.add_stream_from_template(vi)
        pcm = o.add_stream(pcm, rate=ai.rate, layout="stereo")
        aac = o.add_stream_from_template(ai)
        for p in i.demux(vi, ai):
            if p.dts is None or p.pts is not None and p.pts * p.time_base >= seconds:
                continue
            if p.stream is vi:
                p.stream = vo
                o.mux(p)
                continue
            for f in p.decode():
                f.pts, f.time_base = round((f.time + delay) * ai.rate), Fraction(1, ai.rate)
                for q in pcm.encode(f):
                    o.mux(q)
            shift = round(delay / p.time_base)
            p.pts, p.dts, p.stream = None if p.pts is None else p.pts + shift, p.dts + shift, aac
            o.mux(p)
        for q in pcm.encode():
            o.mux(q)
    return dst


@pytest.mark.parametrize("pcm", ["pcm_u8", "pcm_s16le"])
def test_video_swap_keeps_every_audio_stream_and_reencodes_what_mp4_refuses(trained_model, tmp_path, pcm):
    """PCM into .mp4: 8-bit refused by the muxer, 16-bit taken by it as 'ipcm', which browsers
    and QuickTime do not play (a camera's .MOV with PCM sound swapped to .mp4): both AAC."""
    import av
    src = _mov_with_two_audio_streams(tmp_path / "in.mov", pcm=pcm)
    out = tmp_path / "out.mp4"
    r = run_cli("swap", src, "--model", trained_model, "-o", out, "--quiet")
    assert r.returncode == 0, r.stderr
    warnings = [l for l in r.stderr.splitlines() if "warning" in l]
    assert len(warnings) == 1 and "re-encoded as AAC" in warnings[0], r.stderr
    with av.open(str(out)) as c:
        audio = [(s.codec_context.name, float(s.duration * s.time_base)) for s in c.streams.audio]
        frames = sum(1 for _ in c.decode(video=0))
    assert [a[0] for a in audio] == ["aac", "aac"] and all(abs(a[1] - 2) < 0.1 for a in audio), audio
    assert frames == 60
    assert not list(tmp_path.glob(".*partial*"))


def test_a_reencoded_audio_track_that_starts_late_stays_in_sync(tmp_path):
    """A .mov whose sound starts 0.5 s after its picture (a clip cut from a longer recording),
    as 8-bit PCM (which .mp4 refuses: re-encoded as AAC) and as AAC (copied as it is): the
    re-encoded track counted its samples from 0, so its sound came 0.5 s early, lips out of sync.
    The copied track must start 0.5 s after the picture, the re-encoded one be silent until
    then, and both agree."""
    import av
    from facepair.media.video import VideoReader, VideoWriter
    delay, seconds = 0.5, 2.0
    src = _mov_with_two_audio_streams(tmp_path / "late.mov", seconds, delay)
    out = tmp_path / "out.mp4"
    reader = VideoReader(src)
    with pytest.warns(UserWarning, match="re-encoded as AAC"):
        writer = VideoWriter(out, reader, crf=18)
    for kind, item in reader:
        if kind == "video":
            writer.write(item.to_ndarray(format="yuv420p"), item)
        else:
            writer.copy(item)
    writer.close()
    with av.open(str(out)) as c:                     # the copy starts 0.5 s after the picture
        copied = next(c.decode(audio=1)).time
        c.seek(0)
        picture = next(c.decode(video=0)).time
    assert abs(picture) < 0.01 and abs(copied - delay) < 0.01, (picture, copied)
    rate, tracks = 48_000, []
    for k in range(2):
        with av.open(str(out)) as c:
            sound = np.zeros(int(rate * (seconds + 2 * delay)), np.float32)
            for f in c.decode(audio=k):
                x = f.to_ndarray().astype(np.float32)
                n = len(f.layout.channels)
                x = np.abs(x.reshape(n, -1).mean(0) if f.format.is_planar else x.reshape(-1, n).mean(1))
                at = round(f.time * f.sample_rate)
                sound[at:at + len(x)] = x[:max(0, len(sound) - at)]
            tracks.append(sound)
    a, b = (np.convolve(t, np.ones(480) / 480, "same") for t in tracks)     # 10 ms loudness
    heard = slice(int(0.6 * rate), int(2.4 * rate))                          # the copy's sound
    # the re-encoded track is silent until then (padded, or starting there), then heard
    assert a[:int(0.45 * rate)].max() < 0.01 * a[heard].mean() and a[heard].mean() > 0, a[heard].mean()

    def agree(lag):                                  # the re-encoded track `lag` samples later
        return np.corrcoef(a[heard], b[heard.start + lag:heard.stop + lag])[0, 1]
    best = max(range(-int(0.55 * rate), int(0.55 * rate), 48), key=agree)    # 1 ms steps
    # within 30 ms (the AAC encoder's 1,024 samples of priming: 21 ms); it was 0.5 s
    assert abs(best) / rate < 0.03 and agree(best) > 0.9, f"the re-encoded track is {best / rate:+.3f} s off"


def _interlaced_clip(dst, frames=30):
    """A 1080i-style clip: each frame woven of two fields 1/30 s apart (the bottom lines from the
    frame before, moved 8 px as a pan would), coded interlaced by x264, as a camcorder does."""
    import av
    with av.open(str(OBAMA_CLIP1)) as i, av.open(str(dst), "w") as o:
        s = o.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p"
        s.options = {"crf": "12", "x264-params": "interlaced=1:tff=1"}
        before = None
        for n, f in enumerate(i.decode(video=0)):
            now = f.to_ndarray(format="rgb24")
            if before is not None:
                woven = now.copy()
                woven[1::2] = np.roll(before, 8, axis=1)[1::2]
                frame = av.VideoFrame.from_ndarray(woven, format="rgb24").reformat(format="yuv420p")
                frame.pts = n
                o.mux(s.encode(frame))
            before = now
            if n == frames:
                break
        o.mux(s.encode())
    return dst


def _combs(rgb) -> float:
    """How far each line lies from the mean of its neighbours (grey levels): high where the two
    fields of a frame disagree."""
    g = rgb.astype(np.float32).mean(2)
    return float(np.abs(g[1:-1] - (g[:-2] + g[2:]) / 2).mean())


def test_interlaced_video_is_read_and_swapped_as_progressive_frames(trained_model, tmp_path):
    """Interlaced video (a 1080i camcorder clip, a broadcast, a DVD) was swapped with its two
    fields woven together: combs on every moving edge, in the output as in what the detector saw.
    Now deinterlaced as players do (yadif: one frame per frame, the timestamps kept)."""
    import av
    from facepair.media.video import frame_at, iter_video
    clip = _interlaced_clip(tmp_path / "1080i.mp4")
    with av.open(str(clip)) as c:
        raw = [_combs(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    plain = [_combs(f) for _, f in iter_video(OBAMA_CLIP1, only=set(range(1, 31)))]
    read = [_combs(f) for _, f in iter_video(clip)]
    assert len(read) == len(raw) == 30
    assert np.mean(raw) > 3 * np.mean(plain)                  # the woven frames: combs
    # yadif's lines made from one field are a little jagged: 2.3 against 1.2 progressive, 16.6 woven
    assert np.mean(read) < 2.5 * np.mean(plain), (np.mean(read), np.mean(raw), np.mean(plain))
    assert _combs(frame_at(clip, 0.5)) < 2.5 * np.mean(plain)           # the preview's frame
    out = tmp_path / "out.mp4"
    r = run_cli("swap", clip, "--model", trained_model, "-o", out, "--quiet")
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
        swapped, times = [_combs(f.to_ndarray(format="rgb24")) for f in frames], [f.time for f in frames]
    assert len(swapped) == 30 and np.mean(swapped) < 2.5 * np.mean(plain), np.mean(swapped)
    assert np.allclose(np.diff(times), 1 / 30, atol=1e-3)


def _portrait_clip(dst, frames=40, turn=90):
    """A phone-style portrait clip: the Obama clip's frames, cropped to 192 x 256, stored turned
    on their side (256 x 192) with a display matrix turning them upright (90 degrees); with
    turn=180 stored upside down (192 x 256) with a matrix turning them round."""
    import av
    with av.open(str(OBAMA_CLIP1)) as i, av.open(str(dst), "w") as o:
        s = o.add_stream("libx264", rate=25)
        s.width, s.height = (256, 192) if turn == 90 else (192, 256)
        s.pix_fmt = "yuv420p"
        s.set_display_rotation(turn)
        for n, f in enumerate(i.decode(video=0)):
            if n == frames:
                break
            sideways = np.ascontiguousarray(np.rot90(f.to_ndarray(format="rgb24")[:, 32:224], -turn // 90))
            for q in s.encode(av.VideoFrame.from_ndarray(sideways, format="rgb24")):
                o.mux(q)
        for q in s.encode():
            o.mux(q)
    return dst


def test_portrait_clips_are_read_upright_and_keep_their_rotation(trained_model, tmp_path):
    import av
    clip = _portrait_clip(tmp_path / "portrait.mp4")
    r = run_cli("extract", clip, "-o", tmp_path / "faces", "--quiet")      # sideways: no face
    assert r.returncode == 0, r.stderr
    faces = json.loads((tmp_path / "faces/faceset.json").read_text())["faces"]
    assert len(faces) >= 36, len(faces)
    out = tmp_path / "out.mp4"
    r = run_cli("swap", clip, "--model", trained_model, "-o", out, "--quiet")
    assert r.returncode == 0, r.stderr
    swapped = int(re.search(r"faces swapped: (\d+)", r.stdout).group(1))
    assert "frames: 40 " in r.stdout and swapped >= 36, r.stdout
    with av.open(str(out)) as c:
        first = next(c.decode(video=0))
        assert (first.width, first.height, first.rotation) == (256, 192, 90)
    r = run_cli("verify", out)
    assert r.returncode == 0 and "watermark FOUND" in r.stdout and "Valid" in r.stdout, r.stdout


def test_a_clip_of_odd_sides_comes_out_in_4_2_0_one_row_and_column_longer(trained_model, tmp_path):
    """A clip 191 x 255 pixels (a window recorded, a cropped edit; stored on its side with a
    display matrix): it was swapped into H.264 4:4:4, which Safari, iOS and most hardware
    decoders do not play. Now: 4:2:0, each odd side one longer (the last row and column
    repeated), the picture and the turn as they were, the mark found; evaluate pairs its
    frames with the source's."""
    import av
    from facepair.evaluate.score import video_figures
    from facepair.media.video import iter_video
    clip = tmp_path / "odd.mp4"
    with av.open(str(OBAMA_CLIP1)) as i, av.open(str(clip), "w") as o:
        s = o.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 255, 191, "yuv444p"      # stored on its side
        s.set_display_rotation(90)
        for n, f in enumerate(i.decode(video=0)):
            if n == 12:
                break
            sideways = np.ascontiguousarray(np.rot90(f.to_ndarray(format="rgb24")[:255, 32:223], -1))
            for q in s.encode(av.VideoFrame.from_ndarray(sideways, format="rgb24")):
                o.mux(q)
        for q in s.encode():
            o.mux(q)
    out = tmp_path / "out.mp4"
    r = run_cli("swap", clip, "--model", trained_model, "-o", out, "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert int(re.search(r"faces swapped: (\d+)", r.stdout).group(1)) >= 10, r.stdout
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        first = next(c.decode(v))
        assert v.codec_context.pix_fmt == "yuv420p" and "4:4:4" not in v.codec_context.profile
        assert (first.width, first.height, first.rotation) == (256, 192, 90)
    (_, src), (_, got) = next(iter_video(clip)), next(iter_video(out))     # upright
    assert src.shape == (255, 191, 3) and got.shape == (256, 192, 3)
    src, got = src.astype(int), got.astype(int)
    assert np.abs(got[:255, :191] - src)[:, :40].mean() < 4              # away from the face: as it was
    assert np.abs(got[255] - got[254]).mean() < 3 and np.abs(got[:, 191] - got[:, 190]).mean() < 3
    r = run_cli("verify", out)
    assert r.returncode == 0 and "watermark FOUND" in r.stdout and "Valid" in r.stdout, r.stdout
    res = video_figures(trained_model, clip, reconstruct=False)
    assert res["video_frames"] == 12 and res["video_landmark_error"] < 0.1, res


def test_an_upside_down_clip_is_swapped_upright_and_keeps_its_half_turn(trained_model, tmp_path):
    """A clip stored upside down with a display matrix of 180 degrees (a phone held the other
    way up): the swap's frames are the source's, upright, away from the face (the half turn was
    written as horizontal streaks), and the output keeps the matrix."""
    import av
    clip = _portrait_clip(tmp_path / "upside_down.mp4", frames=12, turn=180)
    out = tmp_path / "out.mp4"
    r = run_cli("swap", clip, "--model", trained_model, "-o", out, "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert int(re.search(r"faces swapped: (\d+)", r.stdout).group(1)) >= 10, r.stdout   # of 12 frames

    def first(path):
        with av.open(str(path)) as c:
            f = next(c.decode(video=0))
            return f, f.to_ndarray(format="rgb24").astype(int)     # as stored: upside down
    (_, src), (out_frame, got) = first(clip), first(out)
    assert (out_frame.width, out_frame.height, abs(out_frame.rotation)) == (192, 256, 180)
    assert np.abs(got - src)[-40:].mean() < 4       # stored bottom rows, the top of the head: as they were
    from facepair.faces.detect import make_detector
    upright = [np.ascontiguousarray(np.rot90(x, 2)).astype(np.uint8) for x in (src, got)]
    (x0, y0, x1, y1), = make_detector("hog")(upright[0])
    found = make_detector("hog")(upright[1])        # the swapped face, upright where the source's was
    assert len(found) == 1 and np.abs(np.subtract(found[0], (x0, y0, x1, y1))).max() < 0.25 * (x1 - x0), found
    face = np.abs(upright[1].astype(int) - upright[0])[round(y0):round(y1), round(x0):round(x1)]
    assert face.mean() > 8, face.mean()             # and drawn anew there (15 here; re-encoding alone: under 4)
    r = run_cli("verify", out)
    assert r.returncode == 0 and "watermark FOUND" in r.stdout, r.stdout


def test_a_failed_video_write_is_one_line_and_leaves_no_partial_file(trained_model, tmp_path, monkeypatch):
    from facepair import api
    from facepair.media import video
    src = _mov_with_two_audio_streams(tmp_path / "in.mov", seconds=1.0)

    def full(self, picture, like):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(video.VideoWriter, "write", full)
    with pytest.raises(FacepairError, match="cannot write .*No space left on device"):
        api.swap(src, trained_model, tmp_path / "out.mp4", progress=False)
    monkeypatch.undo()
    assert not list(tmp_path.glob(".*")) and not (tmp_path / "out.mp4").exists()
    (tmp_path / "file").write_text("not a folder")
    r = run_cli("swap", src, "--model", trained_model, "-o", tmp_path / "file" / "out.mp4")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "cannot make the output folder" in lines[0], lines


def test_the_file_system_saying_no_is_one_line(trained_model, tmp_path):
    """An output that is an existing folder, a folder given as a picture to verify: the file
    system's refusal is one line naming the user's path, exit 1 (it was an internal error, 3),
    and no hidden temporary file is left."""
    folder = tmp_path / "out"
    folder.mkdir()
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", trained_model, "-o", folder)
    assert r.returncode == 1 and r.stderr.splitlines() == [f"facepair: error: picture output is a folder: {folder}"], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not list(folder.iterdir())
    # where no file can be made (/proc), the output is refused before the work (a model that
    # does not exist is not even looked at), by the user's name for it, not a hidden file's
    for cmd in (("swap", OBAMA_PHOTOS / "obama.jpg", "--model", tmp_path / "no-model", "-o", "/proc/x.jpg"),
                ("evaluate", "--model", tmp_path / "no-model", "--json", "/proc/e.json"),
                ("extract", OBAMA_PHOTOS / "obama.jpg", "-o", tmp_path / "set", "--json", "/proc/s.json")):
        r = run_cli(*cmd)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith(f"facepair: error: cannot write /proc/{cmd[-1][6:]}: "), r.stderr
    assert not (tmp_path / "set").exists()
    (tmp_path / "d.jpg").mkdir()
    r = run_cli("verify", tmp_path / "d.jpg")
    assert r.returncode == 1 and r.stderr.splitlines() == [
        f"facepair: error: no picture or video in the folder {tmp_path / 'd.jpg'}"], r


def test_frames_of_any_width_come_contiguous(tmp_path):
    """PyAV pads the rows of widths such as 854 px; dlib's face chips (--identity, --map) refused
    such frames with an internal error."""
    import av
    from facepair.media.video import iter_video
    clip = tmp_path / "v854.mp4"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 854, 480, "yuv420p"
        for i in range(3):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((480, 854, 3), 40 * i, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    frames = [f for _, f in iter_video(clip)]
    assert len(frames) == 3 and all(f.shape == (480, 854, 3) and f.flags["C_CONTIGUOUS"] for f in frames)


def _phone_clip(dst, frames=30):
    """A phone-style variable-frame-rate clip: the Obama clip's frames 20 ms and 47 ms apart in
    turn (ticks of 1/19200 s, as phones write them), in a .mov."""
    import av
    from fractions import Fraction
    with av.open(str(OBAMA_CLIP1)) as i, av.open(str(dst), "w") as o:
        s = o.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 19200)
        pts = 0
        for n, f in enumerate(i.decode(video=0)):
            if n == frames:
                break
            frame = av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24")[:256, :256].copy(), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 19200)
            pts += 384 if n % 2 else 902
            for q in s.encode(frame):
                o.mux(q)
        for q in s.encode():
            o.mux(q)
    return dst


def test_variable_frame_rate_phone_clips_swap_at_their_own_timestamps(trained_model, tmp_path):
    """x264 counted time in frames of the average rate: the frames' times moved (the picture
    drifted from the sound; here frame 1 at 34 ms instead of 47), and where two phone frames
    fell on one tick the swap died ("cannot write ...: Invalid argument"), the work lost."""
    import av
    clip = _phone_clip(tmp_path / "phone.mov")
    out = tmp_path / "out.mp4"
    r = run_cli("swap", clip, "--model", trained_model, "-o", out, "--quiet")
    assert r.returncode == 0, r.stderr
    times = []
    for f in (clip, out):
        with av.open(str(f)) as c:
            times.append([round(float(x.time), 4) for x in c.decode(video=0)])
    assert len(times[0]) == 30 and times[1] == times[0], times
    assert len(set(np.diff(times[0]).round(3))) == 2            # the input's rate does vary
    r = run_cli("verify", out)
    assert r.returncode == 0 and "tag FOUND" in r.stdout and "Valid" in r.stdout, r.stdout


def test_frames_whose_timestamps_do_not_advance_are_left_out_or_follow_on(tmp_path):
    """A damaged or oddly cut input can repeat a timestamp: x264 refuses such a frame, so it is
    left out (no player would show it); where the clock jumps back (clips joined), the frames
    after follow on one frame later (they were all left out); each said once."""
    import av
    from types import SimpleNamespace
    from facepair.media.video import VideoReader, VideoWriter
    reader = VideoReader(OBAMA_CLIP1)
    writer = VideoWriter(tmp_path / "out.mp4", reader, crf=23)
    picture = np.zeros((reader.video.height * 3 // 2, reader.video.width), np.uint8)
    tb = reader.video.time_base
    step = int(1 / (reader.fps * tb))
    for pts in (0, step, step, 2 * step, step, 3 * step, None):
        writer.write(picture, like=SimpleNamespace(pts=pts, time_base=tb))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        writer.close()
    reader.close()
    said = [str(w.message) for w in said]
    assert len(said) == 2 and "1 frame(s) left out" in said[0] and "jumped back 1 time(s)" in said[1], said
    with av.open(str(tmp_path / "out.mp4")) as c:
        times = [f.pts * f.time_base for f in c.decode(video=0)]
    assert len(times) == 6 and times == sorted(times) and times[4] - times[3] == 2 * step * tb, times


def test_a_stream_appearing_part_way_ends_the_swap_with_what_decoded(trained_model, tmp_path, monkeypatch):
    """PyAV raises IndexError when a damaged MPEG-TS names a stream its header did not declare:
    the swap ended in an internal error and left its hidden partial file; now the output holds
    what decoded, with a warning. Any other failure leaves no partial file either."""
    from facepair import api
    from facepair.media import video
    from facepair.swap import pipeline
    real = video.open_input

    class Broken:
        def __init__(self, path):
            self.c = real(path)

        def __getattr__(self, name):
            return getattr(self.c, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.c.close()

        def demux(self, *streams):
            for n, packet in enumerate(self.c.demux(*streams)):
                if n == 20:
                    raise IndexError("list index out of range")
                yield packet

    monkeypatch.setattr(video, "open_input", Broken)
    out = tmp_path / "out.mp4"
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        s = api.swap(OBAMA_CLIP1, trained_model, out, progress=False)
    said = [str(w.message) for w in said]
    assert len(said) == 1 and "a stream its header did not declare" in said[0], said
    assert out.exists() and 5 <= s.frames < 20, s.frames
    monkeypatch.setattr(video, "open_input", real)

    def boom(self, *a, **k):
        raise RuntimeError("something unforeseen")
    monkeypatch.setattr(pipeline.Swapper, "render_video", boom)
    with pytest.raises(RuntimeError):
        api.swap(OBAMA_CLIP1, trained_model, tmp_path / "out2.mp4", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_damaged_optimizer_state_or_nan_weights_fall_back_to_a_checkpoint_that_loads(extracted, tmp_path):
    """An optimizer file with bad metadata or tensors of the wrong shape, and weights holding NaN,
    are damaged checkpoints like any other (they were internal errors, or NaN weights loaded and
    trained until the run gave up): a resume falls back, a swap says so in one line."""
    from safetensors.torch import load_file, save_file
    model = tmp_path / "m"
    common = ["--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model", model,
              "--preset", "seed", "--batch-size", 2, "--save-every", 2, "--quiet"]
    assert run_cli("train", *common, "--steps", 4).returncode == 0

    def newest():
        return model / json.loads((model / "state.json").read_text())["checkpoint"]

    def damage(name, change):
        from safetensors import safe_open
        path = newest() / name
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        tensors, meta = change(load_file(str(path)), meta)
        save_file(tensors, str(path), metadata=meta)
        return path.parent.name

    def resume(steps, damaged):
        r = run_cli("train", *common, "--steps", steps)
        warnings = [l for l in r.stderr.splitlines() if l.startswith("facepair: warning:")]
        assert r.returncode == 0 and len(warnings) == 1 and damaged in warnings[0], r.stderr
        return warnings[0]

    name = damage("optimizer.safetensors", lambda t, m: (t, dict(m, param_groups="[{")))
    assert "corrupt checkpoint file" in resume(5, name)
    shape = lambda t, m: ({k: (v.flatten() if k.endswith("exp_avg") else v) for k, v in t.items()}, m)  # noqa: E731
    name = damage("optimizer.safetensors", shape)
    assert "does not fit" in resume(6, name)
    nan = lambda t, m: ({k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in t.items()}, m)  # noqa: E731
    name = damage("model.safetensors", nan)
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", model, "-o", tmp_path / "o.png")
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and "NaN" in r.stderr, r.stderr
    assert "NaN" in resume(7, name)


def test_a_hand_edited_state_or_face_set_index_is_one_line_naming_the_field(trained_model, extracted, tmp_path):
    """Fields of the wrong kind in a model's state.json or a face set's faceset.json were internal
    errors deep in a resume or a swap (a KeyError, a TypeError)."""
    from facepair.faces.faceset import load_index
    from facepair.model.store import load_model
    model = tmp_path / "m"
    model.mkdir()
    for p in trained_model.iterdir():       # the weights linked, not copied
        (model / p.name).symlink_to(p) if p.name != "state.json" else shutil.copy(p, model / p.name)
    state = json.loads((model / "state.json").read_text())
    edits = {"train_config": "x", "validation": {"a": "x"}, "seed": "0",
             "model_config": dict(state["model_config"], code="512"),
             "faces": dict(state["faces"], padding="0.15"), "facesets": {"a": [{"faces": 3}]},
             "version": "1"}
    for key, value in edits.items():
        (model / "state.json").write_text(json.dumps(dict(state, **{key: value})))
        with pytest.raises(FacepairError, match="damaged model folder|bad model config|not a facepair state"):
            load_model(model, torch.device("cpu"))
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", model, "-o", tmp_path / "o.png")
    assert r.returncode == 1 and r.stderr.splitlines() == [
        f"facepair: error: not a facepair model folder: {model / 'state.json'} is not a facepair state file"], r.stderr

    faces = tmp_path / "faces"
    (faces / "faces").mkdir(parents=True)
    meta = json.loads((extracted["obama1"][0] / "faceset.json").read_text())
    first = meta["faces"][0]
    edits = {"landmarks": first["landmarks"][:5], "transform": "x", "bbox": None,
             "frame": "3", "source": 7}
    for key, value in edits.items():
        (faces / "faceset.json").write_text(json.dumps(dict(meta, faces=[dict(first, **{key: value})])))
        with pytest.raises(FacepairError, match=f"damaged face set index .*'{key}' in face 0"):
            load_index(faces)
    (faces / "faceset.json").write_text(json.dumps(dict(meta, version="1")))
    with pytest.raises(FacepairError, match="not a facepair face set"):
        load_index(faces)
    (faces / "faceset.json").write_text(json.dumps(dict(meta, faces=[dict(first, transform=[[1, 0, float("nan")], [0, 1, 0]])])))
    r = run_cli("train", "--a", faces, "--b", extracted["reagan"][0], "--model", tmp_path / "m2", "--steps", 1)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and "'transform' in face 0" in r.stderr, r.stderr
    assert not (tmp_path / "m2").exists()


def test_outputs_follow_links_refuse_devices_and_keep_the_models_files(trained_model, tmp_path):
    """-o onto a link writes the link's target (the rename replaced the link); onto a pipe or a
    device it is refused (the rename would replace the device node: -o /dev/null as root); a new
    file gets the usual permissions (mkstemp's were 0600); a report onto the model's own
    state.json is refused before the work; verify of a pipe does not wait forever."""
    photo = OBAMA_PHOTOS / "obama.jpg"
    link, target = tmp_path / "link.jpg", tmp_path / "target.jpg"
    link.symlink_to(target)
    r = run_cli("swap", photo, "--model", trained_model, "-o", link)
    assert r.returncode == 0 and link.is_symlink() and target.stat().st_size > 10000, r.stderr
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    r = run_cli("swap", photo, "--model", trained_model, "-o", fifo, timeout=60)
    assert r.returncode == 1 and r.stderr.splitlines() == [f"facepair: error: not a regular file: {fifo}"], r.stderr
    r = run_cli("verify", fifo, timeout=60)
    assert r.returncode == 1 and r.stderr.splitlines() == [f"facepair: error: not a regular file: {fifo}"], r.stderr
    assert fifo.is_fifo()
    state = (trained_model / "state.json").read_bytes()
    r = run_cli("evaluate", "--model", trained_model, "--json", trained_model / "state.json")
    assert r.returncode == 1 and "would replace a file of the model" in r.stderr, r.stderr
    assert (trained_model / "state.json").read_bytes() == state


def test_a_second_training_run_on_one_model_folder_is_refused(extracted, tmp_path):
    """Two `train` runs on one folder (the web app and a terminal) both wrote checkpoints there
    and one died, its steps lost: the second is now refused at once, the first goes on."""
    model = tmp_path / "m"
    common = ["--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model", model,
              "--preset", "seed", "--batch-size", 2, "--quiet"]
    first = subprocess.Popen([sys.executable, "-m", "facepair", "train", *map(str, common), "--steps", "100000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (model / "state.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        r = run_cli("train", *common, "--steps", 5)
        assert r.returncode == 1 and r.stderr.splitlines() == [
            f"facepair: error: model folder {model} is being trained by another run: let it finish "
            "or stop it first"], r.stderr
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "checkpoint saved" in err, err
    r = run_cli("train", *common, "--steps", 1)             # the lock went with the process
    assert r.returncode == 0, r.stderr
    r = run_cli("train", "--a", tmp_path / "none", "--b", extracted["reagan"][0], "--model", tmp_path / "new")
    assert r.returncode == 1 and not (tmp_path / "new").exists()   # a failed start leaves no folder


def test_sigterm_closed_stdout_and_an_ascii_terminal_are_handled(trained_model, tmp_path):
    """SIGTERM ended evaluate with 143 and no word (train, extract and swap already said
    "interrupted", 130); a closed stdout made every command an internal error; a path the
    terminal's encoding cannot spell was an internal error (UnicodeEncodeError)."""
    p = subprocess.Popen([sys.executable, "-m", "facepair", "evaluate", "--model", str(trained_model),
                          "--video", str(OBAMA_CLIP1)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)           # in its face figures or its video swap: both end the same way
    assert p.poll() is None
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "facepair: interrupted", (p.returncode, err)
    # a folder of photos: stopped between two, it keeps the pictures it finished, each whole and
    # labelled, and leaves no part-written file
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(40):
        shutil.copy(OBAMA_PHOTOS / ("obama.jpg", "obama2.jpg", "obama3.jpg")[i % 3], pics / f"p{i:02d}.jpg")
    out = tmp_path / "swapped"
    p = subprocess.Popen([sys.executable, "-m", "facepair", "swap", str(pics), "--model", str(trained_model),
                          "-o", str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(out.glob("*.jpg"))) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "facepair: interrupted", (p.returncode, err)
    done = sorted(out.iterdir())
    assert 0 < len(done) < 40 and all(f.suffix == ".jpg" and not f.name.startswith(".") for f in done), done
    r = run_cli("verify", *done)
    assert r.returncode == 0 and r.stdout.count("SYNTHETIC") == len(done), r.stdout + r.stderr
    photo = OBAMA_PHOTOS / "obama.jpg"
    r = subprocess.run(f'"{sys.executable}" -m facepair verify "{photo}" >&-', shell=True,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr == "", r.stderr     # "no facepair marks": exit 1, quietly
    odd = tmp_path / "ü.jpg"
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    r = run_cli("swap", photo, "--model", trained_model, "-o", odd, env=env)
    assert r.returncode == 0 and odd.exists() and "\\xfc" in r.stdout, r.stderr
    long = tmp_path / ("x" * 246 + ".jpg")                    # a legal 250-character name
    r = run_cli("swap", photo, "--model", trained_model, "-o", long)
    assert r.returncode == 0 and long.exists(), r.stderr
    wide = tmp_path / ("字" * 83 + ".png")                     # 87 characters, a legal 253 bytes
    r = run_cli("swap", photo, "--model", trained_model, "-o", wide)
    assert r.returncode == 0 and wide.exists(), r.stderr


def test_image_folders_face_sets_of_another_size_and_the_installation_verdict(trained_model, tmp_path):
    """An output folder inside the input folder: a re-run swapped the last run's outputs again
    (out/out/...); evaluate with face sets of another crop size was an internal error; verify
    said "not by this installation" where its mark is too weak to tell."""
    from facepair.provenance import watermark
    from facepair.provenance.verify import KeyCheck
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(OBAMA_PHOTOS / "obama.jpg", photos / "a.jpg")
    for _ in range(2):
        r = run_cli("swap", photos, "--model", trained_model, "-o", photos / "out")
        assert r.returncode == 0, r.stderr
    assert sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*.jpg")) == ["a.jpg", "out/a.jpg"]
    r = run_cli("extract", photos / "a.jpg", "-o", tmp_path / "fs128", "--quiet")      # 128 px
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", "--model", trained_model, "--a", tmp_path / "fs128", "--b", tmp_path / "fs128")
    assert r.returncode == 1 and r.stderr.splitlines() == [
        f"facepair: error: face set {tmp_path / 'fs128'} has 128 px faces; the model takes 64 px "
        "(extract with --size 64)"], r.stderr

    def said(z, expected, marked=True):
        return KeyCheck("k", own=True, reading=watermark.KeyReading(z, expected)).verdict(marked)
    assert said(12.0, 13.0) == "made by"
    assert said(6.2, 6.7) == "cannot tell"              # a photo: even a present mark reads under 7
    assert said(2.0, 9.4) == "not by"                   # a strong mark of another key
    assert said(6.0, 9.0) == "cannot tell"              # weaker than predicted, but not half
    assert said(2.0, 2.3, marked=False) == "not by"     # none of our marks at all
    assert KeyCheck(None, own=True).verdict(True) == "not by"   # no key: it made nothing
    # what a user reads: the line and the JSON say "cannot tell" too
    from facepair.provenance.verify import Verdict
    v = Verdict("x.jpg", watermark.Reading(13.4, 53, (28.0, 28.0), (27, 27)), None,
                installation=KeyCheck("9d7f77ed", own=True, reading=watermark.KeyReading(5.8, 6.7)))
    assert str(v).startswith("x.jpg: SYNTHETIC (facepair): made by facepair, cannot tell whether by "
                             "this installation (its mark too weak to read here): watermark FOUND"), str(v)
    assert v.to_json()["installation"]["verdict"] == "cannot tell" and v.to_json()["synthetic"]


@pytest.mark.parametrize("ext", ["png", "webp", "tif"])
def test_an_image_swap_keeps_the_pictures_transparency(trained_model, tmp_path, ext):
    """A PNG with transparent areas came out opaque, showing the colours stored under them
    (WebP and TIFF, the other formats with an alpha channel, the same)."""
    from PIL import Image
    rgba = np.asarray(Image.open(OBAMA_PHOTOS / "obama.jpg").convert("RGBA")).copy()
    rgba[:, : rgba.shape[1] // 3, 3] = 0                     # the left third transparent
    Image.fromarray(rgba).save(tmp_path / f"in.{ext}", **({"lossless": True} if ext == "webp" else {}))
    out = tmp_path / f"out.{ext}"
    r = run_cli("swap", tmp_path / f"in.{ext}", "--model", trained_model, "-o", out)
    assert r.returncode == 0, r.stderr
    img = Image.open(out)
    assert img.mode == "RGBA" and np.array_equal(np.asarray(img)[..., 3], rgba[..., 3]), (img.mode, ext)
    r = run_cli("verify", out)
    assert r.returncode == 0 and "watermark FOUND" in r.stdout and "Valid" in r.stdout, r.stdout


def test_what_a_new_user_met_in_folders_and_references(trained_model, extracted, tmp_path):
    """Found by a reviewer trying the commands as a new user (2026-12-07), each a one-line or
    silent failure before: a picture 1,000 times wider than tall was an internal error that
    stopped a whole folder run; a folder's GIF and HEIC pictures were passed over in silence;
    `extract --append` into a face set inside its input folder read its own crops back as new
    faces; `--identity` with a folder took every file in it (a readme: "cannot decode"), and
    with a face set (which --map takes) failed the same way."""
    from PIL import Image
    strip = tmp_path / "strip.png"
    Image.new("RGB", (2000, 2), (200, 200, 200)).save(strip)
    r = run_cli("swap", strip, "--model", trained_model, "-o", tmp_path / "s.png")
    line, = r.stderr.strip().splitlines()
    assert r.returncode == 1 and line.startswith(f"facepair: error: no face found in {strip}: nothing written"), r.stderr
    pics = tmp_path / "pics"
    pics.mkdir()
    for p in OBAMA_PHOTOS.glob("*.jpg"):
        shutil.copy(p, pics / p.name)
    shutil.copy(strip, pics / "m_strip.png")                  # between the photos, by name
    Image.open(OBAMA_PHOTOS / "obama.jpg").save(pics / "g.gif")
    (pics / "y.heic").write_bytes((OBAMA_PHOTOS / "obama.jpg").read_bytes())
    (pics / "readme.txt").write_text("not a picture")
    r = run_cli("swap", pics, "--model", trained_model, "-o", tmp_path / "swapped", "--quiet")
    assert r.returncode == 0, r.stderr
    warned = [l for l in r.stderr.splitlines() if "of a format facepair does not read" in l]
    assert len(warned) == 1 and warned[0].startswith("facepair: warning: 2 picture(s)"), r.stderr
    assert warned[0].endswith(f"{pics / 'g.gif'} ..."), warned        # the first named, by its path
    # (a folder's picture without a face passes through, labelled)
    assert sorted(p.name for p in (tmp_path / "swapped").iterdir()) == ["m_strip.png", "obama.jpg", "obama2.jpg", "obama3.jpg"]
    sets = pics / "faces"                                      # a face set inside the folder
    for append in ([], ["--append"]):
        r = run_cli("extract", pics, "-o", sets, "--size", 64, "--quiet", *append)
        assert r.returncode == 0 and "of a format facepair does not read" in r.stderr, r.stderr
    faces = json.loads((sets / "faceset.json").read_text())["faces"]
    assert len(faces) == 3 and not any("faces" in Path(f["source"]).parent.name for f in faces), faces
    refs = tmp_path / "refs"
    refs.mkdir()
    shutil.copy(OBAMA_PHOTOS / "obama.jpg", refs / "a.jpg")
    (refs / "readme.txt").write_text("who this is")
    for ref in (refs, extracted["obama1"][0]):
        out = tmp_path / f"id-{ref.name}.jpg"
        r = run_cli("swap", OBAMA_PHOTOS / "obama2.jpg", "--model", trained_model, "-o", out, "--identity", ref)
        assert r.returncode == 0 and out.is_file() and "faces swapped: 1" in r.stdout, r.stdout + r.stderr


def test_a_face_set_named_twice_on_a_side_is_trained_on_once(extracted, tmp_path):
    """`train --a A A` (or `--a A ./A/`) read the set twice: its faces twice as likely as
    another set's, its validation faces listed twice ("--a X --b X" was refused already)."""
    a, b = extracted["obama1"][0], extracted["reagan"][0]
    r = run_cli("train", "--a", a, f"{a}/.", "--b", b, "--model", tmp_path / "m",
                "--preset", "seed", "--steps", 1, "--batch-size", 4, "--quiet")
    assert r.returncode == 0, r.stderr
    state = read_state(tmp_path / "m")
    assert len(state["facesets"]["a"]) == 1, state["facesets"]
    assert len(state["validation"]["a"]) == len(set(map(json.dumps, state["validation"]["a"]))), state["validation"]["a"]


def test_what_a_new_user_met_in_verify_evaluate_and_the_api(trained_model, tmp_path):
    """Found by a reviewer trying verify, evaluate, export and the Python API as a new user
    (2026-12-07), each a silent loss or a message that did not name the problem before:
    `evaluate --html keep.png` replaced a picture with a report (exit 0), `--json` at a folder
    failed after the work; `verify` of the folder `swap FOLDER -o OUT` wrote said "not a regular
    file"; `swap --model m.onnx` said "model folder not found"; `--erode 64` said no face "could
    be swapped"; an animated picture lost its animation without a word; the Python API took
    detect_every=0 (ZeroDivisionError), duration=-1 ("no frame could be decoded" from a good
    file) and max_faces=0 (ValueError)."""
    from PIL import Image
    from facepair import api
    from facepair.errors import FacepairError
    keep = tmp_path / "keep.png"
    shutil.copy(OBAMA_PHOTOS / "obama.jpg", tmp_path / "keep.jpg")
    Image.open(OBAMA_PHOTOS / "obama.jpg").save(keep)
    (tmp_path / "r_files").write_text("x")
    (tmp_path / "figs.json").mkdir()
    before = keep.read_bytes()
    for args, says in (
            (["--html", keep], f"facepair: error: --html writes HTML: give a name ending in .html or .htm (got {keep})"),
            (["--json", tmp_path / "keep.jpg"], "facepair: error: --json writes JSON: give a name ending in .json"),
            (["--json", tmp_path / "figs.json"], f"facepair: error: {tmp_path / 'figs.json'} is a folder: give the name of a file to write"),
            (["--html", tmp_path / "r.html"], f"facepair: error: the report's pictures go in {tmp_path / 'r_files'}")):
        t = time.monotonic()
        r = run_cli("evaluate", "--model", trained_model, "--crops-only", *args)
        line, = r.stderr.strip().splitlines()
        assert r.returncode == 1 and line.startswith(says) and r.stdout == "", (args, r.stderr)
        assert time.monotonic() - t < 20                                 # before the work
    assert keep.read_bytes() == before and not (tmp_path / "r.html").exists()
    r = run_cli("extract", OBAMA_PHOTOS / "obama.jpg", "-o", tmp_path / "fs", "--json", tmp_path / "figs.json")
    assert r.returncode == 1 and "is a folder" in r.stderr and not (tmp_path / "fs").exists(), r.stderr
    # verify takes the folder a folder swap writes, file by file
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("obama.jpg", "obama2.jpg"):
        shutil.copy(OBAMA_PHOTOS / name, pics / name)
    assert run_cli("swap", pics, "--model", trained_model, "-o", tmp_path / "out", "--quiet").returncode == 0
    r = run_cli("verify", tmp_path / "out")
    assert r.returncode == 0 and r.stdout.count("SYNTHETIC (facepair)") == 2, r.stdout + r.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    for path, says in ((tmp_path / "empty", "no picture or video in the folder"),
                       (tmp_path / "loop1", "a link that leads nowhere (or in a loop)")):
        r = run_cli("verify", path)
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [f"facepair: error: {says} {path}"
                                                                         if says.startswith("no") else
                                                                         f"facepair: error: {says}: {path}"], r.stderr
    r = run_cli("train", "--a", tmp_path / "loop1", "--b", tmp_path / "empty", "--model", tmp_path / "m")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "internal error" not in r.stderr, r.stderr
    # an exported graph given as the model; a mask --erode wipes whole
    (tmp_path / "m.onnx").write_bytes(b"graph")
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", tmp_path / "m.onnx", "-o", tmp_path / "x.png")
    assert r.returncode == 1 and "is an exported graph: --model takes the model folder" in r.stderr, r.stderr
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", trained_model, "-o", tmp_path / "x.png", "--erode", 64)
    assert r.returncode == 1 and "the mask of every face found" in r.stderr and "--erode" in r.stderr, r.stderr
    # an animation: its first picture swapped, and said
    frame = Image.open(OBAMA_PHOTOS / "obama.jpg")
    frame.save(tmp_path / "anim.webp", save_all=True, append_images=[frame.transpose(Image.FLIP_LEFT_RIGHT)])
    r = run_cli("swap", tmp_path / "anim.webp", "--model", trained_model, "-o", tmp_path / "anim-out.webp")
    assert r.returncode == 0 and "holds 2 pictures (an animation, or pages): only the first" in r.stderr, r.stderr
    # the Python API checks what the command line checks
    for kw, says in ((dict(detect_every=0), "--detect-every: must be at least 1 (got 0)"),
                     (dict(detect_every=1.5), "--detect-every: not an integer: 1.5"),   # (every 3rd frame)
                     (dict(duration=-1), "--duration: must be more than 0 (got -1)"),
                     (dict(erode=-5), "--erode: must be from 0 to 64 (got -5)"),
                     (dict(feather=True), "--feather: not a number: True"),
                     (dict(threshold=float("nan")), "--threshold: not a finite number: nan")):
        with pytest.raises(FacepairError) as e:
            api.swap(OBAMA_CLIP2, trained_model, tmp_path / "v.mp4", progress=False, **kw)
        assert str(e.value) == says, kw
    with pytest.raises(FacepairError, match=r"--max-faces: must be at least 1 \(got 0\)"):
        api.evaluate(trained_model, max_faces=0, frames=False)
    assert not (tmp_path / "v.mp4").exists()


def _encode(path, pictures, fmt=None, rate=30):
    """H.264 of RGB `pictures` (all one size) into `path`."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream("libx264", rate=rate)
        s.height, s.width = pictures[0].shape[:2]
        s.pix_fmt = "yuv420p"
        for p in pictures:
            for packet in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(p), format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


def test_what_crafted_media_did(trained_model, tmp_path):
    """Found by a reviewer crafting media (2026-12-07): a one-frame picture muxed before a swap's
    own video stream hid its watermark from verify (the first video stream was read); a stream whose frame size changes was an internal error in
    verify and stretched in swap without a word; a grey PNG with an RGB colour profile printed
    libpng's own warning line."""
    from PIL import Image, ImageCms
    out = tmp_path / "swap.mp4"
    assert run_cli("swap", REAGAN_CLIP, "--model", trained_model, "-o", out, "--duration", 1, "--quiet").returncode == 0
    hidden = tmp_path / "hidden.mkv"
    with av.open(str(out)) as i, av.open(str(hidden), "w", format="matroska") as o:
        art = o.add_stream("mjpeg", rate=1)
        art.width, art.height, art.pix_fmt = 640, 480, "yuvj420p"     # larger than the swap's frames
        v = o.add_stream_from_template(i.streams.video[0])
        frame = av.VideoFrame.from_ndarray(np.zeros((480, 640, 3), np.uint8), format="rgb24")
        frame.pts = 0
        for p in [*art.encode(frame), *art.encode()]:
            o.mux(p)
        for p in i.demux(i.streams.video[0]):
            if p.dts is not None:
                p.stream = v
                o.mux(p)
    r = run_cli("verify", hidden)
    assert r.returncode == 0 and "watermark FOUND" in r.stdout, r.stdout + r.stderr
    # a stream whose frame size changes part-way (two MPEG-TS files joined)
    frames = [f for _, f in zip(range(20), (f for _, f in iter_video(OBAMA_CLIP1)))]
    _encode(tmp_path / "a.ts", frames[:10], "mpegts")
    _encode(tmp_path / "b.ts", [f[:, :200] for f in frames[10:]], "mpegts")
    joined = tmp_path / "joined.ts"
    joined.write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    r = run_cli("verify", joined)
    assert r.returncode == 1 and "internal error" not in r.stderr and "no facepair marks" in r.stdout, r.stdout + r.stderr
    r = run_cli("swap", joined, "--model", trained_model, "-o", tmp_path / "j.mp4", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "the picture's size changes from 256 x 256 to 200 x 256 px at frame" in r.stderr, r.stderr
    # a grey PNG with transparency and an RGB colour profile: facepair's lines only
    grey = Image.open(OBAMA_PHOTOS / "obama.jpg").convert("LA")
    grey.save(tmp_path / "la.png", icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    for args in (["verify", tmp_path / "la.png"], ["swap", tmp_path / "la.png", "--model", trained_model,
                                                    "-o", tmp_path / "la-out.png", "--quiet"]):
        r = run_cli(*args)
        assert "libpng" not in r.stderr and all(l.startswith("facepair: ") for l in r.stderr.splitlines()), r.stderr
