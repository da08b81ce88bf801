"""The swap stage: frame -> faces (detect or track, 68 landmarks, smoothed) -> aligned crops ->
shared encoder + target decoder -> colour match -> mask -> blend -> watermark -> output.

Images and folders of images give images; a video gives a video with the same size, frame rate,
frame count and timestamps, and its audio copied as is. Frames stream through in small batches
(constant memory for any length), each held until the few frames after it are known, so that the
landmark smoothing looks both ways (smooth.py).
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np
import torch
from tqdm import tqdm

from ..errors import FacepairError, Interrupted, UnreadableMedia
from ..faces import align
from ..faces.detect import make_detector
from ..faces.faceset import load_index
from ..faces.landmarks import Landmarker
from ..faces.options import DEFAULT_PADDING
from ..media.files import can_write, fresh_file, temp_name, writable
from ..media.image import (IMAGE_EXTS, expand_inputs, is_image, picture_frames, read_alpha, read_image,
                           warn_unread)
from ..media.video import FORMATS, BackgroundWriter, VideoReader, VideoWriter, even_sides, is_video_name, prefetch
from ..model import export
from ..model.presets import DIRECTIONS, REBUILDS
from ..model.store import PRIOR_FILE, load_model, read_tensors, save_tensors, uncalibrated
from ..provenance import credentials, label, verify, watermark
from ..runtime import (autocast, cast_for_inference, model_in_halves, resolve_device,
                       resolve_precision, to_images, to_tensor)
from ..stopping import held_off, stop_requests
from . import compose
from .options import DEFAULT_ENGINE, ENGINES, SwapOptions
from .people import AMBIGUOUS, UNMATCHED, People
from .smooth import Lookahead
from .tracker import FaceTracker
from .window import Window

PRIOR_FACES = 32        # --occlusion auto: training faces that say what the rebuilds normally miss
# --occlusion auto on video: faces rebuilt every this many frames (a rebuild is a second decoder
# pass); a face between takes the union of its neighbours' occlusion maps
OCCLUSION_STRIDE = 2


@dataclass
class SwapSummary:
    output: str = ""
    frames: int = 0
    pictures: bool = False            # frames are pictures (a photo or a folder of them), not video
    faces_swapped: int = 0
    frames_without_face: int = 0
    missed: list = field(default_factory=list)      # video frames (numbers) with no face swapped
    left_out: list = field(default_factory=list)    # video frames (numbers) not in the output: each
                                                    # repeated the timestamp of the one before
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)
    faces_unmasked: int = 0           # faces whose mask --erode wiped whole: none drawn
    faces_unmatched: int = 0          # --identity, --map: faces (per frame) that matched no entry
    faces_ambiguous: int = 0          # --map: faces as near two entries; both pass through
    faces_per_entry: list = field(default_factory=list)   # --map: faces swapped by each entry
    # --occlusion auto: the share of each face's mask kept from the source (what the map took for
    # something in front of the face), the mean over the faces swapped
    kept_share: float = 0.0
    unsigned: int = 0                 # outputs whose C2PA manifest could not be attached (warned)

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds else 0.0

    def to_dict(self):
        return dict({k: v for k, v in asdict(self).items() if k not in ("missed", "left_out")}, fps=self.fps)

    def __str__(self):
        people = ""
        if len(self.faces_per_entry) > 1:
            people = (f"\nper --map entry: {' / '.join(map(str, self.faces_per_entry))} faces; "
                      f"unmatched {self.faces_unmatched}, ambiguous {self.faces_ambiguous} (passed through)")
        elif self.faces_unmatched:
            people = f"\nfaces of other people, passed through: {self.faces_unmatched}"
        kept = "" if self.kept_share < 0.001 else \
            f"\nkept from the source, as in front of the face: {self.kept_share:.1%} of the face on " \
            "average (--occlusion none paints it all)"
        done = (f"pictures: {self.frames} ({self.seconds:.1f} s)   faces swapped: {self.faces_swapped}   "
                f"pictures without a face: {self.frames_without_face}") if self.pictures else \
            (f"frames: {self.frames} ({self.fps:.1f} frames/s)   faces swapped: "
             f"{self.faces_swapped}   frames without a face: {self.frames_without_face}")
        return (f"{done}{people}{kept}\n"
                f"output: {self.output} (labelled synthetic: {label.labels(self.output, self.unsigned)})")


class FaceModel:
    """One trained model as a swap uses it: its crops (size, padding, alignment), the direction's
    sides, and what runs it (ONNX Runtime or torch), with a temporal model's rolling window."""

    def __init__(self, model_dir, opts: SwapOptions, device):
        self.opts, self.device = opts, device
        self.model, self.state = load_model(model_dir, device)
        faces = self.state.get("faces", {})
        self.size = self.model.cfg.size
        self.padding = faces.get("padding", DEFAULT_PADDING)
        self.aligned = faces.get("aligned", True)
        self.source, self.target = {**DIRECTIONS, **REBUILDS}[opts.direction]
        precision = resolve_precision("auto", device)
        self.amp = lambda: autocast(device, precision)    # a context each: halves run at once
        # {id(crop): (crop, code)} where the caller swaps the same crops many times (calibration:
        # one setting of the cue after another; the encoder does not see the cue): each crop is
        # encoded once. The crop is held with its code, so its id names no other array
        self.codes: dict | None = None
        # --occlusion auto: the source's faces also through their own decoder (compose.occlusion);
        # a rebuild (aa, bb) is its own reference
        self.rebuild = opts.occlusion == "auto" and self.source != self.target
        self.engine = self._engine(opts.engine)     # None: the torch model itself
        # ONNX: the rebuild is a graph of its own (the source side rebuilt, as export's aa, bb)
        self.rebuilder = export.OnnxSwap(export.to_onnx(self.model, self.state, self.source * 2)) \
            if self.rebuild and self.engine is not None else None
        if self.engine is None:
            cast_for_inference(self.model, precision)
        if said := uncalibrated(model_dir, self.state):
            warnings.warn(said)
        k = self.model.cfg.context              # a temporal model: a rolling window per face
        self.window = Window(k, self.state.get("clip_stride", {}).get(self.target, 1)) if k else None
        self.prior = self._cached_prior(Path(model_dir)) if self.rebuild else None

    @property
    def halves(self) -> bool:
        """Whether a batch may run as two halves at once (forward's `pool`): torch, each face
        on its own (not ONNX, not a temporal model's window)."""
        return self.engine is None and self.window is None

    def _cached_prior(self, model_dir: Path) -> np.ndarray | None:
        """The occlusion prior, kept in the model folder (PRIOR_FILE): working it out takes about
        0.5 s at every swap's start, 2 % of a 30 s video's swap. The file names what it was made
        from (checkpoint and its weights file's size and time, the source's face sets,
        PRIOR_FACES, engine, device, precision); any other, a damaged one or anything but a
        plain file (a link is not followed) is worked out again and replaced, and a folder that
        cannot be written is no error."""
        weights = model_dir / str(self.state.get("checkpoint")) / "model.safetensors"
        with contextlib.suppress(OSError):
            made = weights.stat()
            weights = f"{made.st_size} bytes, modified {made.st_mtime_ns} ns"   # which weights, cheaply
        key = json.dumps({"checkpoint": self.state.get("checkpoint"), "weights": str(weights),
                          "side": self.source, "facesets": [fs.get("fingerprint") for fs in
                                                            self.state.get("facesets", {}).get(self.source, [])],
                          "faces": PRIOR_FACES, "engine": "torch" if self.engine is None else "onnx",
                          "device": self.device.type, "precision": resolve_precision("auto", self.device)},
                         sort_keys=True)
        path = model_dir / PRIOR_FILE.format(side=self.source)
        with contextlib.suppress(FacepairError, KeyError, OSError, TypeError, ValueError):
            found = os.lstat(path)        # a plain file of the folder's own: no link, no device
            if stat.S_ISREG(found.st_mode) and found.st_size < 16 * 2 ** 20:
                tensors, meta = read_tensors(path)
                prior = tensors["prior"].numpy()
                if meta.get("made_from") == key and prior.dtype == np.float32 and prior.ndim == 2 \
                        and prior.shape[0] == prior.shape[1] and np.isfinite(prior).all():
                    return prior
        prior = self._occlusion_prior()
        if prior is not None:
            with contextlib.suppress(OSError):
                save_tensors(path, {"prior": torch.from_numpy(prior)}, {"made_from": key})
        return prior

    def _engine(self, name: str | None):
        """What runs the model: None for torch, or an ONNX Runtime session of the exported
        graph. name None: DEFAULT_ENGINE where it applies (the CPU, a preset that exports,
        ONNX Runtime installed), else torch; an engine asked for by name that cannot run is an
        error."""
        if name is not None and name not in ENGINES:
            raise FacepairError(f"bad --engine '{name}' (choose from {', '.join(ENGINES)})")
        why = export.exportable(self.model) or (None if export.onnxruntime_available() else
                                                "ONNX Runtime is not installed (pip install 'facepair[onnx]')")
        if name == "onnx" and why:
            raise FacepairError(f"--engine onnx: {why}")
        if name is None:
            name = DEFAULT_ENGINE if not why and self.device.type == "cpu" else "torch"
        if name == "torch":
            return None
        return export.OnnxSwap(export.to_onnx(self.model, self.state, self.opts.direction))

    def _occlusion_prior(self, faces: int = PRIOR_FACES) -> np.ndarray | None:
        """What this model's rebuilds of the source person normally miss, per crop pixel: the
        median of compose.disagreement over `faces` of the source side's training faces (evenly
        spread), for compose.occlusion. None where the face sets have gone (the mask then
        judges each face by itself alone)."""
        entries = []
        try:
            for fs in self.state.get("facesets", {}).get(self.source, []):
                entries += [(Path(fs["path"]), e) for e in load_index(Path(fs["path"]))["faces"]]
        except FacepairError:
            return None
        if not entries:
            return None
        jobs = []
        for i in np.linspace(0, len(entries) - 1, min(faces, len(entries))).round().astype(int):
            folder, e = entries[i]
            try:
                crop = read_image(folder / e["file"])
            except (UnreadableMedia, OSError):
                return None
            if crop.shape[:2] != (self.size, self.size):
                return None
            marks = align.map_points(np.array(e["transform"], float), np.array(e["landmarks"], float))
            jobs.append((0, None, crop, None, marks, 0, None))
        d = []
        for k in range(0, len(jobs), 8):
            batch = jobs[k:k + 8]
            _, rebuilt = self.forward(batch, None, range(len(batch)))
            for i, (_, _, crop, _, marks, *_) in enumerate(batch):
                dis, inside = compose.disagreement(crop, rebuilt[i],
                                                   compose.face_mask("hull", marks, self.size, 1.0, 0.0))
                d.append(np.where(inside, dis, np.nan))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")             # pixels outside every hull: all-NaN
            prior = np.nan_to_num(np.nanmedian(np.stack(d), 0)).astype(np.float32)
        return prior

    def transform(self, marks: np.ndarray) -> np.ndarray:
        """2x3 frame -> crop transform of a face with these landmarks, cut as in training."""
        return align.align_transform(marks, self.size, self.padding) if self.aligned else \
            align.box_transform((*marks.min(0), *marks.max(0)), self.size)

    def _encode(self, faces: torch.Tensor, crops: list) -> torch.Tensor:
        """The faces' code (the shared encoder's output), from self.codes where kept."""
        if self.codes is None:
            return self.model.encode(faces)
        new = [k for k, c in enumerate(crops) if id(c) not in self.codes]
        if new:
            for k, code in zip(new, self.model.encode(faces[new])):
                self.codes[id(crops[k])] = (crops[k], code)
        return torch.stack([self.codes[id(c)][1] for c in crops])

    def forward(self, jobs: list, first_index: int | None, rebuild=(), pool=None) -> tuple:
        """The jobs' crops through the model -> (swapped faces, uint8 (N, S, S, 3); the crops
        of the jobs numbered in `rebuild` (with --occlusion auto) rebuilt by the source's own
        decoder from the same code, {job number: uint8 (S, S, 3)}). `pool`: a thread that takes
        the second half of the jobs while this one does the first (runtime.model_in_halves;
        where `halves` allows)."""
        if pool is not None and len(jobs) > 1 and self.halves:
            h, keys = (len(jobs) + 1) // 2, list(rebuild)
            later = pool.submit(self.forward, jobs[h:], first_index, [k - h for k in keys if k >= h])
            out, rebuilt = self.forward(jobs[:h], first_index, [k for k in keys if k < h])
            out2, rebuilt2 = later.result()
            return np.concatenate([out, out2]), {**rebuilt, **{k + h: v for k, v in rebuilt2.items()}}
        # a landmark cue: the mouth as found in this frame, placed by its own alignment as in
        # training. Smoothed landmarks are the face's position averaged over neighbouring frames,
        # which steadies the head but dulls the lips (the previous version's lagging One-Euro
        # filter: mouth r 0.66 from them on obama_clip2, README, the cue)
        crops, marks = np.stack([j[2] for j in jobs]), np.stack([j[4] for j in jobs])
        keys = list(rebuild) if self.rebuild else []
        rebuilt = None
        if self.engine is not None:                 # ONNX Runtime (float32, NCHW)
            faces = crops.transpose(0, 3, 1, 2).astype(np.float32) / 255
            out = torch.from_numpy(self.engine(faces, marks))
            if keys:
                rebuilt = torch.from_numpy(self.rebuilder(faces[keys], marks[keys]))
        else:
            with torch.no_grad(), self.amp():
                faces = to_tensor(crops).to(self.device, memory_format=torch.channels_last)
                code = self._encode(faces, [j[2] for j in jobs])   # one encoding for both decoders
                x = self.model.inputs(faces, self.target, marks, self.source, code=code)
                history = None
                if self.window is not None and first_index is not None:
                    history = torch.stack([self.window.history(first_index + j[0], j[3], xi, j[6])
                                           for j, xi in zip(jobs, x)])
                out = self.model.decode(x, self.target, history=history).clamp(0, 1)
                if keys:               # the source's own decoder, from the same code
                    x = self.model.inputs(faces[keys], self.source, marks[keys], self.source, code=code[keys])
                    rebuilt = self.model.decode(x, self.source).clamp(0, 1)
        return to_images(out), {} if rebuilt is None else dict(zip(keys, to_images(rebuilt)))


