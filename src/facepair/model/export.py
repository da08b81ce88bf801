"""One direction of a trained pair as an ONNX graph (`facepair export`), and running such a graph
with ONNX Runtime (`facepair swap --engine onnx`).

The graph is the swap itself: the shared encoder, the target's decoder and, where the model has
one, its landmark cue with the calibrated setting baked in, clamped to [0, 1]:
    faces  (N, 3, S, S) float32 in [0, 1], RGB, aligned crops
    marks  (N, 68, 2)   float32, the faces' landmarks in crop pixels (cue models only)
 -> swapped (N, 3, S, S) float32 in [0, 1]
Its metadata (key -> JSON text) says what a reader needs to cut and paste the crops: the crop
size, padding and alignment template, the direction, the cue setting, the preset and the step.

An extra (`pip install 'facepair[onnx]'`): on the 2-core AMD with bf16, swaps through ONNX
Runtime ran at 0.95x torch's speed (benchmarks/swap_speed.py prints both), so torch stays the
default engine. Written with the TorchScript-based exporter: the torch.export-based one cannot trace upconv.py's choice,
which depends on the batch size, with a dynamic batch."""
from __future__ import annotations

import copy
import importlib
import importlib.util
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import FacepairError
from ..faces import align
from ..faces.options import DEFAULT_PADDING
from ..media.files import atomic_write_bytes
from .autoencoder import FacePair
from .presets import DIRECTIONS, REBUILDS
from .store import load_model, uncalibrated

SIDES = {**DIRECTIONS, **REBUILDS}      # direction -> (source, target); aa, bb: rebuilds

FORMAT, VERSION = "facepair-onnx", 1
OPSET = 17


class _Swap(torch.nn.Module):
    """FacePair.swap for one direction, with fixed sides (what the graph computes)."""

    def __init__(self, model: FacePair, target: str, source: str):
        super().__init__()
        self.model, self.target, self.source = model, target, source

    def forward(self, faces, marks=None):
        x = self.model.inputs(faces, self.target, marks, self.source)
        return self.model.decode(x, self.target).clamp(0, 1)


def exportable(model: FacePair) -> str | None:
    """Why this model cannot be exported (None: it can)."""
    if model.cfg.context:
        return ("a temporal preset's decoders read the previous frames' codes: swap it with "
                "--engine torch")
    if model.cfg.arch != "conv":
        return ("the transformer presets' attention does not trace with a free batch size (the "
                "exporter fixes it): swap them with --engine torch")
    return None


def to_onnx(model: FacePair, state: dict, direction: str) -> bytes:
    """The graph of `direction` (a2b, b2a; aa, bb: a side rebuilt) as ONNX bytes, with its metadata."""
    onnx = _onnx()
    why = exportable(model)
    if why:
        raise FacepairError(f"cannot export this model: {why}")
    source, target = SIDES[direction]
    cfg = model.cfg
    model = copy.deepcopy(model).float().to("cpu", memory_format=torch.contiguous_format).eval()
    args = (torch.rand(8, 3, cfg.size, cfg.size),)          # the swap's batch (upconv.py's choice)
    if cfg.cue_points:                  # faces' landmarks: the template, moved a little
        face = align.template(cfg.size, state.get("faces", {}).get("padding", DEFAULT_PADDING))
        marks = np.concatenate([np.repeat(face.mean(0, keepdims=True), align.TEMPLATE_FROM, 0), face])
        args += (torch.from_numpy(marks[None] + np.random.default_rng(0).normal(0, 1, (8, 68, 2))).float(),)
    names = ["faces", "marks"][:len(args)]
    swap = _Swap(model, target, source)
    small = tuple(a[:3] for a in args)          # the graph is checked on 3 faces (traced on 8)
    with torch.no_grad():
        want = swap(*small).numpy()             # before the export (its tracing runs the model)
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")             # the TorchScript exporter's deprecation notice
        torch.onnx.export(swap, args, buf, dynamo=False,
                          opset_version=OPSET, input_names=names, output_names=["swapped"],
                          dynamic_axes={**{n: {0: "n"} for n in names}, "swapped": {0: "n"}})
    _check(buf.getvalue(), small, want)
    graph = onnx.load_from_string(buf.getvalue())
    meta = metadata(model, state, direction)
    graph.metadata_props.extend(onnx.StringStringEntryProto(key=k, value=json.dumps(v))
                                for k, v in meta.items())
    graph.producer_name, graph.producer_version = "facepair", __version__
    return graph.SerializeToString()


