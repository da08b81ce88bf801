"""Checkpoints: MODEL_DIR/checkpoints/step-NNNNNNNN/{model,optimizer}.safetensors, and
MODEL_DIR/state.json (written last, atomically: it names the current checkpoint and holds
"step": N). A crash at any point leaves the previous checkpoint and state intact."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load as st_load, save as st_save

from ..errors import FacepairError
from ..media import atomic_write_bytes, atomic_write_json, read_json

STATE = "state.json"
FORMAT, VERSION = "facepair-model", 1


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors = {f"state.{i}.{k}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
               for i, st in sd["state"].items() for k, v in st.items()}
    return tensors, {"param_groups": json.dumps(sd["param_groups"])}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict = {}
    for name, t in tensors.items():
        if name.startswith("state."):
            _, i, k = name.split(".", 2)
            state.setdefault(int(i), {})[k] = t
    return {"state": state, "param_groups": json.loads(meta["param_groups"])}


def save(model_dir: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer,
         state: dict, keep: int = 3, extra: dict | None = None) -> None:
    """`extra`: {name: (module, optimizer)} saved beside as NAME.safetensors and
    NAME.optimizer.safetensors (the GAN presets' discriminators)."""
    model_dir = Path(model_dir)
    root = model_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(tmp / "model.safetensors", st_save(weights, metadata={"step": str(step)}))
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    opt_tensors["rng.torch"] = torch.get_rng_state()
    atomic_write_bytes(tmp / "optimizer.safetensors", st_save(opt_tensors, metadata=opt_meta))
    for name, (module, optimizer) in (extra or {}).items():
        atomic_write_bytes(tmp / f"{name}.safetensors", st_save(
            {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}))
        t, m = _flatten_optimizer(optimizer)
        atomic_write_bytes(tmp / f"{name}.optimizer.safetensors", st_save(t, metadata=m))
    final = root / name
    if final.exists():                       # re-saving a step after a rollback
        shutil.rmtree(final)
    os.replace(tmp, final)
    state = dict(state, format=FORMAT, version=VERSION, step=step,
                 checkpoint=f"checkpoints/{name}")
    atomic_write_json(model_dir / STATE, state)
    kept = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in kept[:-keep] if keep > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def read_state(model_dir: Path) -> dict:
    path = Path(model_dir) / STATE
    if not path.exists():
        raise FacepairError(f"not a facepair model folder (no {STATE}): {model_dir}")
    state = read_json(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT or "step" not in state or "checkpoint" not in state:
        raise FacepairError(f"not a facepair model folder: {path} is not a facepair state file")
    if state.get("version", 0) > VERSION:
        raise FacepairError(f"{path} is format version {state['version']}; upgrade facepair")
    return state


def update_state(model_dir: Path, **fields) -> None:
    """Add or replace fields of a model folder's state file (atomically)."""
    atomic_write_json(Path(model_dir) / STATE, dict(read_state(model_dir), **fields))


def _read_safetensors(path: Path) -> tuple[dict, dict]:
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
    weights, _ = _read_safetensors(Path(model_dir) / state["checkpoint"] / f"{name}.safetensors")
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise FacepairError(f"weights in {model_dir} do not fit the model: {first}") from None
    return state


def load_optimizer(model_dir: Path, opt: torch.optim.Optimizer, state: dict, name: str = "") -> None:
    file = f"{name}.optimizer.safetensors" if name else "optimizer.safetensors"
    tensors, meta = _read_safetensors(Path(model_dir) / state["checkpoint"] / file)
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors.pop("rng.torch"))
    opt.load_state_dict(_unflatten_optimizer(tensors, meta))
