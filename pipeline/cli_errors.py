"""The CLI's one-line errors for what argparse and the operating system report in their own words.

argparse prints its usage and `prog: error: argument --port: invalid int value: 'x'`; an OSError carries a
strerror and a file name. Both become the project's `expected …, received …` line.
"""
from __future__ import annotations

import argparse
import errno
import re
import shlex
import sys
from pathlib import Path

from mobilenet_edge.pipeline.errors import PipelineError

EXIT_USAGE = 2  # bad input
EXIT_OS = 1  # the system: disk full, read-only, permissions
EXIT_TOOL = 3  # a converter or runtime failed on accepted input
EXIT_BUG = 4  # an error of this project

_ARGPARSE = (
    (r"argument (?P<opt>\S+): invalid int value: (?P<got>.*)", "expected {opt} to be a whole number, received {got}"),
    (r"argument (?P<opt>\S+): invalid float value: (?P<got>.*)", "expected {opt} to be a number, received {got}"),
    (r"argument (?P<opt>\S+): invalid \w+ value: (?P<got>.*)", "expected a valid {opt}, received {got}"),
    (r"argument (?P<opt>\S+): invalid choice: (?P<got>.*?) \(choose from (?P<choices>.*)\)",
     "expected {opt} to be one of {choices}, received {got}"),
    (r"argument (?P<opt>\S+): expected one argument", "expected a value after {opt}, received none"),
    (r"the following arguments are required: (?P<opt>.*)", "expected {opt}, received none"),
    (r"unrecognized arguments: (?P<got>.*)", "expected only the options that --help lists, received {got!r}"),
)

_HINTS = {errno.ENOSPC: "free some space or use another OUT", errno.EROFS: "use a writable OUT",
          errno.EACCES: "check the permissions or use another OUT", errno.EPERM: "check the permissions or use another OUT",
          errno.EDQUOT: "free some space or use another OUT"}


def usage_message(message: str) -> str:
    """argparse's error text -> `expected …, received …` (one line)."""
    message = " ".join(message.split())
    for pattern, template in _ARGPARSE:
        match = re.fullmatch(pattern, message)
        if match:
            return template.format(**match.groupdict())
    return f"expected arguments as --help lists them, received: {message}"


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one `error: expected …, received …` line (subcommands inherit it)."""

    def error(self, message):  # argparse's hook; it must not return
        print(f"error: {usage_message(message)} ({self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def os_error_message(exc: OSError) -> str:
    """`expected to read or write PATH, received No space left on device (ENOSPC); free some space …`"""
    # os.replace (every atomic write) names the temporary file first and the final one second
    where = exc.filename2 or exc.filename or "a file"
    code = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = _HINTS.get(exc.errno)
    return (f"expected to read or write {where}, received {reason}{f' ({code})' if code else ''}"
            f"{f'; {hint}' if hint else ''}")


def image_list(text: str | None) -> list[str]:
    """IMAGE from make, passed as one argument: one existing path as it is, else paths split like a shell would
    (quotes group a path with spaces) — split as data, never run."""
    if not text:
        return []
    if Path(text).exists():
        return [text]
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise PipelineError(f"expected IMAGE to be paths separated by spaces, received {text!r} ({exc})") from None
