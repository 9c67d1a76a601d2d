"""What `python -m bench` and `python -m bench growth` share at the command line: refusals in one line with exit
code 2 (checked before anything runs), numbers checked against their range, and the JSON file of the results."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

BAD_ARGUMENTS = 2
INTERRUPTED = 130  # what a shell reports for a command ended by SIGINT (128 + 2)


class Parser(argparse.ArgumentParser):
    """argparse, but a refusal is one line on stderr (the usage block is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(BAD_ARGUMENTS, f"{self.prog}: {message} (--help for usage)\n")


def fail(prog: str, message: str, code: int) -> int:
    """One line on stderr (what went wrong, after the command's name); returns the exit code."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code


def first_line(exc: BaseException) -> str:
    """An exception's message as one line (server and MariaDB start-up errors append their log's tail)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def whole(minimum: int, why: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum` (`why` says where the minimum comes from)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum, {minimum}{why}")
        return value

    return parse


def seconds(*, zero: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds, above 0 (or 0 itself when `zero`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"{text} is not a number of seconds {'>= 0' if zero else '> 0'}")
        return value

    return parse


def base_url(text: str) -> str:
    """An argparse type: an http(s) URL to a deployment, maybe under a path prefix (no query, no fragment)."""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"not http(s)://host[:port][/path]: {text!r}")
    return text.rstrip("/")


def json_file(text: str) -> Path:
    """An argparse type: where to write the results; its directory must exist (checked before the run, not after)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {path.parent}")
    return path


def write_json(path: Path, data: object) -> None:
    """The results as JSON per RFC 8259: a number that is not one (a percentile without samples) is null."""
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
