"""Measuring a trained pair: metrics.py (pure maths on arrays), frames.py (the arrays, made from
models and media), score.py (`facepair evaluate`), calibrate.py (the cue setting), report.py."""

EVAL_FACES = 128      # faces per side that `evaluate` scores by default
