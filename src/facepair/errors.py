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
