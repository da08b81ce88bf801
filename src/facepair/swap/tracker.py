"""The faces of a stream of frames: the detector every few frames and on scene cuts, landmark
tracking between, and which faces to swap and with which model (all with the one model, or as
people.py assigns them: --identity, --map). Each face keeps its Track from frame to frame, which
smooth.Lookahead smooths along."""
from __future__ import annotations

import time

import numpy as np

from .smooth import SceneCuts


class Track:
    """One face followed over frames: last detector box, landmarks, and the sum of its distances
    to each entry of people.py over the times the detector found it (`looks`)."""

    def __init__(self, box, marks):
        self.box, self.marks = np.array(box, float), marks
        self.distances, self.looks = None, 0
        self.entry = 0                 # the model that swaps it (index), or why none does


class FaceTracker:
    def __init__(self, detector, landmarker, detect_every: int = 5, people=None):
        """`people` (people.People): assigns each face to an entry from its distances, summed
        over every detection of it (None: every face to the one model, entry 0)."""
        self.detector, self.landmarker = detector, landmarker
        self.detect_every, self.people = detect_every, people
        self.tracks: list[Track] = []
        self.cuts = SceneCuts()
        self.times = {"detect": 0.0, "landmarks": 0.0}

    def reset(self):
        """Forget the faces followed so far (a new video)."""
        self.tracks, self.cuts = [], SceneCuts()

    def ahead(self):
        """A function for another thread (the decoder's, which runs ahead): what `landmarks`
        needs of a video frame that depends on the frame alone, worked out there so that it
        overlaps this thread's work: ahead(index, rgb) -> (its scene-cut thumbnail, the
        detector's boxes on a frame the detector runs on every time, else None). The same
        numbers `landmarks` would compute itself (each thread runs a detector of its own:
        detect.dlib_model)."""

        def work(index: int, rgb: np.ndarray) -> tuple:
            boxes = None
            if index % self.detect_every == 0:
                t = time.perf_counter()
                boxes = self.detector(rgb)
                self.times["detect ahead"] = self.times.get("detect ahead", 0.0) + time.perf_counter() - t
            return SceneCuts.thumb(rgb), boxes
        return work

    def _detect(self, frame, boxes=None):
        """Detect afresh (`boxes`: the detector's on this frame, worked out ahead) and continue
        the tracks."""
        if boxes is None:
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
                track = near
            else:
                track = Track(box, marks)
            self.tracks.append(track)
            if self.people is not None:            # who it is: every look adds to its evidence
                t = time.perf_counter()
                d = self.people.distances(frame, marks)
                track.distances = d if track.distances is None else track.distances + d
                track.looks += 1
                track.entry = self.people.assign(track.distances, track.looks)
                self.times["identity"] = self.times.get("identity", 0.0) + time.perf_counter() - t

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

    def landmarks(self, frame, index: int, video: bool, ahead: tuple | None = None) -> list[Track]:
        """The faces of one frame, each a Track whose `marks` are its 68 landmarks as found here:
        a photo is detected afresh; a video frame continues the tracks of the frame before.
        `ahead`: what the function from `ahead()` gave for this frame."""
        thumb, boxes = ahead or (None, None)
        if not video:
            self.tracks = []
            self._detect(frame)
        else:
            cut = self.cuts(frame, thumb)
            if cut:
                self.tracks = []
            if cut or not self.tracks or index % self.detect_every == 0 or not self._track(frame):
                self._detect(frame, boxes)
        return list(self.tracks)