class Swapper:
    """Swaps the faces of frames in place: faces found and tracked (tracker.py), each given to its
    model (people.py, with --map; else all to the one), aligned, through the shared encoder and
    the target's decoder, then colour-matched, masked and blended back (compose.py)."""

    def __init__(self, model_dir, opts: SwapOptions):
        if opts.direction not in DIRECTIONS and opts.direction not in REBUILDS:
            raise FacepairError(f"bad --direction '{opts.direction}' (a2b or b2a)")
        self.opts = opts
        self.device = resolve_device(opts.device)
        detector, landmarker = make_detector(opts.detector, opts.detect_size), Landmarker()
        entries = list(opts.maps) if opts.maps else [(opts.identity, model_dir)]
        self.models = [FaceModel(md, opts, self.device) for _, md in entries]
        refs = [ref for ref, _ in entries]
        people = None if refs == [None] else People(refs, detector, landmarker, opts.threshold)
        self.tracker = FaceTracker(detector, landmarker, opts.detect_every, people)
        self.smoother = Lookahead.for_video(30.0, opts.smooth)
        self.stage_times = {"model": 0.0, "blend": 0.0}
        self.pool: ThreadPoolExecutor | None = None     # in_halves: the second half's thread

    @contextlib.contextmanager
    def in_halves(self):
        """Inside: the models' batches run as two halves at once (runtime.model_in_halves)."""
        if not any(fm.halves for fm in self.models):
            yield                                       # ONNX, a temporal window: whole batches
            return
        with model_in_halves(self.device) as parts, \
                ThreadPoolExecutor(1, "facepair-model") if parts > 1 else contextlib.nullcontext() as pool:
            self.pool = pool
            try:
                yield
            finally:
                self.pool = None

    # the one model of a swap without --map (calibration and evaluation drive it directly)
    model = property(lambda self: self.models[0].model)
    target = property(lambda self: self.models[0].target)
    window = property(lambda self: self.models[0].window)

    @property
    def times(self) -> dict:
        return {**self.tracker.times, **self.stage_times}

    # -- frames ------------------------------------------------------------------------------
    def process(self, frames: list[np.ndarray], first_index: int, video: bool, summary: SwapSummary):
        """Swap the faces of a list of frames in place: stills each alone, or video frames as
        one whole clip (smoothed along the list)."""
        if not video:
            jobs = self.find(frames, first_index, summary)
            done = {j[0] for j in jobs}
            summary.missed += [first_index + k for k in range(len(frames)) if k not in done]
            self.render(frames, jobs, summary)
            return
        ready = [r for k, f in enumerate(frames) for r in self.stream(first_index + k, f, None, summary)]
        self.render_video(ready + self.smoother.flush(), summary)

    def faces(self, frame: np.ndarray, index: int, video: bool, summary: SwapSummary,
              ahead: tuple | None = None) -> list:
        """The faces of one frame to swap: [(track, landmarks as found)]; each track's `entry`
        is the model that swaps it. `ahead`: the tracker's work on this frame done ahead in
        another thread (FaceTracker.ahead)."""
        found = self.tracker.landmarks(frame, index, video, ahead)
        if not found:
            summary.frames_without_face += 1
        summary.faces_unmatched += sum(tr.entry == UNMATCHED for tr in found)
        summary.faces_ambiguous += sum(tr.entry == AMBIGUOUS for tr in found)
        return [(tr, tr.marks) for tr in found if isinstance(tr.entry, int)]

    def find(self, frames: list[np.ndarray], first_index: int, summary: SwapSummary) -> list:
        """Stills: the faces to swap, each frame alone (see `job`)."""
        return [self.job(k, frame, marks, marks, tr.entry) for k, frame in enumerate(frames)
                for tr, marks in self.faces(frame, first_index + k, False, summary)]

    def stream(self, index: int, frame: np.ndarray, payload, summary: SwapSummary,
               ahead: tuple | None = None) -> list:
        """Video: find the faces of frame `index` and hold it for the smoothing (smooth.py);
        gives the frames now ready, in order: [(frame number, (frame, payload, entries), faces)]."""
        faces = self.faces(frame, index, True, summary, ahead)
        return self.smoother.push(index, (frame, payload, [(tr.entry, tr) for tr, _ in faces]), faces)

    def start_video(self, fps: float):
        """A new video at this frame rate: fresh tracks and smoothing."""
        self.tracker.reset()
        self.smoother = Lookahead.for_video(fps, self.opts.smooth)

    def render_video(self, ready: list, summary: SwapSummary):
        """Frames `stream` gave (consecutive numbers) through `render`."""
        if not ready:
            return
        frames = [r[1][0] for r in ready]
        summary.missed += [r[0] for r in ready if not r[2]]
        jobs = [self.job(k, r[1][0], smoothed, found, entry, track)
                for k, r in enumerate(ready) for (smoothed, found), (entry, track) in zip(r[2], r[1][2])]
        self.render(frames, jobs, summary, ready[0][0])

    def job(self, k: int, frame: np.ndarray, marks: np.ndarray, found: np.ndarray, entry: int = 0,
            track=None) -> tuple:
        """One face to swap: (its frame's place in the list, frame -> crop transform, aligned
        crop, the 68 landmarks it is aligned and pasted by (smoothed on video), the landmarks
        found in this frame in crop coordinates of their own alignment (a cue model's cue), the
        entry whose model swaps it, its tracker.Track on video (None: a still))."""
        fm = self.models[entry]
        m = fm.transform(marks)
        own = m if found is marks else fm.transform(found)      # stills, --no-smooth: one
        return k, m, align.warp_crop(frame, m, fm.size), marks, align.map_points(own, found), entry, track

    def render(self, frames: list[np.ndarray], jobs: list, summary: SwapSummary,
               first_index: int | None = None):
        """The faces (`job`s) through their models, blended into their frames in place.
        first_index: the video frame number of frames[0] (None: stills, each face alone)."""
        for entry, fm in enumerate(self.models):
            mine = [j for j in jobs if j[5] == entry]
            if not mine:
                continue
            t = time.perf_counter()
            swapped, rebuilt = fm.forward(mine, first_index, rebuilds(mine, first_index) if fm.rebuild else (),
                                          self.pool)
            self.stage_times["model"] += time.perf_counter() - t
            self._blend(frames, mine, swapped, rebuilt, fm, summary)
            if len(self.models) > 1:
                summary.faces_per_entry = summary.faces_per_entry or [0] * len(self.models)
                summary.faces_per_entry[entry] += len(mine)

    def hull(self, job: tuple, size: int) -> np.ndarray:
        """A face's --mask in crop space (float32 in [0, 1]), the outer limit of what is pasted."""
        o, (_, m, _, marks, *_) = self.opts, job
        return compose.face_mask(o.mask, align.map_points(m, marks), size, o.erode, o.feather)

    def mask(self, job: tuple, size: int, rebuilt: np.ndarray | None = None) -> np.ndarray:
        """One face's mask in crop space (float32 in [0, 1]): --mask, less (given the face's
        rebuild by the source's own decoder) what the rebuild cannot explain (compose.occlusion)."""
        mask = self.hull(job, size)
        if rebuilt is not None:
            mask *= 1 - compose.occlusion(job[2], rebuilt, mask, self.models[job[5]].prior)
        return mask

    def _blend(self, frames: list[np.ndarray], jobs: list, swapped: np.ndarray, rebuilt: dict,
               fm: FaceModel, summary: SwapSummary):
        """The swapped faces colour-matched (by the face's pixels alone), masked and blended
        into their frames in place. `rebuilt`: {job number: rebuild} (--occlusion auto); a
        face without one takes the union of the occlusion maps of its neighbours that have one."""
        t = time.perf_counter()
        o = self.opts
        masks = [self.hull(job, fm.size) for job in jobs]
        whole = [float(m.sum()) for m in masks]
        if fm.rebuild:
            occ = {n: compose.occlusion(jobs[n][2], r, masks[n], fm.prior) for n, r in rebuilt.items()}
            for n, mask in enumerate(masks):
                near = [occ[i] for i in ([n] if n in occ else neighbours(jobs, n, occ))]
                if near:
                    mask *= 1 - np.maximum.reduce(near)
        for (k, m, crop, marks, *_), face, mask, full in zip(jobs, swapped, masks, whole):
            if full == 0:             # --erode as wide as the face: nothing drawn, none counted
                summary.faces_unmasked += 1
                continue
            face = compose.match_color(face, crop, mask, o.color,      # skin needs the landmarks
                                       align.map_points(m, marks) if o.color == "skin" else None)
            compose.paste(frames[k], face, mask, m, o.blend)
            summary.faces_swapped += 1
            kept = 1 - float(mask.sum()) / full
            summary.kept_share += (kept - summary.kept_share) / summary.faces_swapped
        self.stage_times["blend"] += time.perf_counter() - t


