"""A model folder on disk: MODEL_DIR/state.json (versioned JSON: the recipe, the face sets, the
step, and which checkpoint holds the weights), the weights in safetensors (never pickles) and,
once it has swapped with --occlusion auto, the occlusion prior of each source side (PRIOR_FILE);
`load_model` rebuilds a trained pair from its folder. Writing checkpoints is training's job
(training/checkpoint.py)."""
from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import load as st_load, save as st_save

from ..errors import FacepairError
from ..faces.faceset import bad_geometry
from ..media.files import atomic_write_bytes, atomic_write_json, read_json
from .autoencoder import FacePair
from .presets import ModelConfig, config_from_dict

STATE = "state.json"
FORMAT, VERSION = "facepair-model", 1
# what a swap's occlusion mask expects this model's rebuilds of the side's faces to miss, worked
# out at the first swap and kept (swap/pipeline.FaceModel._cached_prior)
PRIOR_FILE = "occlusion-prior-{side}.safetensors"


# what state.json's "checkpoint" may name: a folder of the model's own checkpoints/ (training/
# checkpoint.py writes "checkpoints/step-NNNNNNNN[.K]"); an absolute path or "../" would load
# weights from anywhere
CHECKPOINT = re.compile(r"checkpoints/step-\d{8}(?:\.\d+)?")


def read_state(model_dir: Path) -> dict:
    path = Path(model_dir) / STATE
    if not path.exists():
        raise FacepairError(f"not a facepair model folder (no {STATE}): {model_dir}")
    state = read_json(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("step"), int) \
            or not isinstance(state.get("checkpoint"), str) or not isinstance(state.get("version", 0), int):
        raise FacepairError(f"not a facepair model folder: {path} is not a facepair state file")
    if state.get("version", 0) > VERSION:                  # (a newer format may name it otherwise)
        raise FacepairError(f"{path} is format version {state['version']}; upgrade facepair")
    if not CHECKPOINT.fullmatch(state["checkpoint"]):      # never a path out of the folder
        raise FacepairError(f"damaged model folder {model_dir}: bad 'checkpoint' in {STATE}")
    for key, kind in FIELDS.items():     # hand-edited: one line, not an error deep in a resume
        value = state.get(key)
        if key in state and (not isinstance(value, kind) or key in PER_SIDE and not all(
                isinstance(v, list) and all(map(PER_SIDE[key], v)) for v in value.values())):
            raise FacepairError(f"damaged model folder {model_dir}: bad '{key}' in {STATE}")
    if "faces" in state and (bad := bad_geometry(state["faces"])):
        raise FacepairError(f"damaged model folder {model_dir}: {bad} in the 'faces' of its {STATE}")
    return state


# the kinds of a state file's fields, checked when it is read (PER_SIDE: a list per side, each
# item passing the check: a face set's record with its path, a held-out face's path)
FIELDS = {"preset": str, "model_config": dict, "train_config": dict, "seed": int, "precision": str,
          "faces": dict, "facesets": dict, "validation": dict, "reshuffles": int,
          "train_seconds": (int, float), "cue_shift": dict, "cue_gain": dict, "cue_lid_gain": dict,
          "cue_calibration": dict}
PER_SIDE = {"facesets": lambda f: isinstance(f, dict) and isinstance(f.get("path"), str),
            "validation": lambda f: isinstance(f, str)}


def check_output(model_dir, output) -> None:
    """Refuse an output (a report, an export) that would replace a model folder's own files:
    its state.json, log.csv, its weights or anything under checkpoints/ (checked after links)."""
    if output is None:
        return
    m, out = Path(model_dir).resolve(), Path(output).resolve()
    if out.parent == m and (out.name in (STATE, "log.csv") or out.suffix == ".safetensors") \
            or m / "checkpoints" in out.parents:
        raise FacepairError(f"{output} would replace a file of the model {model_dir}: write it elsewhere")


