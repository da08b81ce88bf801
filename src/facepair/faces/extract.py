"""The extract stage: images and videos -> detected, landmarked, aligned faces in a face set."""
from __future__ import annotations

import contextlib
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import FacepairError, Interrupted, UnreadableMedia
from ..media.files import as_list
from ..media.image import expand_inputs, is_image, read_image, warn_unread, write_image
from ..media.video import is_video_name, iter_video, prefetch, video_info
from ..stopping import stop_requests
from . import align, faceset
from .detect import largest_first, make_detector
from .identity import Embedder, distance, reference_embeddings
from .landmarks import Landmarker
from .options import (BLUR_SIDE, DEFAULT_MIN_BLUR, DEFAULT_MIN_SIZE, DEFAULT_PADDING, DEFAULT_SIZE,
                      DEFAULT_THRESHOLD, MAX_SIZE, MIN_SIZE)



@dataclass
class ExtractSummary:
    output: str = ""
    inputs: int = 0
    frames_read: int = 0
    faces_kept: int = 0
    frames_without_face: int = 0
    rejected: dict = field(default_factory=lambda: {"too_small": 0, "blurry": 0,
                                                    "not_identity": 0, "not_largest": 0,
                                                    "already_in_set": 0})
    unreadable: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames_read / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return dict(asdict(self), fps=self.fps)

    def __str__(self) -> str:
        rej = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.rejected.items())
        lines = [f"inputs: {self.inputs}   frames read: {self.frames_read} "
                 f"({self.fps:.1f} frames/s)   faces kept: {self.faces_kept}",
                 f"frames without a face: {self.frames_without_face}   rejected: {rej}",
                 f"unreadable files: {len(self.unreadable)}"
                 + "".join(f"\n  - {u}" for u in self.unreadable),
                 f"face set: {self.output}"]
        return "\n".join(lines)


def _frames(files: Sequence[Path], every: int, summary: ExtractSummary, reasons: list) -> Iterator:
    """(source, frame index, RGB frame) over images and videos; unreadable files are counted
    and why each is unreadable appended to `reasons` (one file alone: the error says it)."""
    for path in files:
        try:
            if is_image(path):
                yield path, 0, read_image(path)
            else:
                yield from ((path, i, f) for i, f in iter_video(path, every))
        except UnreadableMedia as e:
            if len(files) > 1:
                warnings.warn(f"skipped: {e}")
            summary.unreadable.append(str(path))
            reasons.append(str(e))