# ---------------------------------------------------------------------------------------------
def neighbours(jobs: list, n: int, among) -> list[int]:
    """The jobs in `among` (numbers) that show job n's face within OCCLUSION_STRIDE - 1 frames:
    the same face as the tracker followed it (its Track), so never another face that sits where
    it sat across a scene cut (a face in the last frame before a cut took the occlusion map of
    the next shot's face in its place: on test_map's video, 0.86 grey levels of one face moved)."""
    k, track = jobs[n][0], jobs[n][6]
    return [i for i in among if i != n and abs(jobs[i][0] - k) < OCCLUSION_STRIDE
            and track is not None and jobs[i][6] is track]


def rebuilds(jobs: list, first_index: int | None) -> list[int]:
    """Which of one model's jobs are rebuilt for their occlusion maps (--occlusion auto): every
    face of stills; on video the faces of every OCCLUSION_STRIDE-th frame, and any other face
    with no such neighbour to borrow from (neighbours)."""
    if first_index is None:
        return list(range(len(jobs)))
    keys = [n for n, j in enumerate(jobs) if j[0] % OCCLUSION_STRIDE == 0]
    lone = [n for n, j in enumerate(jobs) if j[0] % OCCLUSION_STRIDE and not neighbours(jobs, n, keys)]
    return sorted(keys + lone)


