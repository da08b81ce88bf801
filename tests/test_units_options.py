"""The option parsers on their own: the bounds every number flag is checked against (cli._number),
the defaults the README states (faces/options.py, swap/options.py, training/options.py) and the
line `train` ends with. Fast, and the mutation check's judges for those (tools/mutate.py)."""
import argparse

import pytest

from facepair.cli import _number, build_parser
from facepair.faces import options as fo
from facepair.swap.options import BLENDS, COLORS, MASKS, SwapOptions
from facepair.training.options import TrainOptions, TrainResult


def test_number_flags_take_numbers_within_their_bounds():
    assert _number()("7") == 7 and isinstance(_number()("7"), int)
    assert _number(float)("0.5") == 0.5 and _number(float)("3") == 3.0
    assert _number(int, 1)("1") == 1 and _number(int, 0, 51)("51") == 51 and _number(int, 0, 51)("0") == 0
    assert _number(float, above=0)("0.001") == 0.001
    cases = [(_number(), "x", "not an integer: x"), (_number(float), "x", "not a number: x"),
             (_number(int), "1.5", "not an integer: 1.5"),
             (_number(int, 1), "0", "must be at least 1 (got 0)"),
             (_number(int, 0, 51), "99", "must be from 0 to 51 (got 99)"),
             (_number(int, 0, 51), "-1", "must be from 0 to 51 (got -1)"),
             (_number(float, above=0), "0", "must be more than 0 (got 0)"),
             (_number(float, above=0), "-2", "must be more than 0 (got -2)"),
             (_number(float), "nan", "not a finite number: nan"),
             (_number(float, above=0), "inf", "not a finite number: inf"),
             (_number(float, 0, 10), "-inf", "not a finite number: -inf")]
    for parse, text, message in cases:
        with pytest.raises(argparse.ArgumentTypeError) as e:
            parse(text)
        assert str(e.value) == message
    assert _number(int, most=3)("-5") == -5                         # no lower bound given


def test_a_bad_number_is_one_line_with_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["swap", "in.jpg", "--model", "m", "-o", "o.jpg", "--crf", "52"])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("facepair: error: argument --crf: must be from 0 to 51 (got 52) "
                                       "(see facepair swap --help)\n")


def test_defaults_are_the_readmes():
    """README: extract --detector hog, --detect-size 480, --size 128, --padding 0.15, --threshold
    0.6, --min-size 40, --min-blur 10; swap --direction a2b, --detect-every 5, --mask hull,
    --color lab, landmark smoothing on; train --keep 3, --keep-previews 20, --calibrate-faces by the training's length."""
    assert fo.DETECTORS == ("haar", "hog", "cnn") and fo.DEFAULT_DETECT_SIZE == 480
    assert (fo.DEFAULT_SIZE, fo.DEFAULT_PADDING, fo.DEFAULT_THRESHOLD) == (128, 0.15, 0.6)
    assert (fo.DEFAULT_MIN_SIZE, fo.DEFAULT_MIN_BLUR, fo.BLUR_SIDE) == (40, 10, 64)
    d = SwapOptions()
    assert (d.direction, d.detector, d.detect_size, d.detect_every) == ("a2b", "hog", 480, 5)
    assert (d.mask, d.color, d.blend, d.smooth, d.identity, d.threshold) == ("hull", "lab", "feather", True, None, 0.6)
    assert (d.batch, d.duration) == (8, None)
    assert MASKS == ("hull", "box") and COLORS == ("none", "mean", "lab", "hist", "skin") and BLENDS == ("feather", "seamless")
    t = TrainOptions(a=[], b=[], model_dir="m")
    assert (t.keep, t.keep_previews, t.calibrate_faces, t.preset, t.steps, t.minutes, t.seed) == (3, 20, None, None, None, None, None)
    args = build_parser().parse_args(["swap", "in.jpg", "--model", "m", "-o", "o.jpg"])
    assert (args.direction, args.mask, args.color, args.erode, args.feather, args.no_smooth) == ("a2b", "hull", "lab", 1.0, 4.0, False)
    args = build_parser().parse_args(["extract", "x", "-o", "y"])
    assert (args.detector, args.size, args.padding, args.detect_size, args.min_blur) == ("hog", 128, 0.15, 480, 10.0)


def test_train_result_line():
    r = TrainResult(model_dir="work/m", preset="hd", start_step=2, step=6, seconds=12.4,
                    images_per_s=7.25, losses={"loss_a": 0.05, "loss_b": 0.125, "val_loss_a": None})
    assert str(r) == ("trained hd: steps 2 -> 6 in 12 s (7.2 images/s)   loss_a 0.0500   loss_b 0.1250\n"
                      "model: work/m")
    r.cue = {"a2b": {"shift": 0.5, "gain": 2.0, "lid_gain": 16.0}, "b2a": {"shift": 0, "gain": 1.5}}
    assert str(r) == ("trained hd: steps 2 -> 6 in 12 s (7.2 images/s)   loss_a 0.0500   loss_b 0.1250\n"
                      "landmark cue in swaps (centre moved toward the target's mean face, gain): "
                      "a2b 0.5, 2x, lids 16x, b2a 0, 1.5x\nmodel: work/m")
    assert TrainResult("m", "seed", 0, 1, 1.0, 1.0).losses == {} and TrainResult("m", "seed", 0, 1, 1.0, 1.0).cue is None