def write_state(model_dir: Path, state: dict) -> None:
    """Replace the state file atomically, stamped with the format and its version."""
    atomic_write_json(Path(model_dir) / STATE, dict(state, format=FORMAT, version=VERSION))


def update_state(model_dir: Path, **fields) -> None:
    """Add or replace fields of a model folder's state file (atomically)."""
    write_state(model_dir, dict(read_state(model_dir), **fields))


def save_tensors(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    atomic_write_bytes(path, st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                                     metadata=metadata))


def read_tensors(path: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file; a missing or damaged one is a user error."""
    from safetensors import safe_open
    if not path.is_file():          # a link to a device (/dev/zero) would be read forever
        raise FacepairError(f"checkpoint file missing: {path}")
    try:
        data = path.read_bytes()
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        return st_load(data), meta
    except Exception as e:   # safetensors raises several types for damaged files
        raise FacepairError(f"corrupt checkpoint file {path}: {e}") from None


def build(cfg: ModelConfig, model_dir) -> FacePair:
    """The pair a model folder's config describes; a config no network can be built from (a
    hand-edited state.json) is one line."""
    try:
        return FacePair(cfg)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise FacepairError(f"damaged model folder {model_dir}: bad model config ({e})") from None


def load_weights(model_dir: Path, model: torch.nn.Module, state: dict | None = None,
                 name: str = "model") -> dict:
    state = state or read_state(model_dir)
    path = Path(model_dir) / state["checkpoint"] / f"{name}.safetensors"
    weights, _ = read_tensors(path)
    if not all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point()):
        raise FacepairError(f"damaged checkpoint file {path}: its weights hold NaN or infinity")
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise FacepairError(f"weights in {model_dir} do not fit the model: {first}") from None
    return state


def load_model(model_dir, device: torch.device) -> tuple[FacePair, dict]:
    """The trained pair, rebuilt from its folder's recorded config, in eval mode, with the
    landmark cue's swap setting (cue_shift, cue_gain, cue_lid_gain) where it was measured after
    training."""
    model_dir = Path(model_dir)
    if model_dir.is_file() and model_dir.suffix.lower() == ".onnx":   # (the README invites it)
        raise FacepairError(f"{model_dir} is an exported graph: --model takes the model folder it "
                            "was exported from (--engine onnx runs that through ONNX Runtime)")
    if not model_dir.is_dir():
        raise FacepairError(f"model folder not found: {model_dir}")
    state = read_state(model_dir)
    try:
        cfg = config_from_dict(ModelConfig, state["model_config"])
    except (FacepairError, KeyError) as e:
        raise FacepairError(f"damaged model folder {model_dir}: bad model config ({e})") from None
    model = build(cfg, model_dir)
    load_weights(model_dir, model, state)
    if cfg.cue_points:
        for key, buf, default in (("cue_shift", model.cue_shift, 0.0), ("cue_gain", model.cue_gain, 1.0),
                                  ("cue_lid_gain", model.cue_lid_gain, 1.0)):
            try:        # per target side: A is the target of b2a
                v = state.get(key, {})
                buf.copy_(torch.tensor([float(v.get("b2a", default)), float(v.get("a2b", default))]))
            except (AttributeError, TypeError, ValueError):
                raise FacepairError(f"corrupt model folder {model_dir}: bad {key} in state.json") from None
    return model.to(device, memory_format=torch.channels_last).eval(), state


def uncalibrated(model_dir, state: dict, feeds: str = "swaps feed") -> str | None:
    """The warning for a landmark-cue model whose cue setting was never measured (None: measured,
    or no cue), for a swap and for an export, which bakes the setting in."""
    if not state.get("model_config", {}).get("cue_points") or "cue_shift" in state:
        return None
    return (f"the landmark cue of {model_dir} was never calibrated: {feeds} it as offsets from "
            "the source's own mean face, which follows the mouth less well (train it a few more "
            "--steps, with --calibrate-faces above 0, to measure it)")
