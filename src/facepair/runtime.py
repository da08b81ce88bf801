"""Device and precision policy, one copy for train, swap and evaluate; and the one conversion
between pictures (uint8, N x H x W x 3) and the models' tensors (float in [0, 1], N x 3 x H x W)."""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import numpy as np
import torch

from .errors import FacepairError


def cpu_has_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX-512 BF16 or AMX): bf16 autocast is then
    ~2x faster than fp32 on this model (benchmarks/train_speed.py)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else \
            "mps" if torch.backends.mps.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise FacepairError("--device cuda: no CUDA GPU is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise FacepairError("--device mps: Apple MPS is not available")
    return torch.device(f"cuda:{local_rank}" if name == "cuda" else name)


def resolve_precision(name: str, device: torch.device) -> str:
    """auto: bf16 on bf16 GPUs and on CPUs with native bf16, fp16 on older GPUs, else fp32."""
    if name == "auto":
        if device.type == "cuda":
            # native only: an emulated bf16 (pre-Ampere GPUs) is slower than fp16 with loss scaling
            return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    if name == "fp16" and device.type == "cpu":
        raise FacepairError("--precision fp16 is for GPUs; use bf16 or fp32 on the CPU")
    return name


def autocast(device: torch.device, precision: str):
    """The autocast context of a resolved precision (fp32: none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def inference_autocast(device: torch.device):
    """What swap and evaluate run the model under: the training policy's automatic choice."""
    return autocast(device, resolve_precision("auto", device))


def cast_for_inference(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The model frozen for inference under autocast of a resolved `precision`, its conv and
    dense weights stored in the autocast dtype once (in place): autocast casts an fp32 weight
    again at every call (a fifth of the hd model's time in a swap: its encoder's dense layer
    alone holds 16.8 M weights) and leaves a weight already in that dtype as it is, so the
    numbers are the same. Biases and norms keep float32 (small; autocast casts them as before)."""
    model.requires_grad_(False)
    if precision not in ("bf16", "fp16"):
        return model
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            m.weight = torch.nn.Parameter(m.weight.detach().to(dtype), requires_grad=False)
    return model


_halves = {"users": 0, "threads": 0, "lock": threading.Lock()}


@contextlib.contextmanager
def model_in_halves(device: torch.device):
    """While a video swap's reader and writer threads work beside the model: on the CPU, its
    batches run as two halves at once, each in a thread of its own on half of torch's threads
    (at least one); yields how many parts a batch runs as (1 on a GPU or a single thread). The
    system then shares the cores: when the encoder takes one, that half waits and the other
    goes on. One torch team on both cores waited at every operation for the thread the encoder
    had pushed aside (a 2-core Xeon), and one torch thread left a core idle where the model is
    most of the work (fp32, a 2-core AMD EPYC without native bf16: 1.40x the frames/s of one
    thread; benchmarks/swap_speed.py, docs/results.md). torch's setting is the whole
    process's: swaps side by side in threads halve it once; the last to finish restores it."""
    if device.type != "cpu":
        yield 1
        return
    with _halves["lock"]:
        if _halves["users"] == 0:
            _halves["threads"] = torch.get_num_threads()
            torch.set_num_threads(max(1, _halves["threads"] // 2))
        _halves["users"] += 1
        parts = 2 if _halves["threads"] >= 2 else 1
    try:
        yield parts
    finally:
        with _halves["lock"]:
            _halves["users"] -= 1
            if _halves["users"] == 0:
                torch.set_num_threads(_halves["threads"])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)


def to_images(t: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float -> (N, H, W, 3) uint8, clamped to [0, 1] first."""
    return (t.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
