"""The native libraries' log lines kept off a default run's stderr; `-v` shows them.

TensorFlow 2.21 logs through absl in C++: its oneDNN notice, "All log messages before absl::InitializeLog()",
NodeDef attribute warnings during training; the TFLite converter prints "fully_quantize: ..." and LiteRT
"INFO: Created TensorFlow Lite XNNPACK delegate". None of them obeys TF_CPP_MIN_LOG_LEVEL any more, and they
are written to file descriptor 2 by C++, below Python's logging. So the CLI routes descriptor 2 through a pipe
for the length of the command and a thread forwards every line except those informational and warning lines
(native errors, E and F, still show). Python's own stderr (log lines, progress bars, `error: ...`) is
forwarded unchanged and in order.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

# Informational and warning lines of absl/glog ("I0000 00:00:1796477702.77 4572 port.cc:153] ..."), and the
# fixed notices of the absl bootstrap, the TFLite converter and the LiteRT interpreter.
NATIVE_LINE = re.compile(rb"^(?:[IW]\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\]|WARNING: All log messages before absl::"
                         rb"|INFO: (?:Created|Initialized) TensorFlow Lite|fully_quantize: \d)")
# A line still being written that may turn out to be one of those: held until its end arrives.
_MAY_BE_NATIVE = re.compile(rb"^(?:[IW]\d|WARNING:|INFO:|fully_)")
_HOLD_SHORT = 8  # bytes: too few to tell


@contextlib.contextmanager
def quiet_native_logs(enabled: bool = True):
    """While inside, descriptor 2 drops the native libraries' I/W log lines (see the module doc)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the older TensorFlow lines that still obey it
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
        read, write = os.pipe()
    except (OSError, ValueError):  # no descriptor 2 (a detached process): nothing to filter
        yield
        return
    os.dup2(write, 2)
    os.close(write)
    thread = threading.Thread(target=_forward, args=(read, original), name="native-log-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last write end closes: the thread reads to the end and stops
        thread.join(timeout=10)
        os.close(original)


def _forward(read: int, out: int) -> None:
    pending = b""
    try:
        while chunk := os.read(read, 65536):
            pending += chunk
            parts = re.split(rb"(?<=[\r\n])", pending)
            pending = parts.pop()  # the piece after the last line end (b"" when there is none)
            for part in parts:
                if not NATIVE_LINE.match(part):
                    os.write(out, part)
            # A progress bar redraws without a line end: show it now unless it may be a native line's start.
            if pending and len(pending) > _HOLD_SHORT and not _MAY_BE_NATIVE.match(pending):
                os.write(out, pending)
                pending = b""
        if pending and not NATIVE_LINE.match(pending):
            os.write(out, pending)
    except OSError:
        pass
    finally:
        os.close(read)
