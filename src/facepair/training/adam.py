"""torch's Adam, built and stepped without importing torch._dynamo.

torch.optim marks its methods for torch.compile (`torch._disable_dynamo`, graph breaks around
`step`), and the first call of each imports torch._dynamo: about 1 s of every `facepair train`
start on the 2-core AMD (2 s on the machine the issue measured), for nothing, since facepair
compiles at most the model, never the optimizer. Here the same functions run undecorated: the
update is torch's own, bit for bit (tests/test_train.py compares them). Where torch changes these
internals, the fallback is torch's Adam as it is (slower to start, same result). Not used with
--compile."""
from __future__ import annotations

import importlib
import inspect

import torch

_STEP = inspect.unwrap(torch.optim.Adam.step)
_DECORATED = (torch.optim.Optimizer.add_param_group, torch.optim.Optimizer.zero_grad,
              torch.optim.Optimizer.state_dict, torch.optim.Optimizer.load_state_dict,
              getattr(importlib.import_module("torch.optim.adam"), "adam", None))


class Adam(torch.optim.Adam):
    def step(self, closure=None):
        with torch.no_grad():               # what the decorator does, less the graph breaks
            return _STEP(self, closure)


def _undecorate() -> bool:
    """Let the dynamo-disabled methods call themselves directly (torch._compile's own cache
    attribute, which it fills on first call with dynamo's wrapper)."""
    for f in _DECORATED:
        raw = getattr(f, "__wrapped__", None)
        if raw is None:
            return False
        setattr(raw, "__dynamo_disable", raw)
    return True


def adam(params, lr: float, betas: tuple, compiled: bool = False) -> torch.optim.Adam:
    if compiled or _STEP is torch.optim.Adam.step or not _undecorate():
        return torch.optim.Adam(params, lr=lr, betas=betas)
    return Adam(params, lr=lr, betas=betas)
