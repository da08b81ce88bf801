"""Swapping: pipeline.py (frame -> faces -> model -> blend -> labelled output), tracker.py
(faces over frames), compose.py (masks, colour, blending), smooth.py, options.py (flags)."""
