"""The Python API: one call per stage, in the order a user works, the same calls the command
line makes. This is the one place that knows how stages follow each other (a landmark-cue model's
training ends with measuring how swaps feed the cue). Stages load on first use, so importing the
API costs nothing."""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from .errors import Interrupted


def extract(inputs, output, **options):
    """Faces from images and videos into a face set folder -> ExtractSummary
    (options: see facepair.faces.extract.extract)."""
    from .faces.extract import extract as run
    return run(inputs, output, **options)


def train(opts=None, **fields):
    """Train (or resume) a pair -> TrainResult. Takes a TrainOptions, or its fields as keywords.
    A landmark-cue model is then calibrated on `calibrate_faces` training frames per side (None:
    as many as the training's length calls for)."""
    from .model.store import read_state
    from .training.loop import train as run
    from .training.options import TrainOptions
    opts = opts if isinstance(opts, TrainOptions) else TrainOptions(**fields)
    result = run(opts)
    state = read_state(Path(opts.model_dir))
    cue_model = bool(state["model_config"].get("cue_points"))
    kept = result.step == result.start_step and "cue_shift" in state   # nothing new to measure
    if cue_model and int(os.environ.get("RANK", 0)) == 0 and opts.calibrate_faces != 0 and not kept:
        t = time.monotonic()
        try:
            result.cue = calibrate(opts.model_dir, opts.calibrate_faces, opts.device, opts.progress)
        except KeyboardInterrupt:           # (it said "interrupted" and nothing of what was kept)
            raise Interrupted(f"interrupted while measuring the landmark cue: step {result.step} is "
                              f"saved in {opts.model_dir}, its cue not measured (train it a few "
                              "more --steps to measure it)") from None
        result.cue_seconds = time.monotonic() - t
    return result


def calibrate(model_dir, faces: int | None = None, device: str = "auto", progress: bool = True) -> dict | None:
    """A landmark-cue model's cue setting for swaps, measured on its training frames
    (evaluate/calibrate.py) and recorded in state.json. The trained weights are saved already, so
    a failure here is a warning and leaves the default setting."""
    from .evaluate.calibrate import calibrate as run
    from .evaluate.calibrate import faces_for
    from .model.store import read_state
    seconds = read_state(Path(model_dir)).get("train_seconds", 0.0)
    faces = faces_for(seconds) if faces is None else faces
    if progress:
        from .runtime import cpu_has_bf16, resolve_device
        slow = "" if resolve_device(device).type != "cpu" or cpu_has_bf16() or faces < 128 else \
            " (in fp32 on this CPU: about 3 minutes for 256 frames on 2 cores; --calibrate-faces 64: under 1)"
        print(f"measuring the landmark cue's setting on {faces} training frames per side "
              f"(after {seconds / 60:.1f} minutes of training){slow} ...", flush=True)
    try:
        return run(model_dir, faces, device)
    except Exception as e:  # noqa: BLE001 - a shorter video, an unreadable source: the weights stay
        warnings.warn(f"landmark cue not calibrated (offsets from the source's own mean face, "
                      f"gain 1, kept): {e}")
        return None


def swap(inp, model_dir, output, opts=None, **fields):
    """Swap faces in an image, a folder of images or a video -> SwapSummary. Takes a SwapOptions,
    or its fields as keywords. Every output is labelled as synthetic."""
    from .swap.options import SwapOptions
    from .swap.pipeline import swap as run
    return run(inp, model_dir, output, opts if isinstance(opts, SwapOptions) else SwapOptions(**fields))


def evaluate(model_dir, **options) -> dict:
    """Every figure of a trained pair (options: see facepair.evaluate.score._evaluate)."""
    from .evaluate.score import evaluate as run
    return run(model_dir, **options)


def verify(paths, key_file=None) -> list:
    """Is each file one of ours? -> [Verdict] (watermark: public and installation mark, tag, C2PA
    manifest); a folder: its pictures and videos. The installation mark is looked for with the
    key in `key_file` (another installation's watermark.key), else with this installation's."""
    from .media.files import as_list
    from .provenance.verify import verify as run
    return run(as_list(paths), key_file)


def presets() -> list[dict]:
    """The training presets, default first: [{name, description, use, default}] (`use`: when to
    pick it, in a user's words)."""
    from .model.presets import DEFAULT_PRESET, PRESETS
    return sorted(({"name": p.name, "description": p.description, "use": p.use,
                    "default": p.name == DEFAULT_PRESET}
                   for p in PRESETS.values()), key=lambda p: not p["default"])


def faces(faceset) -> dict:
    """A face set's index (faceset.json: size, faces with file, source, frame, landmarks...)."""
    from .faces.faceset import load_index
    return load_index(Path(faceset))


def remove_faces(faceset, files) -> int:
    """Drop faces (their `file` entries, e.g. "faces/000012.png") from a face set -> count dropped."""
    from .faces.faceset import remove
    return remove(Path(faceset), files)


def model_info(model_dir) -> dict:
    """A trained model's state.json (preset, step, face sets, validation faces, cue setting)."""
    from .model.store import read_state
    return read_state(Path(model_dir))


def still(video, seconds: float, output) -> Path:
    """The frame of a video shown at `seconds`, written as an image (a source frame, unlabelled:
    nothing in it is synthetic) -> the output path."""
    from .errors import FacepairError, UnreadableMedia
    from .media.image import write_image
    from .media.video import frame_at
    try:
        rgb = frame_at(Path(video), seconds)
    except UnreadableMedia as e:
        raise FacepairError(str(e)) from None
    write_image(Path(output), rgb)
    return Path(output)