def test_swap_flags_reach_swap_options_each_in_its_own_field(monkeypatch, capsys):
    """Every flag of `facepair swap` lands in its own SwapOptions field (the options' tests swap
    in-process through the API, so this is where the command line's mapping is judged); each
    value differs from the default, so a flag read into another field shows."""
    import facepair.api
    from facepair.cli import main
    seen = []
    monkeypatch.setattr(facepair.api, "swap", lambda i, m, o, opts: seen.append((i, m, o, opts)) or "swapped")
    assert main(["swap", "in.mp4", "--model", "m", "-o", "out.mp4", "--direction", "b2a",
                 "--detector", "cnn", "--detect-size", "320", "--detect-every", "3", "--mask", "box",
                 "--erode", "6", "--feather", "12", "--color", "hist", "--blend", "seamless",
                 "--occlusion", "none", "--no-smooth", "--engine", "onnx", "--crf", "30",
                 "--duration", "2.5", "--identity", "me.jpg", "you.jpg", "--threshold", "0.45",
                 "--quiet"]) == 0
    (inp, model, out, o), = seen
    assert (inp, model, out) == ("in.mp4", "m", "out.mp4") and capsys.readouterr().out == "swapped\n"
    got = (o.direction, o.detector, o.detect_size, o.detect_every, o.mask, o.erode, o.feather,
           o.color, o.blend, o.occlusion, o.smooth, o.engine, o.crf, o.duration, o.progress,
           o.identity, o.threshold)
    assert got == ("b2a", "cnn", 320, 3, "box", 6.0, 12.0, "hist", "seamless", "none", False,
                   "onnx", 30, 2.5, False, ["me.jpg", "you.jpg"], 0.45)
    defaults = SwapOptions()
    assert all(g != getattr(defaults, f) for g, f in zip(got, (
        "direction", "detector", "detect_size", "detect_every", "mask", "erode", "feather", "color",
        "blend", "occlusion", "smooth", "engine", "crf", "duration", "progress", "identity", "threshold")))


def test_train_flags_reach_train_options_each_in_its_own_field(monkeypatch):
    """As for swap: every flag of `facepair train` in its own TrainOptions field, each value
    other than the default (the augmentations: on, off, or the preset's as None)."""
    import facepair.api
    from facepair.cli import main
    seen = []
    monkeypatch.setattr(facepair.api, "train", lambda opts: seen.append(opts))
    assert main(["train", "--a", "fa", "fa2", "--b", "fb", "--model", "m", "--preset", "seed",
                 "--steps", "7", "--batch-size", "4", "--lr", "0.001", "--save-every", "5",
                 "--keep", "2", "--keep-previews", "4", "--preview-every", "9", "--device", "cpu",
                 "--precision", "fp32", "--compile", "--workers", "2", "--seed", "11", "--flip",
                 "--no-affine", "--color", "--warp", "--calibrate-faces", "64", "--quiet"]) == 0
    o, = seen
    got = (o.a, o.b, o.model_dir, o.preset, o.steps, o.batch_size, o.lr, o.save_every, o.keep,
           o.keep_previews, o.preview_every, o.device, o.precision, o.compile, o.workers, o.seed,
           o.flip, o.affine, o.color, o.warp, o.calibrate_faces, o.progress)
    assert got == (["fa", "fa2"], ["fb"], "m", "seed", 7, 4, 0.001, 5, 2, 4, 9, "cpu", "fp32", True,
                   2, 11, True, False, True, True, 64, False)
    defaults = TrainOptions(a=[], b=[], model_dir="")
    names = ("preset", "steps", "batch_size", "lr", "save_every", "keep", "keep_previews",
             "preview_every", "device", "precision", "compile", "workers", "seed", "flip", "affine",
             "color", "warp", "calibrate_faces", "progress")
    assert all(getattr(o, f) != getattr(defaults, f) for f in names), \
        [f for f in names if getattr(o, f) == getattr(defaults, f)]
    seen.clear()
    assert main(["train", "--a", "fa", "--b", "fb", "--model", "m", "--minutes", "2.5"]) == 0
    assert seen[0].minutes == 2.5 and (seen[0].flip, seen[0].warp) == (None, None)


def test_a_long_calibration_on_a_cpu_without_bf16_says_how_long(monkeypatch, capsys):
    """Where the cue's calibration runs in fp32 on the CPU on 128 frames or more, `train` says
    beforehand that it takes minutes and what is shorter; elsewhere it does not."""
    import facepair.api as api
    import facepair.evaluate.calibrate as cal
    import facepair.model.store as store
    import facepair.runtime as rt
    monkeypatch.setattr(store, "read_state", lambda folder: {"train_seconds": 1200.0})
    monkeypatch.setattr(cal, "calibrate", lambda folder, faces, device: {"faces": faces})
    monkeypatch.setattr(rt, "cpu_has_bf16", lambda: False)
    assert api.calibrate("m", None, "cpu") == {"faces": 256}
    said = capsys.readouterr().out
    assert "on 256 training frames per side" in said and "about 3 minutes" in said and "--calibrate-faces 64" in said
    api.calibrate("m", 64, "cpu")
    assert "--calibrate-faces 64" not in capsys.readouterr().out
    monkeypatch.setattr(rt, "cpu_has_bf16", lambda: True)
    api.calibrate("m", None, "cpu")
    assert "--calibrate-faces 64" not in capsys.readouterr().out


def test_every_preset_says_when_to_pick_it_in_words():
    """What the web app's Train screen shows under the preset: a sentence for every preset (a
    new preset left without one would show nothing), the default first."""
    from facepair import api
    got = api.presets()
    assert got[0]["name"] == "hd" and got[0]["default"] and got[0]["use"].startswith("The default")
    assert all(len(p["use"].split()) >= 8 and p["description"] for p in got), [p["name"] for p in got if not p["use"]]
