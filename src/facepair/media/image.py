"""Pictures: finding image files, reading and writing them as RGB uint8 (OpenCV)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from ..errors import FacepairError, UnreadableMedia

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files and folders (recursive, sorted) -> files. A missing path is a user error."""
    files: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FacepairError(f"input not found: {p}")
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            files.append(p)
    return files


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise UnreadableMedia(f"cannot decode image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_image(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise FacepairError(f"cannot write image {path}")