def _check(data: bytes, small: tuple, want: np.ndarray) -> None:
    """The graph run on 3 faces (it was traced on 8) against the model's own answer `want`: a
    graph that fixed the batch size, or computes otherwise, is refused rather than written or
    used."""
    try:
        got = OnnxSwap(data)(*(a.numpy() for a in small))
    except FacepairError:                  # ONNX Runtime missing or broken: said as it is
        raise
    except Exception as e:  # noqa: BLE001 - ONNX Runtime's own error types
        raise FacepairError(f"cannot export this model: the graph fails on another batch size ({type(e).__name__})") from None
    if got.shape != want.shape or float(np.abs(got - want).max()) > 1e-3:
        raise FacepairError("cannot export this model: the graph does not compute what the model does")


def metadata(model: FacePair, state: dict, direction: str) -> dict:
    faces = state.get("faces", {})
    t = "ab".index(SIDES[direction][1])
    cue = model.cfg.cue_points
    return {
        "format": FORMAT, "version": VERSION, "facepair_version": __version__,
        "preset": state.get("preset"), "step": state.get("step"), "direction": direction,
        "source": SIDES[direction][0], "target": SIDES[direction][1],
        "size": model.cfg.size, "padding": faces.get("padding", DEFAULT_PADDING),
        "aligned": faces.get("aligned", True),
        "template": {"landmarks_from": align.TEMPLATE_FROM, "mean_face": align.MEAN_FACE.tolist()},
        "cue": None if not cue else {
            "points": list(cue), "lids": bool(model.cfg.cue_lids),
            "shift": float(model.cue_shift[t]), "gain": float(model.cue_gain[t]),
            "lid_gain": float(model.cue_lid_gain[t])},
        "inputs": ["faces", "marks"] if cue else ["faces"],
    }


def export(model_dir, output, direction: str = "a2b") -> dict:
    """Write `model_dir`'s `direction` as an ONNX file; returns its metadata."""
    if direction not in DIRECTIONS:
        raise FacepairError(f"bad --direction '{direction}' (a2b or b2a)")
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise FacepairError(f"the output must be a .onnx file: {output}")
    try:                                # before the model's seconds of loading and tracing
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FacepairError(f"cannot write {output}: {output.parent} cannot be made ({e.strerror or e})") from None
    if output.is_dir():
        raise FacepairError(f"cannot write {output}: it is a folder")
    if not os.access(output.parent, os.W_OK):
        raise FacepairError(f"cannot write {output}: {output.parent} is not writable")
    model, state = load_model(model_dir, torch.device("cpu"))
    if said := uncalibrated(model_dir, state, "the exported file feeds"):
        warnings.warn(said)
    data = to_onnx(model, state, direction)
    try:
        atomic_write_bytes(output, data, follow_links=True)
    except OSError as e:                # (its message names the temporary file)
        raise FacepairError(f"cannot write {output}: {e.strerror or e}") from None
    return read_metadata(data)


def read_metadata(data: bytes) -> dict:
    graph = _onnx().load_from_string(data)
    return {p.key: json.loads(p.value) for p in graph.metadata_props}


def _onnx():
    return _module("onnx")


def _module(name: str):
    """onnx or onnxruntime, imported; missing or broken (installed, but its import fails): a
    one-line user error naming why."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise FacepairError(f"ONNX export and --engine onnx need the onnx extra, which cannot be "
                            f"loaded ({e}): pip install 'facepair[onnx]'") from None


def onnxruntime_available() -> bool:
    """Whether this installation can export and run a graph (the `onnx` extra). Looked up, not
    imported: importing onnx costs about 0.5 s, which a swap on the torch engine need not pay."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


class OnnxSwap:
    """An exported graph in ONNX Runtime: faces (N, 3, S, S) and their landmarks in, swapped
    faces out, as numpy float32. One session, using the threads torch would use."""

    def __init__(self, data: bytes):
        ort = _module("onnxruntime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        # no busy-waiting between runs: spinning threads took the cores from the swap's other
        # work (the writer thread, detection) and from torch in the same process
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, faces: np.ndarray, marks: np.ndarray | None = None) -> np.ndarray:
        feed = {"faces": np.ascontiguousarray(faces, np.float32)}
        if "marks" in self.inputs:
            feed["marks"] = np.ascontiguousarray(marks, np.float32)
        return self.session.run(["swapped"], feed)[0]
