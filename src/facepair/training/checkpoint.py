"""Checkpoints: MODEL_DIR/checkpoints/step-NNNNNNNN[.K]/{model,optimizer}.safetensors, then
MODEL_DIR/state.json (model/store.py), which names the current checkpoint and holds "step": N.

Crash-safe at every point: a save writes a new folder (never over the one state.json names;
saving a step again takes the next free name, step-NNNNNNNN.1), switches state.json to it
atomically, and only then removes what it replaced. A resume whose named checkpoint is missing
or damaged falls back to the newest one that loads (`restore_points`)."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch

from ..errors import FacepairError
from ..model.store import read_tensors, save_tensors, write_state

NAME = re.compile(r"^step-(\d{8})(?:\.(\d+))?$")


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


def _order(folder: Path) -> tuple[int, int]:
    m = NAME.match(folder.name)
    return int(m.group(1)), int(m.group(2) or 0)


def folders(model_dir: Path) -> list[Path]:
    """The model folder's checkpoints, oldest first (by step, then by re-save)."""
    root = Path(model_dir) / "checkpoints"
    found = [p for p in root.iterdir() if p.is_dir() and NAME.match(p.name)] if root.is_dir() else []
    return sorted(found, key=_order)


def save(model_dir: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer,
         state: dict, keep: int = 3, extra: dict | None = None) -> None:
    """`extra`: {name: (module, optimizer)} saved beside as NAME.safetensors and
    NAME.optimizer.safetensors (the GAN presets' discriminators). Weights that are not all
    finite are refused (FacepairError), and the last good checkpoint stays."""
    modules = [model] + [m for m, _ in (extra or {}).values()]
    if not all(torch.isfinite(v).all() for m in modules for v in m.state_dict().values()
               if v.is_floating_point()):
        raise FacepairError(f"not saving step {step}: the weights hold non-finite values")
    model_dir = Path(model_dir)
    root = model_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name, k = f"step-{step:08d}", 0
    while (root / name).exists():            # the same step saved again: a new folder beside
        k += 1
        name = f"step-{step:08d}.{k}"
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_tensors(tmp / "model.safetensors", model.state_dict(), {"step": str(step)})
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    opt_tensors["rng.torch"] = torch.get_rng_state()
    save_tensors(tmp / "optimizer.safetensors", opt_tensors, opt_meta)
    for extra_name, (module, optimizer) in (extra or {}).items():
        save_tensors(tmp / f"{extra_name}.safetensors", module.state_dict())
        save_tensors(tmp / f"{extra_name}.optimizer.safetensors", *_flatten_optimizer(optimizer))
    final = root / name
    os.replace(tmp, final)
    write_state(model_dir, dict(state, step=step, checkpoint=f"checkpoints/{name}"))
    # only now is anything removed: the same step's older saves, then all but the newest `keep`
    superseded = [p for p in folders(model_dir) if p != final and _order(p)[0] == step]
    kept = [p for p in folders(model_dir) if p not in superseded]
    for p in superseded + [p for p in kept[:max(0, len(kept) - keep)] if p != final]:
        shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".tmp-*"):            # what a crashed save left behind
        shutil.rmtree(p, ignore_errors=True)


def load_optimizer(model_dir: Path, opt: torch.optim.Optimizer, state: dict, name: str = "") -> None:
    file = f"{name}.optimizer.safetensors" if name else "optimizer.safetensors"
    path = Path(model_dir) / state["checkpoint"] / file
    tensors, meta = read_tensors(path)
    rng = tensors.pop("rng.torch", None)
    try:
        opt.load_state_dict(_unflatten_optimizer(tensors, meta))
        if rng is not None:
            torch.set_rng_state(rng)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:   # json's errors are ValueErrors
        raise FacepairError(f"corrupt checkpoint file {path}: {type(e).__name__}: {e}") from None
    for group in opt.param_groups:        # load_state_dict checks the count, not the shapes
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                if torch.is_tensor(v) and k != "step" and (v.shape != p.shape or not torch.isfinite(v).all()):
                    raise FacepairError(f"corrupt checkpoint file {path}: its '{k}' does not fit "
                                        "the model or holds NaN")


def restore_points(model_dir: Path, state: dict) -> list[dict]:
    """The state as saved, then the same state pointing at each other checkpoint, newest first:
    what a resume tries in turn when a checkpoint is missing or damaged."""
    named = state["checkpoint"]
    others = [p for p in reversed(folders(model_dir)) if f"checkpoints/{p.name}" != named]
    return [state] + [dict(state, step=_order(p)[0], checkpoint=f"checkpoints/{p.name}") for p in others]
