"""The arrays `facepair evaluate` scores, made from a model and media: held-out faces from face
sets, the model's reconstructions and swaps of them, landmarks and embeddings predicted on
crops, whole source frames, and frames swapped by the real pipeline (swap/pipeline.py)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import FacepairError
from ..faces import align
from ..faces.faceset import differs, load_index, present, read_crop
from ..faces.identity import Embedder
from ..faces.landmarks import Landmarker
from ..media.files import as_list
from ..media.image import is_image, read_image
from ..media.video import iter_video
from ..runtime import to_images, to_tensor
from ..swap.pipeline import SwapSummary, Swapper

LANDMARK_SIDE = 256          # landmarks are predicted on crops upscaled to 256 px (64 px: 4x)


def held_out_faces(folders, files=None, max_faces=128, trained: dict | None = None):
    """(crops uint8 (N,S,S,3), boxes in crop coordinates (N,4), face-set entries) from face sets,
    optionally only the listed files ("<faceset>/faces/NNNNNN.png"), evenly thinned to max_faces;
    `trained`: the faces the model was trained on (state.json's `faces`: size, aligned,
    padding): a face set cut otherwise is refused by name (scored, its figures meant nothing)."""
    trained, folders = trained or {}, as_list(folders or [])
    wanted = None
    if files:
        wanted = {}
        for f in files:
            folder, name = f.rsplit("/faces/", 1)
            wanted.setdefault(folder, set()).add("faces/" + name)
        folders = list(wanted)
    crops, boxes, where = [], [], []
    for folder in folders:
        meta = load_index(Path(folder))
        size = trained.get("size")
        if size is not None and meta["size"] != size:
            raise FacepairError(f"face set {folder} has {meta['size']} px faces; the model takes "
                                f"{size} px (extract with --size {size})")
        if key := differs(meta, trained, ("aligned", "padding")):
            raise FacepairError(f"face set {folder} was extracted with {key} {meta.get(key, True)}"
                                f"; the model was trained on faces with {trained[key]}")
        for e in meta["faces"]:
            if wanted is not None and e["file"] not in wanted[folder]:
                continue
            if (crop := read_crop(folder, e, meta["size"])) is None:
                continue                       # a deleted or damaged crop: skipped, as training does
            x0, y0, x1, y1 = e["bbox"]
            corners = align.map_points(np.array(e["transform"]), np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
            crops.append(crop)
            boxes.append([*corners.min(0), *corners.max(0)])
            where.append(e)
    if not crops:
        raise FacepairError("no faces to evaluate (face sets empty or validation faces missing)")
    keep = np.linspace(0, len(crops) - 1, min(max_faces, len(crops))).round().astype(int)
    return (np.stack([crops[i] for i in keep]), np.array([boxes[i] for i in keep]),
            [where[i] for i in keep])


def training_entries(state: dict, side: str, faces: int) -> list[dict]:
    """`faces` face-set entries of `side`, evenly spread over its training faces (not held out),
    each with its face set's folder (`faceset`); a crop deleted since is left out."""
    held = set(state.get("validation", {}).get(side, []))
    entries = [dict(e, faceset=fs["path"]) for fs in state["facesets"][side]
               for e in present(fs["path"], load_index(Path(fs["path"]))["faces"])
               if f"{fs['path']}/{e['file']}" not in held]
    keep = np.linspace(0, len(entries) - 1, min(faces, len(entries))).round().astype(int)
    return [entries[i] for i in keep] if entries else []


def training_means(state: dict, emb: Embedder, faces: int = 64, frames: bool = True,
                   crops: bool = True) -> dict:
    """Each side's mean dlib embedding over `faces` of its training faces, never the faces being
    scored: with `crops`, {"crops": {"a", "b"}} from the aligned crops (as crop swaps are
    embedded) and, with `frames`, {"frames": {"a", "b"}} from their whole source frames (as
    swapped frames are); "frames" is missing when the training footage has gone."""
    ents = {side: training_entries(state, side, faces) for side in "ab"}
    out = {}
    if crops:
        out["crops"] = {s: embeddings(emb, c=[read_image(Path(e["faceset"]) / e["file"]) for e in es])["c"].mean(0)
                        for s, es in ents.items()}
    if not frames:
        return out
    try:
        out["frames"] = {s: emb.many([emb.chip(f, np.array(es[i]["landmarks"], float))
                                      for i, f in iter_source_frames(es)]).mean(0) for s, es in ents.items()}
    except FileNotFoundError:
        pass
    return out


def run_model(model, faces: np.ndarray, marks: np.ndarray, source: str, to: str, device, amp) -> np.ndarray:
    """Faces of side `source` (and their landmarks in the crops) through the decoder of `to`."""
    out = []
    with torch.no_grad(), amp:
        for i in range(0, len(faces), 64):
            x = to_tensor(faces[i:i + 64]).to(device, memory_format=torch.channels_last)
            out.append(to_images(model.swap(x, to, marks[i:i + 64], source)))
    return np.concatenate(out)


def landmarks_on_crops(lm: Landmarker, crops: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    out = []
    up = max(1.0, LANDMARK_SIDE / crops.shape[1]) if len(crops) else 1.0
    for crop, box in zip(crops, boxes):
        big = cv2.resize(crop, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
        out.append(lm(big, np.asarray(box) * up) / up)
    return np.array(out)


def embeddings(emb: Embedder, **crops) -> dict:
    """{name: (N, 128) dlib embeddings of each crop, upscaled to dlib's chip}."""
    return {k: emb.many([emb.upscaled(c) for c in v]) for k, v in crops.items()}


def iter_source_frames(entries):
    """(index in entries, whole source frame) of each face-set entry (its photo, or its frame of
    the video), streamed: one pass over each source, holding one frame at a time.
    Raises FileNotFoundError for a source that has gone, UnreadableMedia for one that is not
    media, and FacepairError when a video ends before a frame an entry names."""
    by_source: dict = {}
    for i, e in enumerate(entries):
        by_source.setdefault(e["source"], {}).setdefault(e.get("frame", 0), []).append(i)
    for src, wanted in by_source.items():
        path = Path(src)
        if not path.exists():
            raise FileNotFoundError(src)
        if is_image(path):
            frame = read_image(path)
            for i in wanted.get(0, []):
                yield i, frame
            continue
        last, seen = max(wanted), -1
        for n, frame in iter_video(path, only=set(wanted)):
            for i in wanted[n]:
                yield i, frame
            seen = n
        if seen < last:
            raise FacepairError(f"{src} ends before frame {last} of its face set (the video changed "
                                "since extraction)")


def source_frames(entries) -> list[np.ndarray]:
    """The whole source frame of each face-set entry, in the entries' order (held in memory)."""
    frames = [None] * len(entries)
    for i, frame in iter_source_frames(entries):
        frames[i] = frame
    return frames


def swap_frames(swapper: Swapper, lm: Landmarker, frames, entries):
    """Copies of whole frames through the swap pipeline -> (output frames, the 68 landmarks
    predicted on each in its face-set entry's detector box, whether a face was swapped in each)."""
    outs, marks, swapped = [], [], []
    for frame, e in zip(frames, entries):
        out, summary = frame.copy(), SwapSummary()
        swapper.process([out], 0, False, summary)
        outs.append(out), marks.append(lm(out, e["bbox"])), swapped.append(summary.faces_swapped > 0)
    return outs, np.array(marks), np.array(swapped)
