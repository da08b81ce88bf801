"""Every preset builds, trains a few steps, and records itself in the model folder."""
import json
import math

import numpy as np
import pytest
import torch

from facepair.model.autoencoder import FacePair
from facepair.model.presets import PRESETS
from facepair.training.losses import face_weights, gradient_difference, make_loss, region_weights, ssim

from conftest import BIDEN_PHOTO, EVERY, OBAMA_CLIP1, OBAMA_CLIP2, OBAMA_PHOTOS, REAGAN_CLIP, run_cli


def test_every_preset_trains_a_few_steps(extracted, tmp_path):
    """Each preset builds, trains 3 steps and records itself, in one process (one torch start;
    the command line itself is tested everywhere else). gan, seq2seq, seq2seq-temporal and the
    128 px presets (128 px face sets) train in their own tests below (and test_ui.py)."""
    import facepair
    for name in sorted(n for n in set(PRESETS) - {"gan", "seq2seq", "seq2seq-temporal"}
                       if PRESETS[n].model.size == 64):
        model = tmp_path / name
        facepair.train(a=[extracted["obama1"][0]], b=[extracted["reagan"][0]], model_dir=str(model),
                       preset=name, steps=3, batch_size=8, progress=False,
                       calibrate_faces=0)     # the cue's calibration: tested below
        state = json.loads((model / "state.json").read_text())
        assert state["preset"] == name and state["step"] == 3
        assert state["train_config"]["lr"] == PRESETS[name].train.lr


