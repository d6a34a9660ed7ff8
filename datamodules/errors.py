"""The project's exceptions for a user's mistake: the command line prints them in one line, all else in full.

Each says what is wrong and how to mend it. They are `ValueError`s (and the file ones `FileNotFoundError` or
`FileExistsError`), so that code catching those catches these too.
"""

from __future__ import annotations


class UserError(ValueError):
    """A user's mistake: an argument, a file, a table or a checkpoint that cannot be used as given."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder a user named that is not there."""


class ExistingFileError(UserError, FileExistsError):
    """A file that is there already, which would be overwritten."""
