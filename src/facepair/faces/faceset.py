"""The on-disk face set: FACESET_DIR/faces/NNNNNN.png + FACESET_DIR/faceset.json.

faceset.json (versioned): {"format": "facepair-faceset", "version": 1, "size", "padding", "aligned",
"detector", "template" (51 [x, y] crop-pixel points, for landmarks 17-67), "faces": [entry...]};
each entry: file (relative), source (path), frame (index), bbox [x0, y0, x1, y1], landmarks
(68 [x, y], frame coordinates), transform (2x3, frame -> crop coordinates), blur (variance of
the crop's Laplacian, measured on the crop at 64 px; older versions measured it at the crop's own
size, which is the same for 64 px crops). Other tools read `faces`, `landmarks` and `transform`: keep them.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import FacepairError, UnreadableMedia
from ..media.files import atomic_write_json, read_json
from ..media.image import read_image
from . import align
from .options import MAX_SIZE, MIN_SIZE

FORMAT = "facepair-faceset"
VERSION = 1
INDEX = "faceset.json"


def present(folder: Path, faces: list) -> list:
    """The index entries whose crop is still there (one deleted by hand is left out)."""
    return [e for e in faces if (Path(folder) / e["file"]).is_file()]


def load_index(folder: Path) -> dict:
    folder = Path(folder)
    index = folder / INDEX
    if not folder.exists():
        raise FacepairError(f"face set not found: {folder}")
    if not index.exists():
        raise FacepairError(f"not a face set (no {INDEX}): {folder}")
    meta = read_json(index)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("faces"), list) \
            or not isinstance(meta.get("version", 0), int):
        raise FacepairError(f"not a facepair face set: {index}")
    if meta.get("version", 0) > VERSION:
        raise FacepairError(f"{index} is format version {meta['version']}; this facepair reads "
                            f"up to {VERSION} (upgrade facepair)")
    for face in meta["faces"]:          # a crafted index could name files elsewhere (remove deletes them)
        if not isinstance(face, dict) or not own_crop(face.get("file")):
            raise FacepairError(f"not a facepair face set: {index} names a file outside its faces/ folder")
    bad = _bad_field(meta)
    if bad:
        raise FacepairError(f"damaged face set index {index}: {bad} (extract the face set again)")
    return meta


def _shaped(value, shape) -> bool:
    """Whether a JSON value is an array of finite numbers of `shape` (None: any length, and
    then [] too: a --no-align face set's template)."""
    try:
        a = np.asarray(value, float)
    except (TypeError, ValueError):
        return False
    if shape[0] is None and a.shape == (0,):
        return True
    return a.ndim == len(shape) and all(n is None or n == m for n, m in zip(shape, a.shape)) \
        and bool(np.isfinite(a).all())


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


# what the stages read of an index, checked when it loads: a hand-edited or damaged index is one
# line naming the field, not an error deep inside training or a swap
HEAD = {"size": lambda v: isinstance(v, int) and MIN_SIZE <= v <= MAX_SIZE,
        "padding": _number, "aligned": lambda v: isinstance(v, bool),
        "template": lambda v: _shaped(v, (None, 2))}
ENTRY = {"source": lambda v: isinstance(v, str), "frame": lambda v: isinstance(v, int),
         "bbox": lambda v: _shaped(v, (4,)), "landmarks": lambda v: _shaped(v, (68, 2)),
         "transform": lambda v: _shaped(v, (2, 3)), "blur": lambda v: v is None or _number(v)}


def bad_geometry(meta: dict) -> str | None:
    """The first of an index's crop geometry fields (size, padding, aligned, template; a model's
    state.json keeps them too) that is missing or of the wrong kind, in words (None: none)."""
    for key, ok in HEAD.items():
        if key not in meta or not ok(meta[key]):
            return f"bad or missing '{key}'"
    return None


def _bad_field(meta: dict) -> str | None:
    """The first field of an index that is missing or of the wrong kind, in words (None: none)."""
    if bad := bad_geometry(meta):
        return bad
    for i, face in enumerate(meta["faces"]):
        for key, ok in ENTRY.items():
            if key in face and not ok(face[key]) or key not in face and key not in ("frame", "blur"):
                return f"bad or missing '{key}' in face {i} ({face['file']})"
    return None


def own_crop(name) -> bool:
    """A face entry's `file` as extract writes it: faces/<name>, nothing above or beside it."""
    if not isinstance(name, str) or "\\" in name or "\0" in name:
        return False
    parts = PurePosixPath(name).parts
    return len(parts) == 2 and parts[0] == "faces" and parts[1] not in (".", "..")


def save_index(folder: Path, meta: dict) -> None:
    atomic_write_json(Path(folder) / INDEX, meta)


def new_index(size: int, padding: float, aligned: bool, detector: str, template) -> dict:
    return {"format": FORMAT, "version": VERSION, "size": size, "padding": padding,
            "aligned": aligned, "detector": detector,
            "template": np.round(np.asarray(template), 4).tolist(), "faces": []}


def differs(meta: dict, want: dict, keys=("size", "aligned", "padding")) -> str | None:
    """The first of `keys` in which a face set's index `meta` was cut otherwise than `want` (a
    run's options, or a model's record of the faces it trained on: state.json's `faces`), the
    padding only where `want` is aligned (a box crop has none); None where it was cut alike."""
    for key in keys:
        if key in want and meta.get(key, True) != want[key] and (key != "padding" or want.get("aligned", True)):
            return key
    return None


def read_crop(folder: Path, face: dict, size: int | None = None) -> np.ndarray | None:
    """A face's crop, or None where it was deleted or damaged since the index named it (or is not
    `size` px): every stage passes over it."""
    try:
        img = read_image(Path(folder) / face["file"])
    except UnreadableMedia:
        return None
    return None if size is not None and img.shape[:2] != (size, size) else img


def fingerprint(meta: dict) -> str:
    """A short hash of a face set's index: tells a resumed training run its data changed."""
    return hashlib.sha256(json.dumps(meta["faces"], sort_keys=True).encode()).hexdigest()[:16]


def load_faces(folders: list[Path], size: int | None = None) -> tuple[np.ndarray, list[dict], list[dict]]:
    """All faces of several face sets: (N, S, S, 3) uint8 RGB, their entries, and a summary per
    folder (path, count, fingerprint). All sets must share one crop size (and `size` if given)."""
    images, entries, sets = [], [], []
    for folder in (Path(f).resolve() for f in folders):   # absolute: state.json works from anywhere
        meta = load_index(folder)
        if size is None:
            size = meta["size"]
        if meta["size"] != size:
            raise FacepairError(f"face set {folder} has {meta['size']} px faces, expected {size} px")
        n = 0
        for face in meta["faces"]:
            if (img := read_crop(folder, face, size)) is None:
                continue                       # a deleted or damaged crop: skip it
            images.append(img)
            entries.append(dict(face, faceset=str(folder)))
            n += 1
        if n == 0:
            raise FacepairError(f"face set {folder} holds no readable faces")
        sets.append({"path": str(folder), "faces": n, "fingerprint": fingerprint(meta)})
    return np.stack(images), entries, sets


def remove(folder: Path, files) -> int:
    """Drop faces (by their `file` entries) from a face set -> how many were dropped. The index
    is rewritten first (atomically), then the crops deleted: a kill between leaves stray crops
    that no index names, never an index naming missing crops."""
    folder, names = Path(folder), set(files)
    meta = load_index(folder)
    kept = [f for f in meta["faces"] if f["file"] not in names]
    dropped = [f["file"] for f in meta["faces"] if f["file"] in names]
    if dropped:
        save_index(folder, dict(meta, faces=kept))
        for name in dropped:
            (folder / name).unlink(missing_ok=True)
    return len(dropped)


def crop_marks(entries) -> np.ndarray:
    """(N, 68, 2) float32: each face-set entry's landmarks mapped into its crop."""
    return np.array([align.map_points(np.array(e["transform"]), np.array(e["landmarks"], float))
                     for e in entries], np.float32).reshape(-1, 68, 2)
