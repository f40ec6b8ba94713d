"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class PipelineError(Exception):
    """A user-facing error: the message says what was expected and what was received."""
