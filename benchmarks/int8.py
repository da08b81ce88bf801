"""int8 for the swap's model stage, measured: a trained model's graphs (the swap, and the source's
rebuild that --occlusion auto runs) quantised after training with ONNX Runtime, against the
float32 graph, on faces of the model's own face sets.

    python benchmarks/int8.py --model MODEL_DIR [MODEL_DIR ...] [--seconds 4]
                              [--keep-fp32 NODE ...] [--method MinMax|Percentile|Entropy]

Quantisation: static, QDQ, weights int8 per output channel, activations uint8 per tensor,
calibrated on 32 faces spread over the source side's face sets (and their landmarks, for the
cue); only the convolutions are quantised (quantising every operator, the cue's landmarks
included, doubled the error on the Obama model), and the last one (to RGB) stays float32 (it
cut the largest error from 66 to 15 grey levels there). --keep-fp32 leaves more nodes in float32
(their names as in the exported graph, such as /decoder_b/blocks/blocks.3/Conv).

Printed per graph: the difference from torch's float32 answer on 64 other faces of the same
sets, the last of them also a calibration face (PSNR over the crop and over its inner part, 12
px in from each side, where the face is; mean and largest difference in grey levels), the same
for bf16 autocast (what a CPU with native bf16 swaps with; emulated here if the CPU has none),
and faces/s of the float32 and the int8 graph
side by side in one run: batches of 8 on one session of 2 threads, and as two halves of 4 at once
on a 1-thread session (as a swap runs torch's halves).

Needs the onnx extra; the model folder's face sets must still be where training left them.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from facepair.faces import align
from facepair.faces.faceset import load_index
from facepair.media.image import read_image
from facepair.model import export
from facepair.model.store import load_model


def faces(state: dict, side: str, n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n faces spread evenly over `side`'s face sets (shifted by `offset`): float32 NCHW crops in
    [0, 1] and their landmarks in crop pixels."""
    entries = [(Path(fs["path"]), e) for fs in state["facesets"][side]
               for e in load_index(Path(fs["path"]))["faces"]]
    picks = np.minimum(np.linspace(0, len(entries) - 1, n).round().astype(int) + offset, len(entries) - 1)
    crops, marks = [], []
    for i in picks:
        folder, e = entries[i]
        crops.append(read_image(folder / e["file"]))
        marks.append(align.map_points(np.array(e["transform"], float), np.array(e["landmarks"], float)))
    return (np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / 255,
            np.stack(marks).astype(np.float32))


class Calibration(CalibrationDataReader):
    def __init__(self, crops, marks, names):
        self.batches = [dict(zip(names, (crops[k:k + 8], marks[k:k + 8]))) for k in range(0, len(crops), 8)]

    def get_next(self):
        return self.batches.pop(0) if self.batches else None


def quantise(data: bytes, crops, marks, keep: list[str], method: str) -> bytes:
    import onnx
    graph = onnx.load_from_string(data)
    names = [i.name for i in graph.graph.input]
    last_conv = [n.name for n in graph.graph.node if n.op_type == "Conv"][-1]
    with tempfile.TemporaryDirectory() as tmp:
        plain, pre, out = (Path(tmp) / f for f in ("plain.onnx", "pre.onnx", "int8.onnx"))
        plain.write_bytes(data)
        quant_pre_process(str(plain), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Calibration(crops, marks, names),
                        quant_format=QuantFormat.QDQ, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, per_channel=True,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=[last_conv, *keep],
                        calibrate_method=getattr(CalibrationMethod, method))
        return out.read_bytes()


def session(data: bytes, threads: int):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def speed(data: bytes, feed: dict, seconds: float) -> tuple[float, float]:
    """faces/s: batches of 8 on 2 threads; two halves of 4 at once on a 1-thread session."""
    whole, n = session(data, 2), 0
    whole.run(None, feed)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        whole.run(None, feed)
        n += 8
    one = n / (time.perf_counter() - start)
    halves = [{k: v[:4] for k, v in feed.items()}, {k: v[4:] for k, v in feed.items()}]
    single, n = session(data, 1), 0
    single.run(None, feed)
    with ThreadPoolExecutor(1) as pool:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            later = pool.submit(single.run, None, halves[1])
            single.run(None, halves[0])
            later.result()
            n += 8
    return one, n / (time.perf_counter() - start)


def difference(got: np.ndarray, want: np.ndarray) -> str:
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    psnr = [10 * np.log10(1 / np.mean((got[c] - want[c]) ** 2)) for c in (..., inner)]
    d = np.abs(got - want) * 255
    return f"PSNR {psnr[0]:5.1f} dB (inner {psnr[1]:5.1f}), mean {d.mean():5.2f}, largest {d.max():4.0f} grey"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", required=True, type=Path)
    ap.add_argument("--seconds", type=float, default=4.0, help="per speed figure")
    ap.add_argument("--keep-fp32", nargs="*", default=[], metavar="NODE")
    ap.add_argument("--method", default="MinMax", choices=["MinMax", "Percentile", "Entropy"])
    args = ap.parse_args()
    torch.set_num_threads(2)
    for folder in args.model:
        model, state = load_model(folder, torch.device("cpu"))
        model = model.float().eval()
        for direction in ("a2b", "aa"):       # what a swap of A runs: the swap and A's rebuild
            source, target = export.SIDES[direction]
            calib, test = faces(state, source, 32), faces(state, source, 64, offset=3)
            data = export.to_onnx(model, state, direction)
            int8 = quantise(data, *calib, args.keep_fp32, args.method)
            swap = export._Swap(model, target, source)
            with torch.no_grad():
                want = swap(*map(torch.from_numpy, test)).numpy()
                with torch.autocast("cpu", torch.bfloat16):
                    bf16 = swap(*map(torch.from_numpy, test)).float().numpy()
            got = export.OnnxSwap(int8)(*test)
            feed = dict(zip([i.name for i in session(data, 1).get_inputs()], (test[0][:8], test[1][:8])))
            f32_speed, i8_speed = speed(data, feed, args.seconds), speed(int8, feed, args.seconds)
            print(f"{folder} {direction} ({state.get('step')} steps)\n"
                  f"  int8 against float32: {difference(got, want)}\n"
                  f"  bf16 against float32: {difference(bf16, want)}\n"
                  f"  faces/s, float32 / int8: 2 threads {f32_speed[0]:.1f} / {i8_speed[0]:.1f} "
                  f"({i8_speed[0] / f32_speed[0]:.2f}x); halves {f32_speed[1]:.1f} / {i8_speed[1]:.1f} "
                  f"({i8_speed[1] / f32_speed[1]:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
