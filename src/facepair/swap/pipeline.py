"""The swap stage: frame -> faces (detect or track, 68 landmarks, smoothed) -> aligned crops ->
shared encoder + target decoder -> colour match -> mask -> blend -> watermark -> output.

Images and folders of images give images; a video gives a video with the same size, frame rate,
frame count and timestamps, and its audio copied as is. Frames stream through in small batches
(constant memory for any length).
"""
from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np
import torch
from tqdm import tqdm

from ..errors import FacepairError
from ..faces import align
from ..faces.detect import make_detector
from ..faces.identity import DEFAULT_THRESHOLD, Embedder, distance, reference_embeddings
from ..faces.landmarks import Landmarker
from ..media import UnreadableMedia, expand_inputs, is_image, read_image
from ..model.autoencoder import FacePair
from ..model.presets import ModelConfig, config_from_dict
from ..provenance import label, watermark
from ..training import checkpoint
from ..training.loop import Interrupted, cpu_has_bf16, resolve_device
from . import blend
from .smooth import OneEuro, SceneCuts


@dataclass
class SwapOptions:
    direction: str = "a2b"
    detector: str = "hog"
    detect_size: int = 480
    detect_every: int = 5             # video: full detection every N frames, tracking between
    mask: str = "hull"
    erode: float = 1.0                # crop pixels
    feather: float = 4.0              # crop pixels
    color: str = "lab"
    blend: str = "feather"
    identity: list | None = None
    threshold: float = DEFAULT_THRESHOLD
    smooth: bool = True
    device: str = "auto"
    batch: int = 8                    # video frames per model batch
    crf: int = 18
    duration: float | None = None     # video: seconds from the start to swap (None: all)
    progress: bool = True


@dataclass
class SwapSummary:
    output: str = ""
    frames: int = 0
    faces_swapped: int = 0
    frames_without_face: int = 0
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds else 0.0

    def to_dict(self):
        return dict(asdict(self), fps=self.fps)

    def __str__(self):
        return (f"frames: {self.frames} ({self.fps:.1f} frames/s)   faces swapped: "
                f"{self.faces_swapped}   frames without a face: {self.frames_without_face}\n"
                f"output: {self.output} (labelled synthetic: watermark, tag, and a signed C2PA "
                f"manifest where the format takes one)")


