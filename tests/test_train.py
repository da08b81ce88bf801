"""facepair train: losses fall, resume is exact, kill -9 loses nothing saved, DDP stays in sync."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file

from conftest import run_cli


def _sets(extracted):
    return ["--a", extracted["obama1"][0], "--b", extracted["reagan"][0]]


def _log(model):
    with open(model / "log.csv") as f:
        return list(csv.DictReader(f))


def _weights(model):
    state = json.loads((model / "state.json").read_text())
    return state, load_file(model / state["checkpoint"] / "model.safetensors")


def test_a_few_steps_lower_both_losses(extracted, tmp_path):
    model = tmp_path / "m"
    r = run_cli("train", *_sets(extracted), "--model", model, "--preset", "seed", "--steps", 12, "--batch-size", 8,
                "--lr", "2e-4", "--preview-every", 12, "--quiet")
    assert r.returncode == 0, r.stderr
    rows = _log(model)
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    assert [float(r["lr"]) for r in rows] == [2e-4] * 12          # the rate each step used
    for side in "ab":
        first = sum(float(r[f"loss_{side}"]) for r in rows[:3]) / 3
        last = sum(float(r[f"loss_{side}"]) for r in rows[-3:]) / 3
        assert last < 0.9 * first, (side, first, last)
    state = json.loads((model / "state.json").read_text())
    assert state["step"] == 12 and state["preset"] == "seed"
    assert (model / "previews/latest.png").exists() and rows[-1]["val_loss_a"]
    # the preview grid holds swapped faces: labelled as every output is (its watermark is
    # written too, but the reader does not find it on a grid of faces: tag and manifest say it)
    from facepair.provenance.verify import verify_file
    for grid in (model / "previews/latest.png", model / "previews/step-00000012.png"):
        v = verify_file(grid)
        assert v.marked and v.our_tag and v.our_manifest, str(v)
    assert any((model / "tb").iterdir())
    assert len(state["validation"]["a"]) > 0 and len(state["validation"]["b"]) > 0


def test_resume_continues_with_identical_weights(extracted, tmp_path):
    common = [*_sets(extracted), "--preset", "mouth", "--batch-size", 4, "--save-every", 2,
              "--calibrate-faces", 0, "--quiet"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run_cli("train", *common, "--model", straight, "--steps", 4).returncode == 0
    assert run_cli("train", *common, "--model", resumed, "--steps", 2).returncode == 0
    state, saved = _weights(resumed)
    assert state["step"] == 2
    r = run_cli("train", *common, "--model", resumed, "--steps", 4)
    assert r.returncode == 0, r.stderr
    assert "steps 2 -> 4" in r.stdout
    (s1, w1), (s2, w2) = _weights(straight), _weights(resumed)
    assert s1["step"] == s2["step"] == 4
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert [int(r["step"]) for r in _log(resumed)] == [1, 2, 3, 4]
    # --steps is the total to reach: a model past it trains nothing, says so, and its folder is
    # left as it was (it used to re-read the face sets, write its state and say "trained")
    before = {p: p.stat().st_mtime_ns for p in resumed.rglob("*") if p.is_file() and p.name != ".lock"}
    r = run_cli("train", *common, "--model", resumed, "--steps", 3)
    assert r.returncode == 0, r.stderr
    line, = r.stderr.strip().splitlines()
    assert line.startswith(f"facepair: warning: model {resumed} is at step 4 already: nothing trained"), r.stderr
    assert r.stdout.splitlines() == ["nothing trained: step 4", f"model: {resumed}"], r.stdout
    assert {p: p.stat().st_mtime_ns for p in resumed.rglob("*") if p.is_file() and p.name != ".lock"} == before


def test_kill_9_then_resume(extracted, tmp_path):
    model = tmp_path / "m"
    args = [sys.executable, "-m", "facepair", "train", *map(str, _sets(extracted)), "--model",
            str(model), "--preset", "mouth", "--batch-size", 8, "--save-every", 3, "--calibrate-faces", 0,
            "--quiet"]
    p = subprocess.Popen([str(a) for a in args + ["--steps", 1000]], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if json.loads((model / "state.json").read_text())["step"] >= 6:
                    break
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                pass
            time.sleep(0.2)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    assert p.returncode == -signal.SIGKILL, p.returncode      # it was training, not crashed, when killed
    state, weights = _weights(model)
    saved = state["step"]
    assert saved >= 6 and saved % 3 == 0
    r = subprocess.run([str(a) for a in args + ["--steps", saved + 2]], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"steps {saved} -> {saved + 2}" in r.stdout
    assert [int(row["step"]) for row in _log(model)] == list(range(1, saved + 3))


def test_sigterm_saves_a_checkpoint(extracted, tmp_path):
    model = tmp_path / "m"
    p = subprocess.Popen([sys.executable, "-m", "facepair", "train", *map(str, _sets(extracted)),
                          "--model", str(model), "--preset", "mouth", "--batch-size", "8", "--save-every", "1000",
                          "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (model / "state.json").exists() and p.poll() is None:
        time.sleep(0.2)                                   # the step-0 checkpoint: training starts
    time.sleep(4)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130
    assert "interrupted at step" in err and "Traceback" not in err
    said = int(re.search(r"interrupted at step (\d+)", err).group(1))
    state = json.loads((model / "state.json").read_text())
    assert state["step"] == said > 0                      # the step it names is the one saved,
    assert (model / state["checkpoint"] / "model.safetensors").is_file()    # beyond step 0's


def test_mismatched_preset_and_missing_faceset_are_one_line(extracted, tmp_path):
    model = tmp_path / "m"
    assert run_cli("train", *_sets(extracted), "--model", model, "--preset", "mouth", "--steps", 1, "--batch-size", 4,
                   "--calibrate-faces", 0, "--quiet").returncode == 0
    state = json.loads((model / "state.json").read_text())
    (model / "state.json").write_text(json.dumps(dict(state, preset="other")))
    r = run_cli("train", *_sets(extracted), "--model", model, "--preset", "seed", "--steps", 2)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"facepair: error: model folder {model} was trained with preset 'other', not 'seed' "
        "(use another --model folder for a new preset)"]
    r = run_cli("train", "--a", tmp_path / "missing", "--b", extracted["reagan"][0], "--model",
                tmp_path / "m2", "--steps", 1)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"facepair: error: face set not found: {tmp_path / 'missing'}"]
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk/notes.txt").write_text("mine")
    r = run_cli("train", *_sets(extracted), "--model", tmp_path / "junk", "--steps", 1)
    assert r.returncode == 1 and "not a facepair model folder" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    reagan = extracted["reagan"][0]
    r = run_cli("train", "--a", reagan, "--b", reagan, "--model", tmp_path / "m3", "--steps", 1)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"facepair: error: face set {reagan} is given for both --a and --b: a model learns two "
        "people, one on each side"], r.stderr
    assert not (tmp_path / "m3").exists()
    # a resume on faces cut with another margin: the model's geometry was overwritten by theirs
    (model / "state.json").write_text(json.dumps(state))
    wide = {}
    for name in ("obama1", "reagan"):
        wide[name] = shutil.copytree(extracted[name][0], tmp_path / f"{name}-wide")
        index = json.loads((wide[name] / "faceset.json").read_text())
        (wide[name] / "faceset.json").write_text(json.dumps(dict(index, padding=index["padding"] + 0.1)))
    before = (model / "state.json").read_bytes()
    r = run_cli("train", "--a", wide["obama1"], "--b", wide["reagan"], "--model", model, "--steps", 2)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"face set {wide['obama1']} was extracted with padding" in r.stderr
    assert f"model {model} was trained on faces with {index['padding']}" in r.stderr
    assert (model / "state.json").read_bytes() == before


def test_a_training_by_minutes_shows_how_far_it_is(extracted, tmp_path):
    """--minutes alone (the web app's default) drew a bar with no total: the page's progress
    stayed at 0 % for the whole run. Its bar now counts the budget's seconds, the step beside."""
    from facepair.ui.jobs import PERCENT
    r = run_cli("train", *_sets(extracted), "--model", tmp_path / "m", "--preset", "seed",
                "--minutes", 0.1, "--batch-size", 4)
    assert r.returncode == 0, r.stderr
    shares = [int(p) for p in PERCENT.findall(r.stderr.encode())]
    assert shares and shares[-1] == 100 and "step=" in r.stderr, r.stderr[-500:]


def test_torchrun_two_cpu_processes_end_in_sync(extracted, tmp_path):
    model = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                        "--master-port", "29517", "-m", "facepair", "train",
                        *map(str, _sets(extracted)), "--model", str(model), "--preset", "mouth", "--steps", "3",
                        "--batch-size", "8", "--device", "cpu", "--calibrate-faces", "0", "--quiet"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((model / "state.json").read_text())
    assert state["step"] == 3
    sums = state["ddp"]["checksums"]
    assert state["ddp"]["world_size"] == 2 and len(sums) == 2 and sums[0] == sums[1]


def test_holdout_spans_the_footage_and_keeps_neighbours_out_of_training():
    from facepair.model.presets import TrainConfig
    from facepair.training.data import holdout
    cfg = TrainConfig()
    for n in (4, 60, 300, 782, 1504):
        train, val = holdout(n, cfg)
        assert len(val) == min(cfg.val_max, max(1, round(n * cfg.val_fraction)))
        assert not set(train) & set(val) and len(train) >= 0.85 * (n - len(val))
    train, val = holdout(782, cfg)                      # the Reagan clip's face count
    assert val.min() < 782 * 0.25 and val.max() > 782 * 0.75          # early and late frames
    blocks = np.split(val, np.flatnonzero(np.diff(val) > 1) + 1)
    assert len(blocks) == cfg.val_blocks
    nearest = np.abs(train[:, None] - val[None, :]).min(1)
    assert nearest.min() > cfg.val_gap                  # no training frame next to a held-out one


def test_each_augmentation_changes_what_its_flag_says():
    """train --flip/--affine/--color/--warp, on a real face: flip, rotation and colour change the
    face the model sees and the one it must rebuild alike; --warp ("warped in, clean target")
    changes only the input, slightly; none of them: the face as it is."""
    from dataclasses import replace
    from facepair.media.video import iter_video
    from facepair.model.presets import TrainConfig
    from facepair.training.data import _augment
    from conftest import OBAMA_CLIP1
    _, frame = next(iter(iter_video(OBAMA_CLIP1)))
    h, w = frame.shape[:2]
    img = np.ascontiguousarray(frame[h // 2 - 64:h // 2 + 64, w // 2 - 64:w // 2 + 64])

    def runs(**flags):
        cfg = replace(TrainConfig(), **flags)
        return [_augment(img.copy(), cfg, np.random.default_rng(k)) for k in range(8)]

    def diff(x, y):
        return float(np.abs(x.astype(np.float32) - y.astype(np.float32)).mean())
    assert all(np.array_equal(i, img) and np.array_equal(t, img) for i, t in runs())
    flips = [np.array_equal(i, img[:, ::-1]) for i, _ in runs(flip=True)]
    assert any(flips) and not all(flips) and all(np.array_equal(i, t) for i, t in runs(flip=True))
    for flag in ("affine", "color"):
        got = runs(**{flag: True})
        assert all(np.array_equal(i, t) and i.shape == img.shape and diff(i, img) > 1 for i, t in got), flag
    for i, t in runs(warp=True):
        assert np.array_equal(t, img) and 0.5 < diff(i, img) < 25, diff(i, img)
        assert abs(float(i.mean()) - float(img.mean())) < 2             # moved, not recoloured


def test_eye_repeat_draws_blinks_more_often_and_every_face_still_once_an_epoch(extracted):
    """eye_repeat: the faces of obama_clip1 whose eyelid gap is rare (its blinks) come up more
    often in an epoch; every face still comes, none more than eye_repeat times; 1 leaves the draw
    as it was (each face exactly once per epoch)."""
    from dataclasses import replace
    from facepair.faces.landmarks import eyelid_gap
    from facepair.model.presets import TrainConfig
    from facepair.training.data import Batches, load_side
    cfg = TrainConfig(batch_size=8)
    side = load_side([extracted["obama1"][0]], 64, cfg)
    n = len(side.train)
    gap = eyelid_gap(side.marks)
    blink = gap < 0.6 * np.median(gap)
    assert 0 < blink.sum() < 0.1 * n                     # blinks are rare in the clip

    which = {side.marks[i].tobytes(): i for i in range(n)}        # a face by its landmarks
    assert len(which) == n

    def one_epoch(c):
        """The faces the batches carry (side A), step by step, up to the draw that brings the
        last face not seen yet: (draws per face, number of draws)."""
        batches, drawn, step = Batches(side, side, c.batch_size, c, seed=0, marks=True), [], 0
        while len(set(drawn)) < n:
            marks = batches.make(step)[4].numpy()                  # a_in, a_t, b_in, b_t, a_marks
            drawn += [which[m.tobytes()] for m in marks]
            step += 1
        batches.close()
        seen, last = set(), 0
        for k, face in enumerate(drawn):
            if face not in seen:
                seen.add(face)
                last = k
        return np.bincount(drawn[:last + 1], minlength=n), last + 1

    counts, per_epoch = one_epoch(cfg)
    assert per_epoch == n and counts.max() == 1          # off: a plain permutation
    counts, per_epoch = one_epoch(replace(cfg, eye_repeat=4))
    assert per_epoch > n and counts.max() <= 4
    share = counts[blink].sum() / counts.sum()
    assert share > 2 * blink.mean()                      # blinks drawn over twice as often
    assert counts.min() == 1                             # every face, the common ones once


def test_cue_mask_hides_each_cued_part_and_not_what_lies_between(extracted):
    """A cue over the mouth and the eyes hides the mouth and both eyes from the encoder, each
    under its own hull, and leaves the nose between them visible; the mouth's cue alone hides
    the mouth only."""
    from facepair.faces.landmarks import EYES, MOUTH
    from facepair.model.presets import ModelConfig, TrainConfig
    from facepair.training.data import cue_stats, load_side
    a = load_side([extracted["obama1"][0]], 64, TrainConfig())
    b = load_side([extracted["reagan"][0]], 64, TrainConfig())
    marks = np.concatenate([a.marks, b.marks])

    def hidden(mask, point):            # share of the faces whose landmark `point` is hidden
        xy = np.clip(np.round(marks[:, point]).astype(int), 0, 63)
        return float((mask[0, 0].numpy()[xy[:, 1], xy[:, 0]] > 0.5).mean())

    both, _, _ = cue_stats(a.marks, b.marks, ModelConfig(cue_points=MOUTH + EYES))
    mouth, _, _ = cue_stats(a.marks, b.marks, ModelConfig(cue_points=MOUTH))
    assert hidden(both, 62) == 1 and hidden(both, 37) == 1 and hidden(both, 44) == 1   # lips, lids
    assert hidden(both, 30) < 0.5                                   # the nose tip stays visible
    assert hidden(mouth, 62) == 1 and hidden(mouth, 37) == 0 and hidden(mouth, 30) < 0.5


def test_adam_steps_like_torch_and_training_loads_no_dynamo(extracted, tmp_path):
    """training/adam.py: the same update as torch's Adam, bit for bit, and a training process
    that never imports torch._dynamo (about a second of every start)."""
    import subprocess
    import sys

    import torch

    from facepair.training.adam import Adam, adam
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [adam(nets[0].parameters(), 1e-2, (0.5, 0.999)), torch.optim.Adam(nets[1].parameters(), lr=1e-2, betas=(0.5, 0.999))]
    assert type(opts[0]) is Adam
    x = torch.randn(32, 8)
    for _ in range(5):
        for net, opt in zip(nets, opts):
            opt.zero_grad(set_to_none=True)
            net(x).square().mean().backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters()))
    assert opts[0].state_dict()["state"][0]["step"] == 5
    code = ("import sys, facepair; facepair.train(a=[sys.argv[1]], b=[sys.argv[2]], model_dir=sys.argv[3], "
            "preset='seed', steps=1, progress=False, calibrate_faces=0); print('torch._dynamo' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(extracted["obama1"][0]), str(extracted["reagan"][0]),
                        str(tmp_path / "m")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "False", r.stderr[-2000:]


def test_training_in_fp32_on_a_cpu_without_bf16_says_what_it_costs(extracted, tmp_path, monkeypatch, capsys):
    """A CPU without native bf16 trains in fp32, several times slower than the README's machines:
    `train` says so at the start (so --minutes can be chosen before waiting); where the CPU has
    bf16 and fp32 was asked for, or with --quiet, it says nothing."""
    import facepair.runtime
    import facepair.training.loop
    from facepair.api import train
    sets = dict(a=[extracted["obama1"][0]], b=[extracted["reagan"][0]], preset="seed", batch_size=2,
                preview_every=1000)
    for has_bf16, precision, progress, said in ((False, "auto", True, True), (True, "fp32", True, False),
                                                (False, "auto", False, False)):
        for module in (facepair.runtime, facepair.training.loop):
            monkeypatch.setattr(module, "cpu_has_bf16", lambda: has_bf16)
        model = tmp_path / f"m{has_bf16}{progress}"
        train(model_dir=model, steps=1, device="cpu", precision=precision, progress=progress, **sets)
        out = capsys.readouterr().out
        assert json.loads((model / "state.json").read_text())["precision"] == "fp32"
        assert ("training in fp32: facepair finds no native bf16" in out) is said, out
        assert ("--batch-size 8" in out) is said, out          # the choice it offers, with its cost