VIDEO_OUTPUTS = tuple(FORMATS)        # the containers VideoWriter writes
NO_FACE_HINT = "try --detector cnn, or --detect-size 0 for a small face in a large frame"


def _check_output(inp: Path, out: Path):
    """What the input is, by its name, and an output of the same kind that `verify` reads back,
    before any work (a picture written as .gif or .psd, or PNG bytes named .mp4, was labelled
    but unreadable to verify, or failed after the swap)."""
    if inp.is_dir():
        if is_image(out) or is_video_name(out):
            raise FacepairError(f"a folder of pictures is swapped into a folder, not into a file: {out}")
    elif is_image(inp):
        if out.is_dir():
            raise FacepairError(f"picture output is a folder: {out}")
        if not is_image(out):
            raise FacepairError(f"picture output must be {', '.join(sorted(IMAGE_EXTS))}: {out}")
    elif not is_video_name(inp):
        raise FacepairError(f"not a picture or video facepair reads (by its name): {inp}")
    elif out.suffix.lower() not in VIDEO_OUTPUTS:
        raise FacepairError(f"video output must be {', '.join(VIDEO_OUTPUTS[:-1])} or {VIDEO_OUTPUTS[-1]}: {out}")
    elif out.is_dir():
        raise FacepairError(f"video output is a folder: {out}")
    # the same file by whatever name: a link, or another case on a file system that ignores case
    if out.exists() and inp.exists() and os.path.samefile(out, inp):
        raise FacepairError(f"output would overwrite the input: {out}")
    if inp.is_dir() and out.exists() and any(os.path.samefile(out, p) for p in expand_inputs([inp])):
        raise FacepairError(f"output would overwrite an input: {out}")
    can_write(out, folder=inp.is_dir())       # before the work, not after it


