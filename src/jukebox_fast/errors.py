"""The errors and warnings jukebox_fast raises."""

from numpy.linalg import LinAlgError


class JukeboxError(Exception):
    """Base of every error that is the input's or the environment's fault, not a bug."""


class InputFormatError(JukeboxError, ValueError):
    """A file does not hold what it should; says which file, which line and why."""

    def __init__(self, path, line, expected, found):
        self.path = "<stdin>" if str(path) == "-" else str(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = f"{self.path}:{line}" if line else self.path
        message = f"{where}: expected {expected}"
        if found is not None:
            message += f", got {found}"
        super().__init__(message)


class ModelFileError(JukeboxError, ValueError):
    """A model file is not one jukebox_fast can load: foreign, truncated, corrupt or too new; names the file."""

    def __init__(self, path, problem):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


class BackendUnavailableError(JukeboxError, ImportError):
    """An optional backend (jax, cupy) is not installed; says how to install it."""

    def __init__(self, backend, hint):
        self.backend = backend
        self.hint = hint
        super().__init__(f"the {backend} backend is not available: {hint}")


class MemoryBudgetError(JukeboxError, MemoryError):
    """A computation would need more memory than the machine has free."""

    def __init__(self, what, needed, available, advice, limited_by=None):
        self.needed = needed
        self.available = available
        self.limited_by = limited_by
        source = f" ({limited_by})" if limited_by else ""
        super().__init__(
            f"{what} needs about {format_size(needed)} but only {format_size(available)} of memory is available{source}; {advice}"
        )


class NotPositiveDefiniteError(JukeboxError, LinAlgError):
    """The regularised gram matrix is not positive definite in float32: the regularization is too small for the log."""


class OutOfMemoryError(JukeboxError, MemoryError):
    """An allocation failed though the memory plan admitted the run; says what failed and what to do."""


def count(n, noun, plural=None):
    """A number and the noun that agrees with it: '1 user', '20,278 users', '1 play', '2 plays'."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def repeats_message(path, n_repeats):
    """The warning for lines that repeat an earlier (user, song) pair, whose counts were added to it."""
    if n_repeats == 1:
        return f"{path}: 1 line repeats an earlier (user, song) pair; its count was added to that pair's"
    return f"{path}: {n_repeats:,} lines repeat an earlier (user, song) pair; their counts were added up"


def format_size(n_bytes):
    """Bytes for people: '37.3 GiB', '512.0 MiB'."""
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


class JukeboxWarning(UserWarning):
    """Something in the input was handled in a documented way the user should know about."""
