"""The one exception type for mistakes a user can fix: the CLI prints its message and exits with code 2."""


class EdgeprofError(Exception):
    """A user error (bad name, bad shape, unreadable file...): its message says what to do, in one line."""
