"""The face stage's defaults and choices, in one light module (the command line reads them
without loading dlib or scikit-image)."""

DETECTORS = ("haar", "hog", "cnn")
DEFAULT_SIZE = 128          # px, crop side: the default preset's (hd; tests check they agree)
MIN_SIZE = 16               # px, the smallest crop side (the encoders halve it four times)
MAX_SIZE = 1024             # px, the largest crop side extract makes (a face set's memory grows with its square)
BLUR_SIDE = 64              # px, crops are measured for sharpness at this side, whatever --size
DEFAULT_DETECT_SIZE = 480   # px, longer side of the copy the detector runs on (0: full size)
DEFAULT_PADDING = 0.15      # share of the aligned crop kept around the mean-face template, each side
DEFAULT_THRESHOLD = 0.6     # dlib embedding distance under which two faces are the same person
DEFAULT_MIN_SIZE = 40       # px, detector box width in the frame
DEFAULT_MIN_BLUR = 10.0     # variance of the crop's Laplacian at BLUR_SIDE px; the sample clips: > 100
