"""The temporal option's plumbing: clips of consecutive faces for training, and the rolling
window that swap keeps per face (its model: test_model.py; its whole run: test_presets.py)."""
import numpy as np
import torch

from facepair.swap.window import Window
from facepair.training.data import clips_of


def test_clips_follow_each_recording_and_stop_at_gaps():
    entries = ([{"source": "a.mp4", "frame": f} for f in (0, 2, 4, 6, 20, 22)] +
               [{"source": "b.mp4", "frame": f} for f in (4, 6)] + [{"source": "p.jpg"}])
    clips, stride = clips_of(entries, 3)
    assert stride == 2                                    # the face set's usual step in frames
    assert clips[3].tolist() == [0, 1, 2, 3]              # earliest first, then the face itself
    assert clips[1].tolist() == [0, 0, 0, 1]              # fewer before it: the earliest repeated
    assert clips[5].tolist() == [4, 4, 4, 5]              # frames 6 -> 20: a gap ends the clip
    assert clips[7].tolist() == [6, 6, 6, 7]              # another recording never mixes in
    assert clips[8].tolist() == [8] * 4                   # a photo stands alone


def _face(cx, cy):
    """68 landmarks whose eye centres lie 20 px apart around (cx, cy)."""
    marks = np.tile([cx, cy], (68, 1)).astype(float)
    marks[36:42, 0] -= 10
    marks[42:48, 0] += 10
    return marks


def test_window_keeps_each_face_its_past_and_restarts_after_a_gap():
    w = Window(frames=3, stride=1)
    x = [torch.full((2,), float(i)) for i in range(10)]
    assert w.history(0, _face(100, 100), x[0]).tolist() == [[0, 0]] * 3      # new: itself
    assert w.history(0, _face(300, 100), x[5]).tolist() == [[5, 5]] * 3      # a second face
    w.history(1, _face(102, 101), x[1])
    h = w.history(2, _face(104, 102), x[2])
    assert h[:, 0].tolist() == [1, 0, 0]                  # most recent first, earliest repeated
    h = w.history(3, _face(106, 103), x[3])
    assert h[:, 0].tolist() == [2, 1, 0]
    assert w.history(5, _face(108, 104), x[4])[:, 0].tolist() == [4, 4, 4]   # frame 4 lost it
    w2 = Window(frames=2, stride=2)                       # trained on every 2nd frame
    for f in range(5):
        h = w2.history(f, _face(100, 100), x[f])
    assert h[:, 0].tolist() == [2, 0]


def test_window_never_gives_a_face_the_past_of_another_in_its_place():
    """After a scene cut another person may stand where the last face stood: the tracker gives
    them a new Track (the key), and their window starts from their own input."""
    w = Window(frames=2, stride=1)
    x = [torch.full((2,), float(i)) for i in range(4)]
    before, after = object(), object()
    w.history(0, _face(100, 100), x[0], before)
    assert w.history(1, _face(101, 100), x[1], before)[:, 0].tolist() == [0, 0]
    assert w.history(2, _face(102, 100), x[2], after)[:, 0].tolist() == [2, 2]      # itself
    assert w.history(3, _face(103, 100), x[3], after)[:, 0].tolist() == [2, 2]