def _expected_frames(files: Sequence[Path], every: int) -> int:
    total = 0
    for path in files:
        if is_image(path):
            total += 1
        else:
            try:
                total += -(-video_info(path)["frames"] // every)
            except UnreadableMedia:
                pass
    return total


def _open_output(out: Path, append: bool, size: int, padding: float, aligned: bool,
                 detector: str) -> tuple[dict, int]:
    """The face set's index to extend and the number of the next face file. A folder holding
    nothing but an empty faces/ (left by an extract into it that found no face) counts as empty."""
    if out.exists() and any(not (p.name == "faces" and p.is_dir() and not any(p.iterdir()))
                            for p in out.iterdir()):
        if not append:
            raise FacepairError(f"output folder is not empty: {out} (use --append to add faces "
                                "to an existing face set)")
        meta = faceset.load_index(out)
        want = {"size": size, "aligned": aligned, "padding": padding}
        if key := faceset.differs(meta, want):
            raise FacepairError(f"cannot append: face set {out} has {key}={meta[key]}, "
                                f"this run has {key}={want[key]}")
        numbers = [int(Path(f["file"]).stem) for f in meta["faces"] if Path(f["file"]).stem.isdigit()]
        return meta, max(numbers, default=-1) + 1
    (out / "faces").mkdir(parents=True, exist_ok=True)
    tpl = align.template(size, padding) if aligned else np.zeros((0, 2))
    return faceset.new_index(size, padding, aligned, detector, tpl), 0


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of a crop's grey image, measured at BLUR_SIDE px (a larger crop
    is area-downscaled first), so --min-blur means the same at every --size."""
    if crop.shape[0] > BLUR_SIDE:
        crop = cv2.resize(crop, (BLUR_SIDE, BLUR_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@contextlib.contextmanager
def _saved(out: Path, meta: dict, summary: ExtractSummary, bar, t0: float):
    """However the loop ends (done, stopped, Ctrl-C, an error), the faces written so far are
    indexed."""
    try:
        yield
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - t0
        if summary.faces_kept or (out / faceset.INDEX).exists():
            faceset.save_index(out, meta)


def extract(inputs, output, *, detector: str = "hog", size: int = DEFAULT_SIZE,
            padding: float = DEFAULT_PADDING, align_faces: bool = True, every: int = 1,
            all_faces: bool = False, identity=None, threshold: float = DEFAULT_THRESHOLD,
            min_size: float = DEFAULT_MIN_SIZE, min_blur: float = DEFAULT_MIN_BLUR,
            detect_size: int = 480, append: bool = False, progress: bool = True) -> ExtractSummary:
    """Find, landmark, align and store the faces of `inputs` (images, folders, videos) in the face
    set folder `output`. Returns an ExtractSummary; raises FacepairError on user errors."""
    if every < 1 or not MIN_SIZE <= size <= MAX_SIZE or not 0 <= padding < 0.5:
        raise FacepairError(f"bad option: need --every >= 1, --size from {MIN_SIZE} to {MAX_SIZE}, "
                            "0 <= --padding < 0.5")
    t0 = time.perf_counter()
    # a folder's pictures and videos (its sidecars, .json or .txt, were each a warning and a line)
    passed: list[Path] = []
    files = expand_inputs(inputs, keep=lambda f: is_image(f) or is_video_name(f), passed=passed)
    warn_unread(passed, " and ".join(str(p) for p in as_list(inputs) if Path(p).is_dir()))
    out = Path(output)
    # a face set inside an input folder: its own crops are not inputs (an --append there read
    # them back as new faces, crops of crops, more at every run)
    where = out.resolve()
    files = [f for f in files if where not in f.resolve().parents]
    if not files:
        raise FacepairError("no input files found")
    created = not out.exists()
    det, landmarker = make_detector(detector, detect_size), Landmarker()
    embedder = Embedder() if identity else None
    refs = reference_embeddings(identity, det, landmarker, embedder) if identity else None
    meta, number = _open_output(out, append, size, padding, align_faces, detector)
    summary = ExtractSummary(output=str(out), inputs=len(files))
    reasons: list[str] = []             # why each unreadable file is (_frames)
    bar = tqdm(total=_expected_frames(files, every), unit="frame", disable=not progress,
               desc="extract", dynamic_ncols=True)
    # SIGTERM (the web app's Stop) as Ctrl-C: finish the frame, keep the faces found, exit 130
    # --append: a frame whose faces the set already holds is skipped (re-running an interrupted
    # extract, as its message advises, doubled every face it had found)
    done = {(f["source"], f.get("frame", 0)) for f in meta["faces"]}
    with stop_requests() as stop, _saved(out, meta, summary, bar, t0):
        for source, index, frame in prefetch(_frames(files, every, summary, reasons)):
            if stop:
                break
            summary.frames_read += 1
            bar.update()
            if done and (str(Path(source).resolve()), index) in done:
                summary.rejected["already_in_set"] += 1
                continue
            boxes = largest_first(det(frame))
            if not boxes:
                summary.frames_without_face += 1
            elif not all_faces and refs is None:
                summary.rejected["not_largest"] += len(boxes) - 1
                boxes = boxes[:1]
            kept_here = 0              # with --identity: every face is checked, the largest match kept
            for box in boxes:
                if not all_faces and kept_here:
                    summary.rejected["not_largest"] += 1
                    continue
                if box[2] - box[0] < min_size:
                    summary.rejected["too_small"] += 1
                    continue
                marks = landmarker(frame, box)
                m = align.align_transform(marks, size, padding) if align_faces \
                    else align.box_transform(box, size)
                crop = align.warp_crop(frame, m, size)
                blur = sharpness(crop)
                if blur < min_blur:
                    summary.rejected["blurry"] += 1
                    continue
                if refs is not None and distance(embedder.from_landmarks(frame, marks), refs)[0] > threshold:
                    summary.rejected["not_identity"] += 1
                    continue
                name = f"faces/{number:06d}.png"
                write_image(out / name, crop)
                number += 1
                kept_here += 1
                summary.faces_kept += 1
                meta["faces"].append({
                    "file": name, "source": str(Path(source).resolve()), "frame": index,
                    "bbox": [round(float(v), 1) for v in box],
                    "landmarks": np.round(marks, 2).tolist(),
                    "transform": np.round(m, 6).tolist(), "blur": round(blur, 1)})
                if summary.faces_kept % 500 == 0:
                    faceset.save_index(out, meta)      # an interrupted run keeps its faces
            bar.set_postfix(faces=summary.faces_kept, refresh=False)
    if stop:
        if summary.faces_kept == 0 and created:
            shutil.rmtree(out, ignore_errors=True)
        raise Interrupted(f"interrupted after {summary.frames_read} frame(s): {summary.faces_kept} "
                          f"face(s) kept in {out} (add more with --append)")
    if summary.faces_kept == 0 and summary.rejected["already_in_set"] and not created:
        return summary             # an --append of what the set holds already: nothing to add
    if summary.faces_kept == 0:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        elif not (out / faceset.INDEX).exists():     # a folder of the user's: as it was
            with contextlib.suppress(OSError):
                (out / "faces").rmdir()
        if summary.frames_read == 0:
            raise FacepairError(reasons[0] if len(files) == 1 and reasons else
                                f"no readable image or video among {len(files)} input file(s)")
        why = "" if not any(summary.rejected.values()) else \
            " kept (" + ", ".join(f"{v} {k}" for k, v in summary.rejected.items() if v) + ")"
        raise FacepairError(f"no face found in {summary.frames_read} frame(s) of "
                            f"{len(files)} input file(s){why}")
    return summary
