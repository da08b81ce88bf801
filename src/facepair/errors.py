"""Every error a user can meet. The CLI prints a FacepairError's message on one line and exits
with its exit_code; UnreadableMedia is caught where a file can be skipped."""


class FacepairError(Exception):
    """A problem the user can fix (bad path, bad flag, no face found...). Never a traceback."""

    exit_code = 1


class Interrupted(FacepairError):
    """Ctrl-C or SIGTERM: the work done so far was saved; exit 130 like a shell."""

    exit_code = 130


class UnreadableMedia(Exception):
    """A file that is neither a decodable image nor a decodable video (skipped and counted)."""


class TooLarge(UnreadableMedia):
    """A picture whose header declares more pixels than facepair decodes (a small file can
    declare a huge picture: a decompression bomb)."""


def shown(text: str) -> str:
    """`text` as one line a terminal shows as it is: characters that are not printable (a
    newline, an escape sequence, a right-to-left override) written as Python escapes, so that a
    file's name can neither end a line early nor draw on the terminal (a name holding "\\nx.jpg:
    SYNTHETIC ..." printed a verdict line of its own)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def out_of_bounds(value, kind=int, least=None, most=None, above=None, given=None) -> str | None:
    """Why `value` is not a `kind` (int or float) within the bounds, in the words the command
    line says it (`facepair swap --erode 65`), or None: one check for the flags and for the
    same options given through the Python API. `given`: the text quoted (the flag as typed,
    "1e3" rather than 1000.0; default: the value)."""
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        return f"not {'an integer' if kind is int else 'a number'}: {repr(value) if given is None else given}"
    given = value if given is None else given
    if value != value or value in (float("inf"), float("-inf")):
        return f"not a finite number: {given}"
    if least is not None and value < least or most is not None and value > most:
        lo, hi = (f"{b:g}" if isinstance(b, float) else str(b) for b in (least, most))
        return "must be " + (f"from {lo} to {hi}" if least is not None and most is not None
                             else f"at least {lo}" if most is None else f"at most {hi}") + f" (got {given})"
    if above is not None and value <= above:
        return f"must be more than {above} (got {given})"
    return None