def _nothing_swapped(summary: SwapSummary, inp: Path) -> str:
    """Why no face of a picture or video was swapped (then nothing is written: the input as it
    was, labelled synthetic, would be a false label)."""
    if summary.frames_without_face == summary.frames:
        where = f"any of the {summary.frames} frames of {inp}" if summary.frames > 1 else str(inp)
        return f"no face found in {where}: nothing written ({NO_FACE_HINT})"
    if summary.faces_unmatched or summary.faces_ambiguous:
        return (f"no face in {inp} matched the --identity or --map photos ({summary.faces_unmatched} "
                f"matched none, {summary.faces_ambiguous} two at once): nothing written")
    if summary.faces_unmasked:
        return (f"the mask of every face found in {inp} was empty (--erode as wide as the face): "
                "nothing written (give a smaller --erode)")
    return f"no face of {inp} could be swapped: nothing written"


def _swap_images(swapper: Swapper, inp: Path, out: Path, summary: SwapSummary):
    folder = inp.is_dir()      # (an output that is the input itself: refused by _check_output)
    found = expand_inputs([inp])
    files = [f for f in found if is_image(f)]
    videos = [f for f in found if is_video_name(f)]
    if videos:                 # a folder's videos are not swapped: said, not passed over in silence
        warnings.warn(f"{len(videos)} video(s) in {inp} not swapped (a folder swap takes its pictures; "
                      f"swap each video on its own): {videos[0].relative_to(inp)}{' ...' if len(videos) > 1 else ''}")
    warn_unread(found, inp)
    if folder:                 # an output folder inside the input: its swaps are not swapped again
        where = out.resolve()
        files = [f for f in files if where not in f.resolve().parents]
    if not files:
        raise FacepairError(f"no images in {inp}")
    if folder:
        out.mkdir(parents=True, exist_ok=True)
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
        if (n := picture_frames(f)) > 1:        # its animation was lost without a word
            warnings.warn(f"{f} holds {n} pictures (an animation, or pages): only the first is "
                          "swapped and written (give an animation as a video)")
        swapper.process([frame], 0, False, summary)
        summary.frames += 1
        if not folder and not summary.faces_swapped:     # (a folder's pass through, labelled)
            raise FacepairError(_nothing_swapped(summary, f))
        target = out / f.relative_to(inp) if folder else out
        target.parent.mkdir(parents=True, exist_ok=True)
        summary.unsigned += not label.write_image(target, frame, alpha=read_alpha(f, frame.shape[:2]))
    if summary.frames == 0:
        raise FacepairError(f"no readable image in {inp}")


