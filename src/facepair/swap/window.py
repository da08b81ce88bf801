"""A temporal model's rolling window over a video: for each face followed from frame to frame,
the decoder inputs (code and cue) of its previous frames, which the decoder attends to with the
current frame's (model/seq2seq.py, `context`). Causal: only frames already swapped are used."""
from __future__ import annotations

from collections import deque

import numpy as np
import torch


class Window:
    def __init__(self, frames: int, stride: int = 1):
        """frames: previous frames the decoder takes (k); stride: video frames between them (the
        step between the training clips' faces)."""
        self.k, self.stride = frames, max(1, stride)
        self.tracks: list[dict] = []

    def history(self, frame: int, marks: np.ndarray, x: torch.Tensor, key=None) -> torch.Tensor:
        """(k, W) the inputs of the face with 68 landmarks `marks` (frame pixels) in video frame
        `frame` at its k previous steps, most recent first; the earliest kept repeated where the
        face has fewer (as in training), its own input when it is new. Then `x` (W,), its input
        now, joins its track. A face continues a track of the frame before whose centre lies
        within an inter-ocular distance and whose `key` is its own (the tracker's Track: never
        another face in its place after a scene cut); a frame without it ends the track."""
        centre = marks.mean(0)
        reach = np.linalg.norm(marks[36:42].mean(0) - marks[42:48].mean(0))
        near = [(np.linalg.norm(t["centre"] - centre), i) for i, t in enumerate(self.tracks)
                if t["frame"] == frame - 1 and t["key"] is key and np.linalg.norm(t["centre"] - centre) <= reach]
        if near:
            track = self.tracks[min(near)[1]]
        else:
            track = {"inputs": deque(maxlen=self.k * self.stride), "key": key}
            self.tracks.append(track)
        past = track["inputs"]                          # oldest first
        picks = [past[-j * self.stride] if j * self.stride <= len(past) else (past[0] if past else x)
                 for j in range(1, self.k + 1)]
        past.append(x)
        track["centre"], track["frame"] = centre, frame
        self.tracks = [t for t in self.tracks if t["frame"] >= frame - 1]
        return torch.stack(picks)
