"""The user-facing error: the CLI prints its message on one line and exits non-zero."""


class FacepairError(Exception):
    """A problem the user can fix (bad path, bad flag, no face found...). Never a traceback."""

    exit_code = 1
