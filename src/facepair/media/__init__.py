"""Media in and out: pictures (image.py), videos (video.py) and crash-safe files (files.py).
The lowest layer beside errors.py: it knows nothing of faces or models."""
