"""ConvTranspose2d(k2, s2) followed by Conv2d(3x3, same): the decoder's upsampling step, computed
exactly, but faster where it pays. Also the resize-convolution (nearest x2, then the 3x3 conv;
Odena et al. 2016) that presets may use instead: without learned sub-pixel phases it draws no
2-pixel grid, and it folds the same way (a nearest upsampling is a transposed conv whose kernel
copies each pixel to its four sub-pixels).

Both are linear, so conv3x3(convT(x)) equals ONE 3x3 conv at the low resolution with 4x the output
channels (one set per sub-pixel phase), then a pixel shuffle: the combined kernel is a contraction
of the two weights, and the transposed conv's bias, seen through the zero-padded 3x3 conv, adds a
fixed per-position map. Same parameters, same function (equal to float rounding), but the
transposed conv's work and its full-resolution intermediate disappear. Combining the weights costs
work of its own, so it is used only where the transposed conv is the larger cost (N*H*W > 9*C_out).
Measured on the 2-core CPU, bf16, batch 32 (fwd+bwd): 128->3 at 32->64 px 149 -> 18 ms;
256->128 at 16->32 px 186 -> 150 ms; the two smaller stages stay plain (benchmarks/train_speed.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _phase_taps() -> torch.Tensor:
    """S[p, d, k, a] = 1 where tap d (0..2) of a 3x3 conv at output phase p reads the transposed
    conv's sub-pixel a of the low-resolution pixel at offset k - 1."""
    s = torch.zeros(2, 3, 3, 2)
    for p in range(2):
        for d in range(3):
            q = p + d - 1
            s[p, d, q // 2 + 1, q % 2] = 1
    return s


PHASE_TAPS = _phase_taps()
NEAREST_TAPS = PHASE_TAPS.sum(-1)        # [p, d, k]: a nearest upsampling's sub-pixels are equal


def fused_up_conv(x: torch.Tensor, up: nn.ConvTranspose2d | None, conv: nn.Conv2d) -> torch.Tensor:
    """conv(up(x)) as one low-resolution conv and a pixel shuffle (up None: nearest x2). Without
    gradients (a swap, an evaluation) the combined kernel (cast as autocast would cast it) and the
    bias map are kept on `conv` and reused while the weights, the input's dtype and size and the
    autocast state stay the same: the same numbers, without redoing the contraction, the cast and
    the bias map for every batch (about 12 % of the hd model's CPU time in a swap, measured)."""
    wc, bc = conv.weight, conv.bias
    weights = (wc, bc) if up is None else (up.weight, up.bias, wc, bc)
    key = None if torch.is_grad_enabled() or _exporting() else _key(x, weights)
    kept = getattr(conv, "_fused_kept", None)
    if key is not None and kept is not None and kept[0] == key and all(
            a is b for a, b in zip(kept[2], weights)):
        w, bias_map, bias = kept[1]
        if bias_map is None:       # nearest: the bias added in place, no map (the same numbers)
            return F.pixel_shuffle(F.conv2d(x, w, padding=1).add_(bias), 2)
        return F.pixel_shuffle(F.conv2d(x, w, padding=1), 2) + bias_map + bias
    c_out, c_in = wc.shape[0], x.shape[1]
    if up is None:
        s = NEAREST_TAPS.to(x.device, wc.dtype)
        w = torch.einsum("pyk,qxl,ocyx->opqckl", s, s, wc).reshape(c_out * 4, c_in, 3, 3)
    else:
        s = PHASE_TAPS.to(x.device)
        t = torch.einsum("omyx,cmab->oyxcab", wc, up.weight)
        w = torch.einsum("pyka,qxlb,oyxcab->opqckl", s.to(t.dtype), s.to(t.dtype), t).reshape(c_out * 4, c_in, 3, 3)
    if key is not None and torch.is_autocast_enabled(x.device.type):
        w = w.to(torch.get_autocast_dtype(x.device.type))   # as autocast casts it for the conv, once
    y = F.pixel_shuffle(F.conv2d(x, w, padding=1), 2)
    bias = bc.to(y.dtype).view(1, -1, 1, 1)
    if up is None:
        bias_map = None          # kept: the bias goes to each phase in place, before the shuffle
        y = y + bias
    else:
        kb = torch.einsum("omyx,m->oyx", wc, up.bias).unsqueeze(1)    # convT bias through the conv
        ones = torch.ones(1, 1, *y.shape[2:], device=x.device, dtype=y.dtype)
        bias_map = F.conv2d(ones, kb.to(y.dtype), padding=1)
        y = y + bias_map + bias
    if key is not None:         # the weights themselves too: compared by identity, never reused
        conv._fused_kept = (key, (w.detach(), None, bias.detach().repeat_interleave(4, dim=1)) if up is None
                            else (w.detach(), bias_map.detach(), bias.detach()), weights)
    return y


def _exporting() -> bool:
    """Tracing, an ONNX export or torch.compile: the kernel is worked out in the graph, as before."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def _key(x: torch.Tensor, weights) -> tuple | None:
    """What the kept kernel depends on besides the weights' identity: their versions (bumped by
    every in-place change through autograd's view of them, such as an optimizer step or
    load_state_dict; not by writes through `.data`), the input's dtype, device and size, and
    autocast. None (work it out afresh) where a weight has no version (inference tensors)."""
    try:
        versions = tuple(p._version for p in weights)
    except RuntimeError:
        return None
    return (x.dtype, x.device, tuple(x.shape[2:]), torch.is_autocast_enabled(x.device.type),
            torch.get_autocast_dtype(x.device.type), versions)


def up_conv(x: torch.Tensor, up: nn.ConvTranspose2d | None, conv: nn.Conv2d) -> torch.Tensor:
    """conv(up(x)); up None: conv(nearest x2 upsampling of x)."""
    n, _, h, w = x.shape
    if n * h * w > 9 * conv.out_channels:
        return fused_up_conv(x, up, conv)
    return conv(F.interpolate(x, scale_factor=2, mode="nearest") if up is None else up(x))
