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
