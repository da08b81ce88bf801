"""The local web app (`facepair ui`): server.py (routes over the work folder), jobs.py (long
stages as background `facepair` commands), static/ (the page)."""

DEFAULT_UPLOAD_MB = 2048     # the largest file the page may upload (facepair ui --max-upload-mb)
DEFAULT_UPLOADS_TOTAL_MB = 20480    # all of uploads/ together (facepair ui --max-uploads-total-mb)
