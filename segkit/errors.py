"""The one exception type users see as a single line instead of a traceback."""


class SegkitError(Exception):
    """A user-facing failure: the message names the file/key/value and what to do about it.

    The CLIs print it as one line and exit non-zero; ``--debug`` shows the traceback instead.
    """