def test_default_preset_hd_trains_on_default_128_px_faces_swaps_and_says_which_faces_it_needs(extracted, tmp_path):
    """The defaults end to end: `extract` cuts 128 px faces and `train` (preset hd) trains on
    them; their 128 px faces go through swap and evaluate. A 64 px face set is refused in one
    line that says how to extract one (no silent upscaling)."""
    from facepair.model.store import load_model
    model, sets = tmp_path / "m", {}
    r = run_cli("train", "--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model",
                model, "--steps", 2)
    assert r.returncode == 1 and "--size 128" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (model / "state.json").exists()
    for name, clip in (("a", OBAMA_CLIP1), ("b", REAGAN_CLIP)):
        sets[name] = tmp_path / name
        r = run_cli("extract", clip, "-o", sets[name], "--every", 20, "--quiet")
        assert r.returncode == 0, r.stderr
    r = run_cli("train", "--a", sets["a"], "--b", sets["b"], "--model", model, "--steps", 2,
                "--batch-size", 4, "--calibrate-faces", 4, "--quiet")
    assert r.returncode == 0 and "lids" in r.stdout, r.stderr
    m, state = load_model(model, torch.device("cpu"))
    assert m.cfg.size == 128 and state["faces"]["size"] == 128 and state["preset"] == "hd"
    from facepair.evaluate.calibrate import LID_GAINS, choose_lids  # the lids in the cue: their
    assert m.cfg.cue_lids and m.decoder_a.dense[0].in_features == 512 + 42   # gain measured too
    for name, k in (("a2b", 1), ("b2a", 0)):
        assert state["cue_lid_gain"][name] in LID_GAINS and float(m.cue_lid_gain[k]) == state["cue_lid_gain"][name]
        lid_figures = state["cue_calibration"]["lid_figures"][name]
        assert list(lid_figures) == [f"lid gain {g:g}" for g in LID_GAINS]
        # the gain kept is the one the rule picks from the figures recorded (the identity of
        # every gain it had to ask about recorded too)
        measured = [dict(lid_figures[key]) for key in lid_figures]
        kept = choose_lids(measured, lambda s, full: _recorded(lid_figures[f"lid gain {LID_GAINS[s]:g}"]))
        assert LID_GAINS[kept] == state["cue_lid_gain"][name], (name, lid_figures)
    out = tmp_path / "swap.png"
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", model, "-o", out, "--quiet")
    assert r.returncode == 0 and out.is_file(), r.stderr
    r = run_cli("evaluate", "--model", model, "--video", OBAMA_CLIP2, "--video-seconds", 0.5,
                "--max-faces", 4, "--json", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    figures = json.loads((tmp_path / "e.json").read_text())
    assert figures["video_frames"] == 15 and figures["video_failures"] == 0   # 0.5 s at 30 fps
    assert all(math.isfinite(figures[k]) for k in ("video_detail", "video_rec_ssim", "video_rec_gmsd",
                                                   "video_mouth_corr", "video_landmark_error"))
    assert 0 < figures["video_rec_ssim"] <= 1 and 0 < figures["video_rec_gmsd"] < 0.35 and figures["video_detail"] > 0
    r = run_cli("train", "--a", sets["a"], "--b", sets["b"], "--model", tmp_path / "m64",
                "--preset", "mouth", "--steps", 1)                 # 64 px presets need 64 px faces
    assert r.returncode == 1 and "--size 64" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_hd_variants_train_with_their_own_loss(tmp_path, monkeypatch):
    """hd-masked, hd-ssim and hd-perceptual train on 128 px faces, and `train` builds their loss
    from their own settings (masked: outside_weight 0.1; ssim: its SSIM weight; perceptual: its
    weight), not hd's."""
    import facepair
    import facepair.training.loop as loop
    made = []
    real = loop.make_loss

    def spy(*args):
        made.append(args)
        return real(*args)
    monkeypatch.setattr(loop, "make_loss", spy)
    sets = {}
    for side, clip in (("a", OBAMA_CLIP1), ("b", REAGAN_CLIP)):
        sets[side] = tmp_path / side
        facepair.extract([clip], sets[side], every=30, progress=False)
    for name in ("hd-masked", "hd-ssim", "hd-perceptual"):
        t = PRESETS[name].train
        facepair.train(a=[sets["a"]], b=[sets["b"]], model_dir=str(tmp_path / name), preset=name,
                       steps=1, batch_size=2, progress=False, calibrate_faces=0)
        assert json.loads((tmp_path / name / "state.json").read_text())["step"] == 1
        kind, ssim_weight, _, edge_weight, outside_weight, perceptual_weight, _ = made[-1]
        assert (kind, ssim_weight, edge_weight, outside_weight, perceptual_weight) == \
            (t.loss, t.ssim_weight, t.edge_weight, t.outside_weight, t.perceptual_weight)
    assert made[0][4] == 0.1 != PRESETS["hd"].train.outside_weight
    assert made[1][1] == PRESETS["hd-ssim"].train.ssim_weight != PRESETS["hd"].train.ssim_weight
    assert made[2][5] == PRESETS["hd-perceptual"].train.perceptual_weight > PRESETS["hd"].train.perceptual_weight == 0


def test_one_ssim_for_training_and_evaluation():
    """The loss's SSIM (torch) and evaluate's (scikit-image) are one definition: they agree on
    a real photo against a blurred copy of it."""
    import cv2

    from facepair.evaluate.metrics import ssim as eval_ssim
    from facepair.media.image import read_image
    photo = read_image(BIDEN_PHOTO)
    img = cv2.resize(photo, (96, 96), interpolation=cv2.INTER_AREA).astype("float32") / 255
    blurred = cv2.GaussianBlur(img, (5, 5), 1.5)
    torch_value = float(ssim(*(torch.from_numpy(x).permute(2, 0, 1)[None] for x in (img, blurred))))
    assert torch_value < 0.95                                  # the blur is seen
    assert abs(torch_value - eval_ssim(img, blurred)) < 1e-4


def test_gradient_difference_loss_sees_blur_and_pulls_toward_the_edges():
    """edge_weight adds the gradient difference loss: zero for a photo against itself, positive
    for a blurred copy, and descending it alone gives the blurred copy back some of the photo's
    face detail (evaluate's figure)."""
    import cv2

    from facepair.evaluate.metrics import detail
    from facepair.media.image import read_image
    photo = cv2.resize(read_image(BIDEN_PHOTO), (96, 96), interpolation=cv2.INTER_AREA)
    x, start = (torch.from_numpy(im.astype("float32") / 255).permute(2, 0, 1)[None]
                for im in (photo, cv2.GaussianBlur(photo, (0, 0), 1.5)))
    y = start.clone().requires_grad_()
    assert float(gradient_difference(x, x)) == 0 and float(gradient_difference(y, x)) > 0.005
    plain, edged = make_loss("l1"), make_loss("l1", edge_weight=2.0)
    assert abs(float(edged(y, x) - plain(y, x)) - 2 * float(gradient_difference(y, x))) < 1e-6

    def face_detail(t):
        return detail(t.detach()[0].permute(1, 2, 0).numpy(), np.ones((96, 96), bool))
    opt = torch.optim.Adam([y], lr=2e-3)
    for _ in range(20):
        opt.zero_grad()
        gradient_difference(y, x).backward()
        opt.step()
    assert face_detail(start) < face_detail(y) < 1.5 * face_detail(x)
    assert float(gradient_difference(y, x)) < float(gradient_difference(start, x))


def test_joint_batch_gives_same_shapes():
    cfg = PRESETS["quick"].model
    a, b = torch.rand(3, 3, 64, 64), torch.rand(5, 3, 64, 64)
    ra, rb = FacePair(cfg)(a, b)
    assert ra.shape == a.shape and rb.shape == b.shape


def test_losses():
    x = torch.rand(2, 3, 64, 64)
    assert abs(float(ssim(x, x)) - 1) < 1e-5 and float(ssim(x, torch.rand_like(x))) < 0.2
    w = region_weights(64, 0.15, 3.0)
    assert w.shape == (1, 1, 64, 64) and float(w.max()) == 3 and float(w.min()) == 1
    assert 0.05 < float((w > 1).float().mean()) < 0.5          # eyes and mouth, not the whole face
    loss = make_loss("l1", 0.5, w)
    y = x.clone().requires_grad_()
    assert float(loss(y, x).detach()) == 0
    loss(torch.zeros_like(x).requires_grad_(), x).backward()


def test_masked_training_weighs_the_face_and_reaches_the_step(extracted):
    """hd-masked's loss (outside_weight 0.1): on real faces and their landmarks, the weights are
    1 on every landmark and 0.1 in the crop's corners; an error in the background costs a tenth
    of the same error on the face (the plain loss: the same), the SSIM term too; train_step gives
    each side's loss that side's landmarks."""
    from facepair.faces.faceset import crop_marks, load_faces
    from facepair.training.step import train_step
    faces, entries = load_faces([extracted["obama1"][0]])[:2]
    marks = torch.from_numpy(crop_marks(entries[:4]))
    x = torch.from_numpy(faces[:4]).permute(0, 3, 1, 2).float() / 255
    size = x.shape[-1]
    w = face_weights(marks.numpy(), size, 0.1)
    ix = marks.round().long().clamp(0, size - 1)
    assert w.shape == (4, 1, size, size) and torch.all(w[torch.arange(4)[:, None], 0, ix[..., 1], ix[..., 0]] > 0.98)
    assert float(w[:, :, :3, :3].max()) < 0.11 and 0.2 < float((w > 0.99).float().mean()) < 0.8
    face = (w > 0.99).float().expand_as(x)
    back = (w < 0.11).float().expand_as(x)
    # the same error (0.2 on average over the crop), all of it on the face or all in the background
    err_face, err_back = x + 0.2 * face / face.mean(), x + 0.2 * back / back.mean()
    l1, masked_l1 = make_loss("l1"), make_loss("l1", outside_weight=0.1)
    masked = make_loss("l1", 0.5, outside_weight=0.1)             # hd's L1 + SSIM, masked
    assert float(masked(x, x, marks)) < 1e-6
    assert abs(float(l1(err_face, x, marks)) - float(l1(err_back, x, marks))) < 1e-5
    f, b = float(masked_l1(err_face, x, marks)), float(masked_l1(err_back, x, marks))
    assert abs(b / f - 0.1) < 0.02, (f, b)
    assert float(masked(err_back, x, marks)) < 0.2 * float(masked(err_face, x, marks))   # SSIM too
    assert abs(float(masked_l1(err_back, x)) - 0.2) < 1e-5      # without landmarks: unmasked
    seen = []

    def spy(rec, target, marks=None):
        seen.append(marks)
        return (rec - target).abs().mean()
    model = FacePair(PRESETS["hd-masked"].model)
    assert PRESETS["hd-masked"].model == PRESETS["hd"].model and PRESETS["hd-masked"].train.outside_weight == 0.1
    k = 128 / size
    big = torch.nn.functional.interpolate(x, size=128)
    opt = torch.optim.Adam(model.parameters())
    train_step(model, opt, torch.amp.GradScaler("cpu", enabled=False),
               (big[:2], big[:2], big[2:], big[2:], k * marks[:2], k * marks[2:]),
               torch.autocast("cpu", enabled=False), spy)
    assert torch.equal(seen[0], k * marks[:2]) and torch.equal(seen[1], k * marks[2:])


def test_hd_ssim_weighs_a_blurred_face_more_than_hd_does():
    """hd-ssim: hd's model and recipe with the SSIM term weighted 2 instead of 0.5. A face rebuilt
    blurred costs hd's loss (made from its settings as train makes it) about 2.9 times what a
    face rebuilt with a flat error of the same L1 costs; hd-ssim's, 5 times: it trains for
    structure first."""
    import cv2
    from dataclasses import replace

    from conftest import OBAMA_PHOTOS
    from facepair.media.image import read_image
    from facepair.training.losses import make_loss
    hd, ssim = PRESETS["hd"], PRESETS["hd-ssim"]
    assert ssim.model == hd.model and ssim.train == replace(hd.train, ssim_weight=2.0)
    face = cv2.resize(read_image(OBAMA_PHOTOS / "obama.jpg"), (128, 128), interpolation=cv2.INTER_AREA)
    x, blurred = (torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255
                  for f in (face, cv2.GaussianBlur(face, (0, 0), 2.0)))
    flat = x + (blurred - x).abs().mean()                     # the same L1, no structure lost

    def loss(p, rec):
        t = p.train
        return float(make_loss(t.loss, t.ssim_weight, None, t.edge_weight, t.outside_weight)(rec, x))
    assert loss(ssim, blurred) / loss(ssim, flat) > 1.5 * loss(hd, blurred) / loss(hd, flat)


def test_perceptual_loss_is_dlibs_face_network_and_pulls_a_blurred_face_back():
    """hd-perceptual's term: the first levels of dlib's face network (all five levels give dlib's
    own embeddings of real chips), zero for a face against itself, higher for a blurred face than
    for one with a flat error of the same L1, and descending it alone gives a blurred face back
    some of its detail (evaluate's figure)."""
    import cv2

    from facepair.evaluate.metrics import detail
    from facepair.faces.identity import Embedder
    from facepair.media.image import read_image
    from facepair.training.losses import FaceFeatures, perceptual
    face = cv2.resize(read_image(OBAMA_PHOTOS / "obama.jpg"), (128, 128), interpolation=cv2.INTER_AREA)
    chips = np.stack([cv2.resize(face, (150, 150)), cv2.resize(read_image(BIDEN_PHOTO), (150, 150))])
    embedder = Embedder()
    with torch.no_grad():
        maps = FaceFeatures(upto=5)(torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255)
        assert np.abs((maps[-1].mean((2, 3)) @ embedder.net.linear).numpy() - embedder.net(chips)).max() < 1e-5
    features = FaceFeatures()
    x, start = (torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255
                for f in (face, cv2.GaussianBlur(face, (0, 0), 2.0)))
    flat = x + (start - x).abs().mean()
    with torch.no_grad():
        assert float(perceptual(features, x, x)) == 0
        assert float(perceptual(features, start, x)) > 1.5 * float(perceptual(features, flat, x))
    y = start.clone().requires_grad_()
    opt = torch.optim.Adam([y], lr=2e-3)
    for _ in range(20):
        opt.zero_grad()
        perceptual(features, y, x).backward()
        opt.step()

    def face_detail(t):
        return detail(t.detach()[0].permute(1, 2, 0).clamp(0, 1).numpy(), np.ones((128, 128), bool))
    assert face_detail(start) < face_detail(y) < 1.5 * face_detail(x)


def test_gan_step_losses_are_finite_and_feature_matching_is_in_the_generator_loss():
    import contextlib

    from facepair.model.discriminator import discriminators
    from facepair.training.step import train_step

    torch.manual_seed(0)
    cfg = PRESETS["gan"]
    model, disc = FacePair(cfg.model), discriminators()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    a, b = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)
    loss = make_loss("l1")
    before = [p.detach().clone() for p in disc.parameters()]
    out = train_step(model, opt, scaler, (a, a, b, b), contextlib.nullcontext(), loss,
                     gan=(disc, opt_d, 0.05, 0.5))
    assert out is not None and all(torch.isfinite(torch.tensor(v)) for v in out.values())
    assert out["gan_fm"] > 0 and out["gan_d"] > 0
    expected = out["loss_a"] + out["loss_b"] + 0.05 * out["gan_adv"] + 0.5 * out["gan_fm"]
    assert abs(out["loss_total"] - expected) < 1e-4 * expected
    assert any(not torch.equal(p0, p1) for p0, p1 in zip(before, disc.parameters()))  # D stepped


