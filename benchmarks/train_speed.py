"""Training speed: the project's step vs a naive eager fp32 implementation of the same model,
measured side by side in one run, plus this machine's bf16 matmul peak and the fraction reached;
then the default convolutional preset, `hd` (the same at 128 px) and the `seq2seq` transformers
(per frame and temporal) side by side (parameters, FLOPs per image, images/s of the real training step with the landmark
cue).

    python benchmarks/train_speed.py [--batch-size 32] [--steps 12] [--rounds 3] [--device auto]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from facepair.model.autoencoder import FacePair
from facepair.model.presets import PRESETS
from facepair.runtime import autocast, resolve_device, resolve_precision
from facepair.training.losses import make_loss
from facepair.training.step import train_step


# --- the naive reference: the seed architecture written plainly, eager fp32, NCHW ---------------
class NaiveEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 64, 5, 2, 2), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 5, 2, 2), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
            nn.Conv2d(128, 256, 5, 2, 2), nn.BatchNorm2d(256), nn.LeakyReLU(0.2),
            nn.Conv2d(256, 512, 5, 2, 2), nn.BatchNorm2d(512), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(512 * 16, 512))

    def forward(self, x):
        return self.net(x)


class NaiveDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(512, 512), nn.Linear(512, 1024), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 2, 2), nn.Conv2d(64, 512, 3, 1, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(512),
            nn.ConvTranspose2d(512, 512, 2, 2), nn.Conv2d(512, 256, 3, 1, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(256),
            nn.ConvTranspose2d(256, 256, 2, 2), nn.Conv2d(256, 128, 3, 1, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(128),
            nn.ConvTranspose2d(128, 128, 2, 2), nn.Conv2d(128, 3, 3, 1, 1))

    def forward(self, z):
        return self.net(self.fc(z).view(-1, 64, 4, 4))


def naive_setup(device):
    enc, dec_a, dec_b = NaiveEncoder().to(device), NaiveDecoder().to(device), NaiveDecoder().to(device)
    params = [*enc.parameters(), *dec_a.parameters(), *dec_b.parameters()]
    opt = torch.optim.Adam(params, lr=5e-5, betas=(0.5, 0.999))

    def step(a, b):
        loss = (dec_a(enc(a)) - a).abs().mean() + (dec_b(enc(b)) - b).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step, sum(p.numel() for p in params)


def project_setup(device, precision):
    model = FacePair(PRESETS["seed"].model).to(device, memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=5e-5, betas=(0.5, 0.999))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    amp = autocast(device, precision)

    def step(a, b):
        a, b = (t.contiguous(memory_format=torch.channels_last) for t in (a, b))
        train_step(model, opt, scaler, (a, a, b, b), amp, make_loss("l1"))  # seed: plain L1
    return step, model


def preset_setup(name, device, precision):
    """The real training step of a preset's model (its landmark cue fed random landmarks)."""
    model = FacePair(PRESETS[name].model).to(device, memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    amp = autocast(device, precision)

    k = model.cfg.context                     # a temporal model: the batch as clips of k + 1

    def step(a, b):
        a, b = (t.contiguous(memory_format=torch.channels_last) for t in (a, b))
        marks = torch.rand(len(a), 68, 2, device=device) * model.cfg.size
        batch = (a, a, b, b) + ((marks, marks) if model.cfg.cue_points or k else ())
        if k:
            pos = torch.arange(len(a), device=device)
            prev = torch.maximum(pos[:, None] - torch.arange(1, k + 1, device=device), (pos - pos % (k + 1))[:, None])
            batch += (prev, prev)
        train_step(model, opt, scaler, batch, amp, make_loss("l1"))
    return step, model


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def images_per_s(step, a, b, steps, device) -> float:
    step(a, b)                                 # warm-up (allocations, oneDNN primitives)
    step(a, b)
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step(a, b)
    sync(device)
    return 2 * len(a) * steps / (time.perf_counter() - t)


def matmul_peak(device, dtype, n: int = 2048, reps: int = 10) -> float:
    x, y = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        x @ y
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        x @ y
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=12, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (median reported)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    torch.manual_seed(0)
    a = torch.rand(args.batch_size, 3, 64, 64, device=device)
    b = torch.rand(args.batch_size, 3, 64, 64, device=device)
    naive, n_params = naive_setup(device)
    ours, model = project_setup(device, precision)
    assert n_params == sum(p.numel() for p in model.parameters()), "the reference is not the same model"

    with FlopCounterMode(display=False) as fc:      # FLOPs of one training step (fwd + bwd)
        naive(a, b)
    flops_per_step = fc.get_total_flops()

    rn, ro = [], []
    for _ in range(args.rounds):                    # alternate so drift hits both alike
        rn.append(images_per_s(naive, a, b, args.steps, device))
        ro.append(images_per_s(ours, a, b, args.steps, device))
    naive_ips, ours_ips = statistics.median(rn), statistics.median(ro)
    n = 8192 if device.type == "cuda" else 2048          # a GPU needs a larger product to reach its peak
    peak_fp32 = matmul_peak(device, torch.float32, n)
    # without native bf16 (AVX2-only CPUs) an emulated bf16 matmul takes minutes: no peak to reach
    peak_bf16 = matmul_peak(device, torch.bfloat16, n) if precision == "bf16" else float("nan")
    peak = peak_bf16 if precision == "bf16" else peak_fp32
    achieved = flops_per_step * ours_ips / (2 * args.batch_size)

    print(f"device: {device} ({torch.get_num_threads()} threads)   precision: {precision}   "
          f"batch {args.batch_size} per side   params {n_params / 1e6:.1f} M")
    print(f"model FLOPs per training step: {flops_per_step / 1e9:.1f} GFLOP "
          f"({flops_per_step / (2 * args.batch_size) / 1e9:.2f} GFLOP per image)")
    print(f"{'':28s}{'images/s':>10s}   rounds")
    print(f"{'naive eager fp32 (NCHW)':28s}{naive_ips:10.1f}   " + " ".join(f"{x:.1f}" for x in rn))
    print(f"{'facepair train_step':28s}{ours_ips:10.1f}   " + " ".join(f"{x:.1f}" for x in ro))
    print(f"speed-up vs naive: {ours_ips / naive_ips:.2f}x (target >= 2.5x on the 2-core CPU)")
    print(f"matmul peak: bf16 {peak_bf16 / 1e9:.0f} GFLOP/s, fp32 {peak_fp32 / 1e9:.0f} GFLOP/s; "
          f"facepair reaches {achieved / 1e9:.0f} GFLOP/s (counted as the plain model's FLOPs) = {achieved / peak_bf16:.1%} of the bf16 peak")

    # the convolutional default, its 128 px version, the transformers; each at its crop size
    names = ["mouth", "hd", "seq2seq", "seq2seq-temporal"]
    steps, flops, runs, inputs = {}, {}, {n: [] for n in names}, {}
    for n in names:
        size = PRESETS[n].model.size
        inputs[n] = tuple(torch.rand(args.batch_size, 3, size, size, device=device) for _ in "ab")
        steps[n], model = preset_setup(n, device, precision)
        with FlopCounterMode(display=False) as fc:
            steps[n](*inputs[n])
        flops[n] = (fc.get_total_flops() / (2 * args.batch_size), sum(p.numel() for p in model.parameters()))
    for _ in range(args.rounds):
        for n in names:
            runs[n].append(images_per_s(steps[n], *inputs[n], args.steps, device))
    print(f"\npresets side by side (batch {args.batch_size} per side, {precision}; share of this "
          f"machine's {precision} matmul peak, {peak / 1e9:.0f} GFLOP/s, counting the FLOPs of each "
          f"real step; seed: {achieved / peak:.1%} above):")
    print(f"{'preset':18s}{'params M':>10s}{'GFLOP/img':>11s}{'images/s':>10s}{'of peak':>9s}   rounds")
    for n in names:
        ips = statistics.median(runs[n])
        print(f"{n:18s}{flops[n][1] / 1e6:10.1f}{flops[n][0] / 1e9:11.2f}{ips:10.1f}"
              f"{flops[n][0] * ips / peak:9.1%}   " + " ".join(f"{x:.1f}" for x in runs[n]))
    for n in names[1:]:
        print(f"{n} / {names[0]} speed: {statistics.median(runs[n]) / statistics.median(runs[names[0]]):.2f}x")


if __name__ == "__main__":
    main()