def _swap_video(swapper: Swapper, inp: Path, out: Path, summary: SwapSummary):
    """Decode, swap in batches, watermark and encode frame by frame (constant memory), the audio
    copied; written to a hidden partial file, signed, then renamed. Ctrl-C or SIGTERM keeps a
    playable file of the frames done."""
    out = writable(out)
    src = VideoReader(inp, swapper.opts.duration)
    swapper.start_video(src.fps)
    tmp = out.with_name(f".{temp_name(out.name)}.partial{out.suffix}")
    try:            # a new file at the partial name: a link planted there is not written through
        writer = VideoWriter(fresh_file(tmp), src, swapper.opts.crf, comment=label.TAG)
    except (av.error.FFmpegError, OSError) as e:
        src.close()
        tmp.unlink(missing_ok=True)
        raise FacepairError(f"cannot write {out}: {e}") from None
    # how far the reader (items: frames and audio packets) and the writer (frames) may run
    # ahead of or behind the faces' work: enough to even out the model's bursts (a batch at a
    # time), within about 128 MB each of pictures, RGB and decoded (1.1x the frames/s on the
    # 2-core Xeon: results.md); 32 at 720p, 14 at 1080p, 8 at the least (as before)
    slack = max(8, min(32, (128 << 20) // (9 * src.video.width * src.video.height // 2 or 1)))
    # the watermark and the encoder run in a thread of their own, beside the faces' work
    mark = label.marker(yuv420=True)
    dst = BackgroundWriter(writer, lambda rgb: mark(even_sides(rgb)), depth=slack)
    bar = tqdm(total=src.total, unit="frame", disable=not swapper.opts.progress, desc="swap",
               dynamic_ncols=True)
    t_io = {"decode": 0.0}
    ready: list = []            # frames the smoothing has let go: (number, (rgb, av frame), faces)
    decoded = 0

    def flush():
        if not ready:
            return
        swapper.render_video(ready, summary)
        for _, (rgb, f, _), _ in ready:
            dst.write(rgb, like=f)
        summary.frames += len(ready)
        bar.update(len(ready))
        ready.clear()

    # Ctrl-C and SIGTERM: finish the batch under way, then close a playable file
    requests = contextlib.ExitStack()
    stop = requests.enter_context(stop_requests())
    interrupted, failed, finished = False, None, False
    # decoding, the RGB conversion and the detector's run on every few frames in a thread of
    # their own too (prefetch; dlib's detector lets the other thread run: 1.9x on two threads)
    look = swapper.tracker.ahead()

    def read():                # (src.frames: the video frames it has given, this one included)
        for kind, item in src:
            rgb = src.picture(item) if kind == "video" else None
            yield kind, item, rgb, None if rgb is None else look(src.frames - 1, rgb)

    items = prefetch(read(), depth=slack)
    try:
        with swapper.in_halves():     # the model's batches as two halves, beside the other threads
            t = time.perf_counter()
            for kind, item, rgb, ahead in items:
                if kind == "audio":
                    dst.copy(item)
                    continue
                t_io["decode"] += time.perf_counter() - t          # waiting for the reader
                ready += swapper.stream(decoded, rgb, item, summary, ahead)
                decoded += 1
                if len(ready) >= swapper.opts.batch:
                    flush()
                if stop:
                    break
                t = time.perf_counter()
            ready += swapper.smoother.flush()          # the frames held for the smoothing
            flush()
        interrupted, finished = bool(stop), True
    except KeyboardInterrupt:
        interrupted = finished = True
    except (av.error.FFmpegError, OSError) as e:     # the output could not be written (disk full...)
        failed = e
    finally:
        items.close()                 # the reader stops before its file closes (else: a crash)
        requests.close()
        with held_off() as late:      # a Ctrl-C now (a second one, say) lost the whole file
            try:
                dst.close()
            except (av.error.FFmpegError, OSError) as e:
                failed = failed or e
        interrupted = interrupted or bool(late)
        summary.left_out = list(writer.left_out)
        t_io["encode"] = dst.busy             # watermark + encode, in the writer's thread
        src.close()
        bar.close()
        summary.stage_seconds.update(t_io)
        if not finished and failed is None:           # any other error: no partial file left
            tmp.unlink(missing_ok=True)
    if failed is not None:
        tmp.unlink(missing_ok=True)
        raise FacepairError(f"cannot write {out}: {failed}")
    if summary.frames == 0:
        tmp.unlink(missing_ok=True)
        raise FacepairError(f"no frame could be decoded from {inp}")
    if not summary.faces_swapped and not interrupted:
        tmp.unlink(missing_ok=True)        # the source as it was, yet labelled synthetic: not written
        raise FacepairError(_nothing_swapped(summary, inp))
    crf = swapper.opts.crf
    if crf > SwapOptions.crf and not interrupted:
        # a --crf raised past the default can quantise the mark away (3 s of a 256 px clip: z 12.0
        # at the default 18, 4.0 at 23 on one clip; the 720p address 10.6 at 35, 5.7 at 40;
        # found at 8): read back as `verify` reads it, or the --crf was a switch that took it off
        mark = verify.public_mark(tmp)
        if mark is not None and not mark.found:
            tmp.unlink(missing_ok=True)
            raise FacepairError(f"at --crf {crf} the watermark does not survive the encoding of "
                                f"{inp} (read back at z {mark.z:.1f}, found at {watermark.Z_MIN:g}): "
                                f"nothing written; use a lower --crf (the default {SwapOptions.crf} keeps it)")
    with held_off() as late:          # (likewise while it is signed and put in place)
        summary.unsigned += not label.sign_video(tmp, out.name)
        with open(tmp, "rb+") as f:   # on the disk before it takes the output's name, as pictures
            os.fsync(f.fileno())
        tmp.replace(out)
    if interrupted or late:
        raise Interrupted(f"interrupted: {out} holds the first {summary.frames} frames")


def swap(inp, model_dir, output, opts: SwapOptions | None = None) -> SwapSummary:
    """Swap the faces of an image, a folder of images, or a video into `output` (same kind)."""
    opts = opts or SwapOptions()
    opts.check()
    inp, out = Path(inp), Path(output)
    if not inp.exists():
        raise FacepairError(f"input not found: {inp}")
    _check_output(inp, out)
    credentials.ensure_identity()             # a broken signing identity stops us before any work
    t0 = time.perf_counter()
    swapper = Swapper(model_dir, opts)
    summary = SwapSummary(output=str(out), pictures=inp.is_dir() or is_image(inp))
    if summary.pictures:
        _swap_images(swapper, inp, out, summary)
    else:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FacepairError(f"cannot make the output folder {out.parent}: {e}") from None
        _swap_video(swapper, inp, out, summary)
    summary.seconds = time.perf_counter() - t0
    summary.stage_seconds.update(swapper.times)
    return summary
