"""`facepair export` and `swap --engine onnx`: one direction of a trained model as an ONNX graph,
run by ONNX Runtime; the same faces through both engines give the same swap."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import OBAMA_CLIP2, OBAMA_PHOTOS, run_cli

import onnxruntime  # noqa: F401,E402 - a declared test dependency: a broken install fails, not skips


@pytest.fixture(scope="module")
def cue_model(extracted, tmp_path_factory):
    """A briefly trained model with a landmark cue (the `mouth` preset, 64 px), its cue setting
    for a2b recorded as calibration would record it (gain 2: not the untouched 1)."""
    model = tmp_path_factory.mktemp("export") / "m"
    r = run_cli("train", "--a", extracted["obama1"][0], "--b", extracted["reagan"][0], "--model", model,
                "--preset", "mouth", "--steps", 4, "--batch-size", 8, "--calibrate-faces", 0, "--quiet")
    assert r.returncode == 0, r.stderr
    state = json.loads((model / "state.json").read_text())
    state.update(cue_shift={"a2b": 0.5, "b2a": 0.0}, cue_gain={"a2b": 2.0, "b2a": 1.0})
    (model / "state.json").write_text(json.dumps(state))
    return model


def _faces(model_dir, n=6):
    """n real aligned faces of A from the swap pipeline itself, with their landmarks."""
    from facepair.media.video import iter_video
    from facepair.swap.options import SwapOptions
    from facepair.swap.pipeline import Swapper, SwapSummary
    swapper = Swapper(model_dir, SwapOptions(engine="torch", progress=False))
    frames = [f for _, f in iter_video(OBAMA_CLIP2, every=15)][:n]
    jobs = swapper.find(frames, 0, SwapSummary())
    return swapper, np.stack([j[2] for j in jobs]), np.stack([j[4] for j in jobs])


def test_export_writes_a_graph_that_swaps_like_the_model(cue_model, tmp_path):
    from facepair.model.export import OnnxSwap, read_metadata
    out = tmp_path / "m.onnx"
    r = run_cli("export", cue_model, "-o", out)
    assert r.returncode == 0 and r.stdout.startswith(f"{out}: a2b of a mouth model at step 4"), r.stderr
    data = out.read_bytes()
    meta = read_metadata(data)
    assert (meta["format"], meta["direction"], meta["size"], meta["inputs"]) == ("facepair-onnx", "a2b", 64,
                                                                                 ["faces", "marks"])
    assert meta["cue"]["shift"] == 0.5 and meta["cue"]["gain"] == 2.0 and meta["padding"] > 0
    assert len(meta["template"]["mean_face"]) == 68 - meta["template"]["landmarks_from"]
    swapper, crops, marks = _faces(cue_model)
    faces = crops.transpose(0, 3, 1, 2).astype(np.float32) / 255
    got = OnnxSwap(data)(faces, marks)
    from facepair.model.store import load_model
    model, _ = load_model(cue_model, torch.device("cpu"))      # float32 as stored (a swap's are cast)
    with torch.no_grad():
        want = model.swap(torch.from_numpy(faces), "b", marks, "a").numpy()
        ungained = model.cue_gain.clone()
        model.cue_gain[1] = 1.0                 # the graph holds the recorded setting, not gain 1
        other = model.swap(torch.from_numpy(faces), "b", marks, "a").numpy()
        model.cue_gain.copy_(ungained)
    diff = float(np.abs(got - want).max())
    print(f"ONNX Runtime vs torch fp32 on {len(faces)} faces: max abs difference {diff:.2e}")
    assert got.shape == want.shape == (len(faces), 3, 64, 64) and diff < 1e-4
    assert np.abs(got - other).max() > 100 * max(diff, 1e-7)      # beyond rounding
    # the other direction and a rebuild are graphs of their own
    r = run_cli("export", cue_model, "-o", tmp_path / "b.onnx", "--direction", "b2a")
    assert r.returncode == 0 and read_metadata((tmp_path / "b.onnx").read_bytes())["target"] == "a"


def test_swap_engines_give_the_same_picture(cue_model, tmp_path):
    """The same photo swapped by torch (bf16 where the CPU has it) and by ONNX Runtime (fp32):
    equal to within the rounding of bf16. --color none: the colour transfer divides by the
    face's spread, which would magnify a rounding step on a barely trained face."""
    photo = OBAMA_PHOTOS / "obama.jpg"
    from facepair.media.image import read_image
    outs = {}
    for engine in ("torch", "onnx"):
        r = run_cli("swap", photo, "--model", cue_model, "-o", tmp_path / f"{engine}.png", "--engine", engine,
                    "--color", "none", "--quiet")
        assert r.returncode == 0 and "faces swapped: 1" in r.stdout, r.stderr
        outs[engine] = read_image(tmp_path / f"{engine}.png").astype(int)
    d = np.abs(outs["torch"] - outs["onnx"])
    print(f"swap --engine torch vs onnx: max {d.max()} grey levels, mean {d.mean():.4f}")
    assert d.max() <= 3 and d.mean() < 0.05
    assert np.abs(outs["onnx"] - read_image(photo).astype(int)).max() > 50     # it swapped


def test_export_refuses_what_it_cannot_write_in_one_line(cue_model, tmp_path):
    from facepair.model.autoencoder import FacePair
    from facepair.model.export import exportable
    from facepair.model.presets import get_preset
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "file").write_text("x")
    for args, says in ((("-o", tmp_path / "m.txt"), "must be a .onnx file"),
                       (("-o", tmp_path / "x.onnx", "--direction", "ab"), "invalid choice"),
                       (("-o", tmp_path / "x.onnx"), "not a facepair model folder"),
                       # the output's own name, not a temporary file's
                       (("-o", tmp_path / "folder.onnx"), "folder.onnx: it is a folder"),
                       (("-o", tmp_path / "file" / "x.onnx"), "file cannot be made")):
        model = tmp_path if says.startswith("not a") else cue_model
        r = run_cli("export", model, *args)
        assert r.returncode == (2 if says == "invalid choice" else 1), r.stderr
        assert says in r.stderr and "Traceback" not in r.stderr and ".tmp" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # a cue never calibrated is baked in as trained: said, as swap says it
    plain = tmp_path / "plain"
    shutil.copytree(cue_model, plain)
    state = json.loads((plain / "state.json").read_text())
    for k in [k for k in state if k.startswith("cue_")]:
        del state[k]
    (plain / "state.json").write_text(json.dumps(state))
    r = run_cli("export", plain, "-o", tmp_path / "plain.onnx")
    assert r.returncode == 0 and "never calibrated: the exported file feeds it" in r.stderr, r.stderr
    assert "temporal" in exportable(FacePair(get_preset("seq2seq-temporal").model))
    assert exportable(FacePair(get_preset("hd").model)) is None


def test_the_default_layouts_resize_convolutions_export_as_they_compute():
    """hd's decoders upsample by resize-convolutions (folded like the transposed convs were):
    the graph is written only if it gives the model's own answer on another batch size
    (export._check), for both directions."""
    import torch

    from facepair.model.autoencoder import FacePair
    from facepair.model.export import read_metadata, to_onnx
    from facepair.model.presets import get_preset
    torch.manual_seed(0)
    model = FacePair(get_preset("hd").model).eval()
    assert model.cfg.upsample == "nearest" and model.decoder_b.blocks[-1].up is None
    for direction in ("a2b", "b2a"):
        assert read_metadata(to_onnx(model, {"faces": {}}, direction))["size"] == 128