def test_gan_preset_checkpoints_its_discriminators(extracted, tmp_path):
    model = tmp_path / "gan"
    common = ["--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model", model,
              "--preset", "gan", "--batch-size", 4, "--quiet"]
    assert run_cli("train", *common, "--steps", 1).returncode == 0
    state = json.loads((model / "state.json").read_text())
    assert (model / state["checkpoint"] / "discriminator.safetensors").is_file()
    assert (model / state["checkpoint"] / "discriminator.optimizer.safetensors").is_file()
    # resumes with them: discriminators changed on disk come back as changed (they take no step
    # before gan_start, so the next checkpoint holds them as loaded, not fresh ones)
    from safetensors.torch import load_file, save_file
    file = model / state["checkpoint"] / "discriminator.safetensors"
    moved = {k: v + 1.0 for k, v in load_file(file).items()}
    save_file(moved, file)
    r = run_cli("train", *common, "--steps", 2)
    assert r.returncode == 0, r.stderr
    state = json.loads((model / "state.json").read_text())
    again = load_file(model / state["checkpoint"] / "discriminator.safetensors")
    assert state["step"] == 2 and again.keys() == moved.keys()
    assert all(torch.equal(again[k], moved[k]) for k in moved)


def test_landmark_cue_model_swaps_photos_and_evaluates(extracted, tmp_path):
    """The landmark-cue preset records its mask and cue statistics, and swap and evaluate feed it
    the faces' landmarks; it refuses augmentations that would move faces off their landmarks."""
    from facepair.model.store import load_model
    model = tmp_path / "m"
    common = ["--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model", model,
              "--preset", "mouth", "--batch-size", 4, "--quiet"]
    r = run_cli("train", *common, "--steps", 2, "--flip")
    assert r.returncode == 1 and "--flip" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("train", *common, "--steps", 2, "--calibrate-faces", 6)
    assert r.returncode == 0 and "landmark cue in swaps" in r.stdout, r.stderr
    m, state = load_model(model, torch.device("cpu"))
    assert 0.05 < float(m.cue_mask.mean()) < 0.4             # the mouth, not the face
    assert (m.cue_std > 0).all() and not torch.equal(m.cue_mean[0], m.cue_mean[1])
    calib = state["cue_calibration"]                           # measured on training frames
    assert calib["faces"] == {"a": 6, "b": 6} and set(calib["figures"]) == {"a2b", "b2a"}
    for name, k in (("a2b", 1), ("b2a", 0)):
        figs = calib["figures"][name]
        assert len(figs) == 15                                  # 3 centres x 5 gains
        assert state["cue_shift"][name] in (0, 0.5, 1) and state["cue_gain"][name] in (1, 1.5, 2, 3, 4)
        assert float(m.cue_shift[k]) == state["cue_shift"][name]   # swaps into B: a2b's setting
        assert float(m.cue_gain[k]) == state["cue_gain"][name]
        # the setting kept, measured on every frame, is the best mouth r of those measured on
        # every frame whose swaps stay the target; where none does, the closest of those whose
        # every identity chip was read (each identity asked is recorded with the figures)
        kept = figs[f"shift {state['cue_shift'][name]:g} gain {state['cue_gain'][name]:g}"]
        full = [f for f in figs.values() if f["frames"] == 6]
        assert kept["frames"] == 6 and "id_rate" in kept, figs
        if any(f.get("id_pass") for f in figs.values()):
            assert kept["id_pass"] and kept["mouth_corr"] == max(f["mouth_corr"] for f in full if f.get("id_pass"))
        else:
            assert kept["id_rate"] == max(f["id_rate"] for f in figs.values() if f.get("id_seen") == kept["id_seen"])
    # on video the face is aligned by its smoothed landmarks, but the cue reads the landmarks
    # found in the frame, placed by their own alignment as in training
    import pytest

    from facepair.faces import align
    from facepair.faces.detect import make_detector
    from facepair.faces.landmarks import Landmarker
    from facepair.media.video import iter_video
    from facepair.swap.options import SwapOptions
    from facepair.swap.pipeline import SwapSummary, Swapper
    # what the model is given: record the landmarks each face's cue is made of
    from facepair.model.autoencoder import FacePair as Model
    from facepair.swap.tracker import FaceTracker
    cues, real_inputs = [], Model.inputs

    def recording(self, crops, target, marks=None, source=None, **kw):
        cues.extend(np.asarray(marks))
        return real_inputs(self, crops, target, marks, source, **kw)
    frames = [f for _, f in zip(range(8), (f for _, f in iter_video(OBAMA_CLIP2)))]
    tracker, found = FaceTracker(make_detector("hog"), Landmarker(), detect_every=5), []
    for i, f in enumerate(frames):                             # the landmarks found, as swap finds them
        tr, = tracker.landmarks(f, i, True)
        found.append(tr.marks)
    outputs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Model, "inputs", recording)
        for smooth in (True, False):
            swapper, summary = Swapper(model, SwapOptions(direction="a2b", smooth=smooth, engine="torch",
                                                          occlusion="none", progress=False)), SwapSummary()
            held = [h for i, f in enumerate(frames) for h in swapper.stream(i, f.copy(), None, summary)]
            held += swapper.smoother.flush()
            swapper.render_video(held, summary)
            assert summary.faces_swapped == 8
            outputs[smooth] = [h[1][0] for h in held]
    smoothed_cues, plain_cues = np.array(cues[:8]), np.array(cues[8:])
    expected = np.array([align.map_points(align.align_transform(m, 64), m) for m in found])
    assert np.allclose(smoothed_cues, expected, atol=1e-3)      # smoothing on: the cue as found
    assert np.allclose(plain_cues, expected, atol=1e-3)         # and the same as with it off
    moved = sum(not np.array_equal(a, b) for a, b in zip(outputs[True], outputs[False]))
    assert moved >= 4                                          # while the face itself was placed
    #                                                            by the smoothed landmarks
    # calibration swaps the same faces with one cue setting after another: each is encoded once
    # (FaceModel.codes), and the pictures are those of encoding it every time
    fm, encoded = swapper.models[0], []
    jobs = swapper.find(frames[:2], 0, SwapSummary())
    real_encode = fm.model.encode
    fm.model.encode = lambda x: encoded.append(len(x)) or real_encode(x)
    with torch.no_grad():
        fm.model.cue_gain[1] = 1.0
        plain = [fm.forward(jobs, None)[0], None]
        fm.model.cue_gain[1] = 3.0
        plain[1] = fm.forward(jobs, None)[0]
        fm.codes = {}
        kept = [fm.forward(jobs, None)[0]]
        fm.model.cue_gain[1] = 1.0
        kept.insert(0, fm.forward(jobs, None)[0])
    assert encoded == [2, 2, 2] and len(fm.codes) == 2       # the last pass encoded nothing
    assert all(np.array_equal(a, b) for a, b in zip(plain, kept)) and not np.array_equal(*plain)
    out = tmp_path / "swap.png"
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", model, "-o", out, "--quiet")
    assert r.returncode == 0 and out.is_file(), r.stderr
    r = run_cli("evaluate", "--model", model, "--crops-only", "--max-faces", 8, "--json", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    figures = json.loads((tmp_path / "e.json").read_text())
    assert figures["preset"] == "mouth" and figures["faces_a"] > 0 and "id_rate_a2b" in figures
    assert not any(k.startswith("frame_") for k in figures)      # --crops-only: no whole frames
    state_file = model / "state.json"
    state_file.write_text(json.dumps(dict(json.loads(state_file.read_text()), cue_shift="wide")))
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", model, "-o", tmp_path / "2.png")
    assert r.returncode == 1 and "cue_shift" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _recorded(figures: dict) -> dict:
    """The identity verdict calibration recorded with a setting's figures."""
    return {k: figures[k] for k in ("id_rate", "id_seen", "id_pass")}


def _verdicts(rates, asked=None, chips=64):
    """A verdict per setting from its share of chips recognised (recording what was asked)."""
    from facepair.evaluate.calibrate import ID_RATE

    def verdict(s, full):
        if asked is not None:
            asked.append(s)
        return {"id_rate": rates[s], "id_seen": chips, "id_pass": rates[s] >= ID_RATE}
    return verdict


def test_cue_calibration_passes_over_settings_that_lose_the_identity():
    """The kept setting is the best-following one whose swaps stay the target (identity asked in
    order of mouth correlation, only as far as needed); where none does, the closest."""
    from facepair.evaluate.calibrate import ID_RATE, choose
    corr = [0.70, 0.90, 0.85, 0.80]
    asked = []
    measured = [{"mouth_corr": c} for c in corr]
    assert choose(measured, _verdicts([1.00, 0.80, 0.97, 0.99], asked)) == 2 and asked == [1, 2]
    assert measured[1]["id_rate"] == 0.80 and "id_rate" not in measured[3]     # 0.90 loses Reagan
    assert choose([{"mouth_corr": c} for c in corr], _verdicts([ID_RATE] * 4)) == 1
    assert choose([{"mouth_corr": c} for c in corr], _verdicts([0.5, 0.6, 0.9, 0.7])) == 2
    lids = [{"mouth_corr": 0.9, "eyelid_corr": 0.2}, {"mouth_corr": 0.1, "eyelid_corr": 0.6}]
    assert choose(lids, _verdicts([1.0, 1.0]), key="eyelid_corr") == 1          # the lids: by the eyelids
    assert choose([{"mouth_corr": c} for c in corr], _verdicts([0.8, 0.8, 0.6, 0.8])) == 1
    # (none stays the target: of the closest, tied, the best-following)
    # settings measured on every frame are asked before those measured on the identity frames only
    measured = [{"mouth_corr": 0.95, "frames": 64}, {"mouth_corr": 0.80, "frames": 256}]
    asked = []
    assert choose(measured, _verdicts([1.0, 1.0], asked)) == 1 and asked == [1]


def test_calibration_identity_verdicts_and_how_close_a_failing_setting_comes():
    """A setting's chips are embedded once, in one batch; it keeps the target when ID_RATE of
    them are recognised (61 of 64), and its rate is over every chip; "prefix" (choose()'s
    fallback) reads them in frame order up to where that order makes the verdict sure."""
    from facepair.evaluate.calibrate import ID_RATE, _Identity

    class Counting:                     # an embedder whose "embedding" is the chip itself
        batches = chips = 0

        def many(self, chips):
            Counting.batches, Counting.chips = Counting.batches + 1, Counting.chips + len(chips)
            return np.asarray(chips, np.float32)
    near, far = np.full(128, 0.01, np.float32), np.full(128, 0.99, np.float32)   # target / source
    ident = _Identity(Counting(), {"b": np.zeros(128, np.float32), "a": np.ones(128, np.float32)}, "b", "a")
    for misses, passes in ((0, True), (3, True), (4, False), (30, False)):
        chips = [far] * misses + [near] * (64 - misses)
        v = ident.verdict(("m", misses), chips)
        assert v["id_pass"] == passes == ((64 - misses) / 64 >= ID_RATE)
        assert v["id_seen"] == 64 and v["id_rate"] == (64 - misses) / 64
        assert ident.verdict(("m", misses), chips, full=True) == v
    assert (Counting.batches, Counting.chips) == (4, 4 * 64)        # once per setting
    # in frame order: passes stop being counted once 61 passed or 4 failed
    close = ident.verdict("late", [near] * 56 + [far] * 8, full="prefix")
    assert (close["id_seen"], close["id_rate"], close["id_pass"]) == (60, 56 / 60, False)
    early = ident.verdict("early", [far] * 4 + [near] * 60, full="prefix")
    assert (early["id_seen"], early["id_rate"]) == (4, 0.0)
    assert ident.verdict("all", [near] * 64, full="prefix")["id_seen"] == 61


def test_calibration_frames_grow_with_the_training():
    """Calibration measures on a number of frames that follows the training's length (so it
    takes a share of it): 32 for a short run, 128 after 10 minutes, at most 256."""
    from facepair.evaluate.calibrate import faces_for
    assert faces_for(0) == faces_for(5) == 32
    assert faces_for(600) == 128 and faces_for(1200) == faces_for(7200) == 256
    assert all(faces_for(s) <= faces_for(s + 60) for s in range(0, 1500, 60))


def test_lids_gain_follows_the_eyelids_without_costing_the_mouth_or_the_identity():
    """The lids' gain: the best-following eyelids among the gains that keep the mouth r within
    LID_MOUTH_SLACK of gain 1's (the mouth's kept setting) and whose swaps stay the target."""
    from facepair.evaluate.calibrate import LID_MOUTH_SLACK, choose_lids
    mouth = [0.87, 0.87, 0.86, 0.87 - LID_MOUTH_SLACK - 0.01, 0.80]   # gains 1, 2, 4, 8, 16
    eyelid = [0.40, 0.47, 0.62, 0.80, 0.86]
    ids = [1.0, 1.0, 0.99, 0.99, 0.99]
    asked = []
    id_rate = _verdicts(ids, asked)

    def measured():
        return [{"mouth_corr": m, "eyelid_corr": e} for m, e in zip(mouth, eyelid)]
    assert choose_lids(measured(), id_rate) == 2 and asked == [2]     # 8x, 16x cost the mouth
    ids[2] = 0.90                                                     # 4x loses Reagan: 2x
    assert choose_lids(measured(), id_rate) == 1
    ids[2] = 0.99
    coarse = measured()                       # 4x measured on the identity frames only: not a candidate
    for k, f in enumerate(coarse):
        f["frames"] = 64 if k == 2 else 256
    assert choose_lids(coarse, id_rate) == 1
    mouth[1:] = [0.50] * 4                    # every gain past 1 costs the mouth: gain 1 stays
    assert choose_lids(measured(), id_rate) == 0


def test_lids_gain_goes_past_leaders_that_lose_the_identity_before_falling_back_to_1x():
    """Where the lids' leaders on every frame (8x, 16x) lose the target, the gains measured on the
    identity frames only are tried in order of their eyelid r there, as the mouth's settings are:
    the best-following that stays the target and keeps the mouth is kept, not gain 1 unasked. A
    gain that costs the mouth on every frame is passed over; with none left, gain 1 stays."""
    from facepair.evaluate.calibrate import (ID_RATE, LID_GAINS, LID_MOUTH_SLACK, _Direction,
                                             _lids_past_the_leaders, select)

    class Run:                                # the swaps of one direction, as _Direction gives them
        every, coarse = list(range(256)), list(range(0, 256, 4))

        def __init__(self, mouth, eyelid):
            self.mouth, self.eyelid, self.swapped = mouth, eyelid, []

        def figures(self, setting, frames=256):
            k = LID_GAINS.index(setting)
            return {"mouth_corr": self.mouth[k], "eyelid_corr": self.eyelid[k], "frames": frames}

        def run(self, settings, apply, frames):
            self.swapped += [(s, len(frames)) for s in settings]

    ids = [1.0, 1.0, 0.97, 0.90, 0.85, 0.99]             # gains 1, 2, 4, 8, 16, 32
    run = Run(mouth=[0.85, 0.86, 0.85, 0.85, 0.84, 0.60], eyelid=[0.60, 0.59, 0.68, 0.74, 0.77, 0.70])
    measured = [run.figures(g, 256 if g in (1, 8, 16) else 64) for g in LID_GAINS]
    asked = []
    floor = 0.85 - LID_MOUTH_SLACK
    kept = _lids_past_the_leaders(run, measured, lambda *a: None, _verdicts(ids, asked), floor)
    assert LID_GAINS[kept] == 4                       # 32x keeps Reagan but not the mouth: 4x
    assert asked == [5, 2, 1] and run.swapped == [(32.0, 256), (4.0, 256), (2.0, 256)]
    ids[1] = ids[2] = 0.5                             # only 32x stays Reagan, and it costs the mouth
    run.swapped, measured = [], [run.figures(g, 256 if g in (1, 8, 16) else 64) for g in LID_GAINS]
    assert _lids_past_the_leaders(run, measured, lambda *a: None, _verdicts(ids), floor) == 0

    class Direction(Run):                     # select() itself: the mouth's setting, then the lids
        coarse_then_fine = _Direction.coarse_then_fine

        def __init__(self, *figures):
            super().__init__(*figures)
            self.frames = {}

        def figures(self, setting, only=None):
            lids = isinstance(setting, float)
            return {"mouth_corr": self.mouth[LID_GAINS.index(setting)] if lids else 0.85 - 0.01 * setting[1],
                    "eyelid_corr": self.eyelid[LID_GAINS.index(setting)] if lids else 0.60,
                    "frames": self.frames.get(setting, 0)}

        def run(self, settings, apply, frames):
            self.frames.update({s: len(frames) for s in settings})

        def id_chips(self, key):
            return key

    class Identity:
        def verdict(self, key, chips, full=False):
            rate = ids[LID_GAINS.index(key)] if isinstance(key, float) else 1.0
            return {"id_rate": rate, "id_seen": 64, "id_pass": rate >= ID_RATE}
    ids = [1.0, 1.0, 0.97, 0.90, 0.85, 0.99]
    best, _, lids = select(Direction([0.85, 0.86, 0.85, 0.85, 0.84, 0.60], [0.60, 0.59, 0.68, 0.74, 0.77, 0.70]),
                           Identity(), lids=True)
    assert best == {"shift": 0.0, "gain": 1.0, "lid_gain": 4.0}, best
    assert [f["frames"] for f in lids] == [256, 256, 256, 256, 256, 256]


def test_landmark_cue_training_survives_missing_footage_for_calibration(extracted, tmp_path):
    """Calibration swaps training frames from the face set's source footage; without it, training
    still ends well, its weights saved, with a one-line warning and the default centring."""
    import shutil
    faces = tmp_path / "reagan"
    shutil.copytree(extracted["reagan"][0], faces)
    index = json.loads((faces / "faceset.json").read_text())
    for e in index["faces"]:
        e["source"] = str(tmp_path / "moved.mp4")
    (faces / "faceset.json").write_text(json.dumps(index))
    model = tmp_path / "m"
    r = run_cli("train", "--a", extracted["obama1"][0], "--b", faces, "--model", model, "--preset",
                "mouth", "--steps", 2, "--batch-size", 4, "--calibrate-faces", 4, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "not calibrated" in r.stderr and "moved.mp4" in r.stderr and "Traceback" not in r.stderr
    state = json.loads((model / "state.json").read_text())
    assert state["step"] == 2 and "cue_shift" not in state and "cue_gain" not in state


def test_seq2seq_temporal_learns_resumes_and_swaps_a_video(extracted, tmp_path):
    """The transformer preset with its temporal option, through the real commands: its loss
    falls in a short run on clips of consecutive faces, a resume carries on from the saved step,
    and swap writes a labelled video through the rolling window (test_ui.py trains, previews,
    swaps and evaluates the per-frame `seq2seq` through the web app)."""
    import csv

    import numpy as np

    from facepair.media.video import iter_video
    from facepair.swap.options import SwapOptions
    from facepair.swap.pipeline import SwapSummary, Swapper
    model = tmp_path / "s2s"
    common = ["--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model", model,
              "--preset", "seq2seq-temporal", "--batch-size", 5, "--lr", "1e-3", "--save-every", 30,
              "--calibrate-faces", 0, "--quiet"]
    r = run_cli("train", *common, "--steps", 30)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(model / "log.csv")))
    loss = [float(x["loss_a"]) + float(x["loss_b"]) for x in rows]
    assert sum(loss[-5:]) < 0.8 * sum(loss[:5]), loss            # it learns
    r = run_cli("train", *common, "--steps", 34)
    assert r.returncode == 0, r.stderr
    state = json.loads((model / "state.json").read_text())
    assert state["step"] == 34 and state["model_config"]["context"] == 4
    assert state["clip_stride"] == {"a": EVERY, "b": EVERY}   # the face sets: every 2nd frame
    assert state["train_config"]["warmup_steps"] == PRESETS["seq2seq-temporal"].train.warmup_steps
    rows = list(csv.DictReader(open(model / "log.csv")))
    assert [int(x["step"]) for x in rows] == list(range(1, 35))   # resumed at 31, not from 0
    out = tmp_path / "s2s.mp4"
    r = run_cli("swap", OBAMA_CLIP2, "--model", model, "-o", out, "--duration", 1, "--quiet")
    assert r.returncode == 0 and out.is_file(), r.stderr
    r = run_cli("verify", out)
    assert r.returncode == 0 and "SYNTHETIC" in r.stdout
    # the window: 4 video frames make one track whose inputs are those 4 frames' (the decoder
    # of frame 3 read frames 2, 1, 0, 0), and the swap saw them; a still keeps no window
    frames = [f for _, f in zip(range(4), (f for _, f in iter_video(OBAMA_CLIP2)))]
    swapper = Swapper(model, SwapOptions(progress=False))
    video = [f.copy() for f in frames]
    swapper.process(video, 0, True, SwapSummary())
    (track,) = swapper.window.tracks
    assert len(track["inputs"]) == 4 and track["frame"] == 3
    assert all(np.abs(v.astype(int) - f).max() > 0 for v, f in zip(video, frames))
    swapper.process([frames[0].copy()], 0, False, SwapSummary())
    assert swapper.window.tracks == [track]


