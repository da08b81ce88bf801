"""A model folder on disk: MODEL_DIR/state.json (versioned JSON: the recipe, the face sets, the
step, and which checkpoint holds the weights), the weights in safetensors (never pickles) and,
once it has swapped with --occlusion auto, the occlusion prior of each source side (PRIOR_FILE);
`load_model` rebuilds a trained pair from its folder. Writing checkpoints is training's job
(training/checkpoint.py)."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load as st_load, save as st_save

from ..errors import FacepairError
from ..media.files import atomic_write_bytes, atomic_write_json, read_json
from .autoencoder import FacePair
from .presets import ModelConfig, config_from_dict

STATE = "state.json"
FORMAT, VERSION = "facepair-model", 1
# what a swap's occlusion mask expects this model's rebuilds of the side's faces to miss, worked
# out at the first swap and kept (swap/pipeline.FaceModel._cached_prior)
PRIOR_FILE = "occlusion-prior-{side}.safetensors"


def read_state(model_dir: Path) -> dict:
    path = Path(model_dir) / STATE
    if not path.exists():
        raise FacepairError(f"not a facepair model folder (no {STATE}): {model_dir}")
    state = read_json(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("step"), int) \
            or not isinstance(state.get("checkpoint"), str):
        raise FacepairError(f"not a facepair model folder: {path} is not a facepair state file")
    if state.get("version", 0) > VERSION:
        raise FacepairError(f"{path} is format version {state['version']}; upgrade facepair")
    return state


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
    if not path.exists():
        raise FacepairError(f"checkpoint file missing: {path}")
    try:
        data = path.read_bytes()
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        return st_load(data), meta
    except Exception as e:   # safetensors raises several types for damaged files
        raise FacepairError(f"corrupt checkpoint file {path}: {e}") from None


def load_weights(model_dir: Path, model: torch.nn.Module, state: dict | None = None,
                 name: str = "model") -> dict:
    state = state or read_state(model_dir)
    weights, _ = read_tensors(Path(model_dir) / state["checkpoint"] / f"{name}.safetensors")
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
    if not model_dir.is_dir():
        raise FacepairError(f"model folder not found: {model_dir}")
    state = read_state(model_dir)
    try:
        cfg = config_from_dict(ModelConfig, state["model_config"])
        model = FacePair(cfg)
    except (KeyError, TypeError, ValueError) as e:
        raise FacepairError(f"corrupt model folder {model_dir}: bad model config ({e})") from None
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
