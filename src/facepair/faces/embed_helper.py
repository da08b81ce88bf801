"""The helper process of faces.identity.HelperEmbedder: `python -m facepair.faces.embed_helper`.

Reads chips from stdin (a header of two little-endian uint16, height and width, then height x
width x 3 bytes of RGB; 0 x 0 ends it) and writes each one's embedding to stdout (128
little-endian float32; NaN where dlib failed). A process of its own, started by its module name:
unlike multiprocessing's spawn it never re-imports the caller's script."""
from __future__ import annotations

import sys

import numpy as np

HEADER, REPLY = 4, 128 * 4


def read_exactly(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def serve(inp=None, out=None) -> None:
    from .detect import dlib_model
    inp, out = inp or sys.stdin.buffer, out or sys.stdout.buffer
    net = dlib_model("embedding")
    try:
        while True:
            h, w = np.frombuffer(read_exactly(inp, HEADER), "<u2")
            if h == 0 or w == 0:
                return
            chip = np.frombuffer(read_exactly(inp, int(h) * int(w) * 3), np.uint8).reshape(h, w, 3)
            try:
                e = np.array(net.compute_face_descriptor(np.ascontiguousarray(chip)), "<f4")
            except Exception:  # noqa: BLE001 - NaN: the caller embeds this chip itself
                e = np.full(128, np.nan, "<f4")
            out.write(e.tobytes())
            out.flush()
    except (EOFError, OSError, KeyboardInterrupt):       # the caller has gone (or was stopped)
        return


if __name__ == "__main__":
    serve()