def test_calibration_coarse_then_fine_chooses_as_measuring_everything():
    """The calibration's shortcuts (every setting on the identity frames first, only the leaders
    on every frame, identity asked only of the settings the rule reaches) choose what swapping every
    setting on every frame and reading every identity chooses (the previous version's rule),
    for a fraction of the swaps: on synthetic measurements whose correlations carry the noise
    of their frame counts, as real ones do."""
    import itertools

    from facepair.evaluate import calibrate as C

    class Chips:                           # "embeddings": the chip is its own embedding
        def many(self, chips):
            return np.asarray(chips, np.float32)

    near, far = np.full(128, 0.01, np.float32), np.full(128, 0.99, np.float32)

    class Measured(C._Direction):          # the real passes over invented swaps
        def __init__(self, truth, ids, seed, n=64):
            self.truth, self.ids, self.seed = truth, ids, seed
            self.every = list(range(n))
            self.coarse = self.every[::C.ID_EVERY]
            self.marks, self.chips, self.swaps = {}, {}, 0

        def run(self, settings, apply, frames):
            for s in settings:
                have = self.marks.setdefault(s, {})
                for i in frames:
                    if i not in have:
                        have[i], self.swaps = True, self.swaps + 1

        def figures(self, setting, only=None):
            n = len(self.marks[setting])
            rng = np.random.default_rng(abs(hash((self.seed, setting, n))) % 2 ** 32)
            noise = rng.normal(0, 0.06 * (16 / n) ** 0.5, 2)      # r's spread over n frames
            mouth, eyelid = self.truth[setting]
            return {"mouth_corr": mouth + noise[0], "eyelid_corr": eyelid + noise[1], "frames": n}

        def id_chips(self, setting):
            k = round(self.ids[setting] * len(self.coarse))
            return [far if (j * 7) % len(self.coarse) >= k else near for j in range(len(self.coarse))]

    settings = list(itertools.product(C.SHIFTS, C.GAINS))
    same, swaps, quality = 0, [], {"fast": [], "ref": []}
    for seed in range(40):
        rng = np.random.default_rng(seed)
        truth = {s: (rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.5)) for s in settings}
        truth.update({g: (rng.uniform(0.7, 0.9), 0.4 + 0.05 * np.log2(g)) for g in C.LID_GAINS[1:]})
        ids = {k: rng.choice([0.85, 0.95, 1.0]) for k in truth}
        ident = C._Identity(Chips(), {"b": np.zeros(128, np.float32), "a": np.ones(128, np.float32)}, "b", "a")
        fast = Measured(truth, ids, seed)
        chosen = C.select(fast, ident, lids=True)[0]
        with pytest.MonkeyPatch.context() as mp:                # everything, as before
            for name in ("REFINE", "REFINE_LIDS", "FALLBACK"):
                mp.setattr(C, name, 99)
            everything = Measured(truth, ids, seed)
            reference = C.select(everything, C._Identity(Chips(), {"b": np.zeros(128, np.float32),
                                                                   "a": np.ones(128, np.float32)}, "b", "a"),
                                 lids=True)[0]
        same += chosen == reference
        for got, key in ((chosen, "fast"), (reference, "ref")):
            m = (got["shift"], got["gain"])
            quality[key].append((truth[m][0], ids[m] >= C.ID_RATE,
                                 truth[got["lid_gain"]][1] if got["lid_gain"] != 1 else truth[m][1]))
        swaps.append(fast.swaps / everything.swaps)
    fast, ref = (np.array(quality[k], float).mean(0) for k in ("fast", "ref"))
    print(f"same choice {same}/40, swaps {np.mean(swaps):.0%} of measuring everything; true mouth r, "
          f"share staying the target, lids r: {fast.round(3)} against {ref.round(3)}")
    # where the choices differ they differ by the noise of the figures: by the figures without
    # noise the shortcuts choose as well (29 of 40 the same, 0.793 against 0.788, lids 0.482
    # against 0.497, every choice staying the target, 53 % of the swaps when written)
    assert same >= 25 and np.mean(swaps) < 0.6
    assert fast[0] >= ref[0] - 0.01 and fast[1] >= ref[1] and fast[2] >= ref[2] - 0.03
