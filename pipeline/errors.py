"""The exceptions the CLI turns into one-line messages, each with its own exit code.

- `PipelineError` (exit 2): bad input. The message says what was expected and what was received.
- `ToolError` (exit 3): a converter or runtime (TensorFlow's converter, tf2onnx, onnxruntime, LiteRT)
  failed on input the pipeline accepted. The message names the step and what the tool said; the tool's
  exception is chained (`raise ToolError(...) from exc`), so `-v` shows its traceback.
It derives from PipelineError so that every place that turns a failure into "this step failed" (a sweep's
variant, a half-written file removed) treats both alike; only the CLI tells them apart. Anything else that
escapes a stage is a bug of the project (exit 4). An OSError is the system's (exit 1).
"""
import errno


class PipelineError(Exception):
    """A user-facing error: the message says what was expected and what was received."""


class ToolError(PipelineError):
    """A converter or runtime failed on valid input; the tool's own exception is the __cause__."""


# An OSError with one of these is the system's (read-only or full disk, permissions): exit 1, not bad input.
SYSTEM_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


def system_error(exc: OSError, path) -> OSError | None:
    """`exc` re-addressed to `path` when the system refused (SYSTEM_ERRNOS), else None (the caller's input)."""
    if exc.errno in SYSTEM_ERRNOS:
        return OSError(exc.errno, exc.strerror, str(path))
    return None
