"""Checkpoints: MODEL_DIR/checkpoints/step-NNNNNNNN/{model,optimizer}.safetensors, then
MODEL_DIR/state.json (model/store.py; written last, atomically: it names the current checkpoint
and holds "step": N). A crash at any point leaves the previous checkpoint and state intact."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ..model.store import read_tensors, save_tensors, write_state


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors = {f"state.{i}.{k}": (v if torch.is_tensor(v) else torch.tensor(v))
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
    save_tensors(tmp / "model.safetensors", model.state_dict(), {"step": str(step)})
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    opt_tensors["rng.torch"] = torch.get_rng_state()
    save_tensors(tmp / "optimizer.safetensors", opt_tensors, opt_meta)
    for name, (module, optimizer) in (extra or {}).items():
        save_tensors(tmp / f"{name}.safetensors", module.state_dict())
        save_tensors(tmp / f"{name}.optimizer.safetensors", *_flatten_optimizer(optimizer))
    final = root / name
    if final.exists():                       # re-saving a step after a rollback
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_state(model_dir, dict(state, step=step, checkpoint=f"checkpoints/{name}"))
    kept = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in kept[:-keep] if keep > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def load_optimizer(model_dir: Path, opt: torch.optim.Optimizer, state: dict, name: str = "") -> None:
    file = f"{name}.optimizer.safetensors" if name else "optimizer.safetensors"
    tensors, meta = read_tensors(Path(model_dir) / state["checkpoint"] / file)
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors.pop("rng.torch"))
    opt.load_state_dict(_unflatten_optimizer(tensors, meta))
