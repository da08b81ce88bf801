"""Training: data.py (splits, augmentation, batches), losses.py, step.py (one step), loop.py (the
loop, resume, DDP), checkpoint.py (crash-safe saves), previews.py, options.py (flags and result)."""
