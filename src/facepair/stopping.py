"""Ctrl-C and SIGTERM as a request to stop at the next safe point: a long stage (train, swap)
finishes the unit of work under way, saves what it has, and exits 130. A second Ctrl-C stops at
once (the stage still saves)."""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time


@contextlib.contextmanager
def _handled(handler):
    """Ctrl-C and SIGTERM sent to `handler` inside the block, the previous handlers back after it.
    Outside the main thread the handlers are left as they are."""
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):        # not the main thread
            old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in old.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)


@contextlib.contextmanager
def stop_requests():
    """Yields a list that gains the signal's number on Ctrl-C or SIGTERM (non-empty: stop at the
    next safe point); a second Ctrl-C raises KeyboardInterrupt where the code is. Outside the
    main thread the handlers are left as they are (the list then stays empty)."""
    stop: list[int] = []

    def on_signal(signum, frame):
        if stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.append(signum)

    with _handled(on_signal):
        yield stop


@contextlib.contextmanager
def held_off():
    """Ctrl-C and SIGTERM only noted while a file is being finished (an encoder's last frames and
    its index, a few seconds at most: stopped there, a video has no index and does not play).
    Yields the list of signals received; outside the main thread, as stop_requests."""
    got: list[int] = []
    with _handled(lambda signum, frame: got.append(signum)):
        yield got


STOP_WITH = "FACEPAIR_STOP_WITH"        # the environment's name for it: the app's process id


def stop_with(parent: int, every: float = 1.0) -> None:
    """This process stopped as by SIGTERM (it saves what it has) once `parent` is no longer its
    parent: the web app that started it, closed hard (SIGKILL, a crash) where it could not stop
    its jobs itself. Its jobs went on unseen: the app started again listed them as "ended"."""
    def watch():
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, name="stop-with-app", daemon=True).start()