def load_model(model_dir, device: torch.device) -> tuple[FacePair, dict]:
    """The trained pair, rebuilt from its folder's recorded config, in eval mode."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FacepairError(f"model folder not found: {model_dir}")
    state = checkpoint.read_state(model_dir)
    try:
        cfg = config_from_dict(ModelConfig, state["model_config"])
        model = FacePair(cfg)
    except (KeyError, TypeError, ValueError) as e:
        raise FacepairError(f"corrupt model folder {model_dir}: bad model config ({e})") from None
    checkpoint.load_weights(model_dir, model, state)
    if cfg.cue_points:                 # the cue's swap setting measured after training, if it was
        for key, buf, default in (("cue_shift", model.cue_shift, 0.0), ("cue_gain", model.cue_gain, 1.0)):
            try:        # per target side: A is the target of b2a
                v = state.get(key, {})
                buf.copy_(torch.tensor([float(v.get("b2a", default)), float(v.get("a2b", default))]))
            except (AttributeError, TypeError, ValueError):
                raise FacepairError(f"corrupt model folder {model_dir}: bad {key} in state.json") from None
    return model.to(device, memory_format=torch.channels_last).eval(), state


class _Track:
    """One face followed over frames: last detector box, landmarks, and its smoothing filter."""

    def __init__(self, box, marks, fps, keep):
        self.box, self.marks, self.keep = np.array(box, float), marks, keep
        self.filter = OneEuro(fps, min_cutoff=1.0, beta=0.02)


class Swapper:
    def __init__(self, model_dir, opts: SwapOptions):
        if opts.direction not in ("a2b", "b2a"):
            raise FacepairError(f"bad --direction '{opts.direction}' (a2b or b2a)")
        self.opts = opts
        self.device = resolve_device(opts.device)
        self.model, self.state = load_model(model_dir, self.device)
        faces = self.state.get("faces", {})
        self.size = self.model.cfg.size
        self.padding = faces.get("padding", align.DEFAULT_PADDING)
        self.aligned = faces.get("aligned", True)
        self.target = "b" if opts.direction == "a2b" else "a"
        self.detector = make_detector(opts.detector, opts.detect_size)
        self.landmarker = Landmarker()
        self.embedder = Embedder() if opts.identity else None
        self.refs = reference_embeddings(opts.identity, self.detector, self.landmarker,
                                          self.embedder) if opts.identity else None
        bf16 = self.device.type == "cuda" or (self.device.type == "cpu" and cpu_has_bf16())
        self.amp = torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 \
            else contextlib.nullcontext()
        self.tracks: list[_Track] = []
        self.cuts = SceneCuts()
        self.fps = 30.0
        self.times = {k: 0.0 for k in ("detect", "landmarks", "model", "blend")}

    # -- faces of one frame --------------------------------------------------------------------
    def _keep(self, frame, marks) -> bool:
        if self.refs is None:
            return True
        return bool(distance(self.embedder.from_landmarks(frame, marks), self.refs)[0] <= self.opts.threshold)

    def _detect(self, frame):
        t = time.perf_counter()
        boxes = self.detector(frame)
        self.times["detect"] += time.perf_counter() - t
        old = self.tracks
        self.tracks = []
        for box in boxes:
            t = time.perf_counter()
            marks = self.landmarker(frame, box)
            self.times["landmarks"] += time.perf_counter() - t
            # continue the nearest old track (same face) so its smoothing carries on
            c = marks.mean(0)
            near = min(old, key=lambda tr: np.linalg.norm(tr.marks.mean(0) - c), default=None)
            if near is not None and np.linalg.norm(near.marks.mean(0) - c) < 0.2 * (box[2] - box[0]):
                near.box, near.marks = np.array(box, float), marks
                old.remove(near)
                self.tracks.append(near)
            else:
                self.tracks.append(_Track(box, marks, self.fps, self._keep(frame, marks)))

    def _track(self, frame) -> bool:
        """Follow every face from its last landmarks without the detector; False if lost."""
        t = time.perf_counter()
        for tr in self.tracks:
            # move the last detector box with the face (keeps the box geometry the predictor
            # was trained on), then predict landmarks inside it
            marks = self.landmarker(frame, tr.box)
            shift = marks.mean(0) - tr.marks.mean(0)
            spread = np.ptp(marks, 0).mean() / max(np.ptp(tr.marks, 0).mean(), 1e-6)
            if not 0.8 < spread < 1.25 or np.abs(shift).max() > 0.25 * (tr.box[2] - tr.box[0]):
                self.times["landmarks"] += time.perf_counter() - t
                return False
            tr.box = tr.box + np.tile(shift, 2)
            tr.marks = marks
        self.times["landmarks"] += time.perf_counter() - t
        return bool(self.tracks)

    def faces(self, frame, index: int, video: bool):
        """[(landmarks for alignment, keep?)] of one frame."""
        if not video:
            self.tracks = []
            self._detect(frame)
        else:
            cut = self.cuts(frame)
            if cut:
                self.tracks = []
            if cut or not self.tracks or index % self.opts.detect_every == 0 or not self._track(frame):
                self._detect(frame)
        out = []
        for tr in self.tracks:
            marks = tr.filter(tr.marks) if (video and self.opts.smooth) else tr.marks
            out.append((marks, tr.keep))
        return out

    # -- a batch of frames -------------------------------------------------------------------
    def process(self, frames: list[np.ndarray], first_index: int, video: bool, summary: SwapSummary):
        """Swap the faces of a list of frames in place."""
        jobs = []                                     # (frame number in batch, transform, crop, marks)
        for k, frame in enumerate(frames):
            found = [(m, keep) for m, keep in self.faces(frame, first_index + k, video)]
            if not found:
                summary.frames_without_face += 1
            for marks, keep in found:
                if not keep:
                    continue
                m = align.align_transform(marks, self.size, self.padding) if self.aligned else \
                    align.box_transform((*marks.min(0), *marks.max(0)), self.size)
                jobs.append((k, m, align.warp(frame, m, self.size), marks))
        if not jobs:
            return
        t = time.perf_counter()
        crops = torch.from_numpy(np.stack([j[2] for j in jobs])).permute(0, 3, 1, 2).float().div(255)
        crops = crops.to(self.device, memory_format=torch.channels_last)
        with torch.no_grad(), self.amp:
            marks = np.stack([align.apply(j[1], j[3]) for j in jobs])    # for a landmark cue
            out = self.model.swap(crops, self.target, marks)
        swapped = (out.float().permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        self.times["model"] += time.perf_counter() - t
        t = time.perf_counter()
        o = self.opts
        for (k, m, crop, marks), face in zip(jobs, swapped):
            mask = blend.face_mask(o.mask, align.apply(m, marks), self.size, o.erode, o.feather)
            face = blend.match_color(face, crop, mask, o.color)
            blend.paste(frames[k], face, mask, m, o.blend)
            summary.faces_swapped += 1
        self.times["blend"] += time.perf_counter() - t


# ---------------------------------------------------------------------------------------------
def _check_output(inp: Path, out: Path):
    if out.exists() and inp.exists() and out.resolve() == inp.resolve():
        raise FacepairError(f"output would overwrite the input: {out}")
    if inp.is_dir() and out.exists() and out.resolve() in [p.resolve() for p in expand_inputs([inp])]:
        raise FacepairError(f"output would overwrite an input: {out}")


def _swap_images(swapper: Swapper, inp: Path, out: Path, summary: SwapSummary):
    files = [f for f in expand_inputs([inp]) if is_image(f)]
    if not files:
        raise FacepairError(f"no images in {inp}")
    folder = inp.is_dir()
    if folder:
        out.mkdir(parents=True, exist_ok=True)
        if out.resolve() == inp.resolve():
            raise FacepairError(f"output folder is the input folder: {out}")
    unreadable = 0
    for f in tqdm(files, unit="image", disable=not swapper.opts.progress or len(files) == 1):
        try:
            frame = read_image(f)
        except UnreadableMedia as e:
            if not folder:
                raise FacepairError(str(e)) from None
            warnings.warn(f"skipped: {e}")
            unreadable += 1
            continue
        swapper.process([frame], 0, False, summary)
        summary.frames += 1
        target = out / f.relative_to(inp) if folder else out
        target.parent.mkdir(parents=True, exist_ok=True)
        label.write_image(target, frame)
    if summary.frames == 0:
        raise FacepairError(f"no readable image in {inp}")


def _swap_video(swapper: Swapper, inp: Path, out: Path, summary: SwapSummary):
    try:
        src = av.open(str(inp))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise FacepairError(f"cannot open video {inp}: {e}") from None
    if not src.streams.video:
        raise FacepairError(f"no video stream in {inp}")
    vin = src.streams.video[0]
    vin.thread_type = "AUTO"
    ain = src.streams.audio[0] if src.streams.audio else None
    swapper.fps = float(vin.average_rate or 30)
    tmp = out.with_name(f".{out.name}.partial{out.suffix}")
    dst = av.open(str(tmp), "w")
    dst.metadata["comment"] = label.TAG
    vout = dst.add_stream("libx264", rate=vin.average_rate or 30)
    vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
    vout.pix_fmt = "yuv420p" if vout.width % 2 == 0 and vout.height % 2 == 0 else "yuv444p"
    vout.time_base = vin.time_base
    vout.options = {"crf": str(swapper.opts.crf), "preset": "veryfast"}
    aout = dst.add_stream_from_template(ain) if ain is not None else None
    total = vin.frames or None
    end = swapper.opts.duration
    if end is not None and total:
        total = min(total, int(round(end * float(vin.average_rate or 30))))
    bar = tqdm(total=total, unit="frame", disable=not swapper.opts.progress, desc="swap",
               dynamic_ncols=True)
    t_io = {"decode": 0.0, "encode": 0.0}
    pending: list = []                             # (av frame, rgb) waiting for the model

    def flush():
        if not pending:
            return
        rgbs = [p[1] for p in pending]
        swapper.process(rgbs, summary.frames, True, summary)
        t = time.perf_counter()
        for (f, _), rgb in zip(pending, rgbs):
            vf = av.VideoFrame.from_ndarray(watermark.embed_i420(rgb), format="yuv420p") \
                if vout.pix_fmt == "yuv420p" else \
                av.VideoFrame.from_ndarray(watermark.embed(rgb), format="rgb24")
            vf.pts, vf.time_base = f.pts, f.time_base
            for pkt in vout.encode(vf):
                dst.mux(pkt)
        t_io["encode"] += time.perf_counter() - t
        summary.frames += len(pending)
        bar.update(len(pending))
        pending.clear()

    def take(frames):
        for f in frames:
            if end is None or f.time is None or f.time < end:
                pending.append((f, f.to_ndarray(format="rgb24")))

    interrupted = False
    try:
        streams = [vin] + ([ain] if ain is not None else [])
        t = time.perf_counter()
        try:
            for packet in src.demux(*streams):
                if end is not None and packet.pts is not None and \
                        packet.pts * packet.time_base >= end:
                    # decode order differs from display order: read on a little past the end
                    if packet.stream is vin and packet.dts is not None and \
                            packet.dts * packet.time_base >= end + 1:
                        break
                    if packet.stream is ain:
                        continue
                if packet.stream is ain:
                    if packet.dts is not None:
                        packet.stream = aout
                        dst.mux(packet)
                    continue
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as e:
                    warnings.warn(f"{inp}: skipped a damaged packet ({e})")
                    continue
                take(frames)
                t_io["decode"] += time.perf_counter() - t
                if len(pending) >= swapper.opts.batch:
                    flush()
                t = time.perf_counter()
            if end is not None:                    # frames still inside the decoder
                with contextlib.suppress(av.error.FFmpegError):
                    take(vin.codec_context.decode(None))
        except av.error.FFmpegError as e:
            warnings.warn(f"{inp}: decoding stopped after frame {summary.frames + len(pending)} "
                          f"({e}); the output holds what decoded")
        flush()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        t = time.perf_counter()
        for pkt in vout.encode():
            dst.mux(pkt)
        t_io["encode"] += time.perf_counter() - t
        dst.close()
        src.close()
        bar.close()
        summary.stage_seconds.update(t_io)
    if summary.frames == 0:
        tmp.unlink(missing_ok=True)
        raise FacepairError(f"no frame could be decoded from {inp}")
    label.sign_video(tmp, out.name)
    tmp.replace(out)
    if interrupted:
        raise Interrupted(f"interrupted: {out} holds the first {summary.frames} frames")


def swap(inp, model_dir, output, opts: SwapOptions | None = None) -> SwapSummary:
    """Swap the faces of an image, a folder of images, or a video into `output` (same kind)."""
    opts = opts or SwapOptions()
    for name, value, choices in (("--mask", opts.mask, blend.MASKS), ("--color", opts.color, blend.COLORS),
                                 ("--blend", opts.blend, blend.BLENDS)):
        if value not in choices:
            raise FacepairError(f"bad {name} '{value}' (choose from {', '.join(choices)})")
    inp, out = Path(inp), Path(output)
    if not inp.exists():
        raise FacepairError(f"input not found: {inp}")
    _check_output(inp, out)
    t0 = time.perf_counter()
    swapper = Swapper(model_dir, opts)
    summary = SwapSummary(output=str(out))
    if inp.is_dir() or is_image(inp):
        _swap_images(swapper, inp, out, summary)
    else:
        if out.suffix.lower() not in (".mp4", ".mov", ".mkv", ".m4v"):
            raise FacepairError(f"video output must be .mp4, .mov, .mkv or .m4v: {out}")
        out.parent.mkdir(parents=True, exist_ok=True)
        _swap_video(swapper, inp, out, summary)
    summary.seconds = time.perf_counter() - t0
    summary.stage_seconds.update(swapper.times)
    return summary
