"""Faces from footage: detect.py (haar | hog | cnn), landmarks.py (68 points and their geometry),
align.py, identity.py (dlib embeddings), faceset.py (the on-disk format), extract.py (the stage)."""
