"""The process's streams, made safe for the command-line contract.

- stdout that only takes ASCII (`PYTHONIOENCODING=ascii`, a C locale): results fall back to ASCII
  (· -> -, ≈ -> ~, box lines -> - and |; anything else -> ?) instead of a UnicodeEncodeError.
- stdout closed (`>&-`) or full (`> /dev/full`): one line on stderr, exit 1 (the result could not be
  delivered); a reader that went away (`| head`, `| true`): quiet, exit 0.
- stderr closed or broken (`2>&-`): notes, warnings and errors are dropped, the result is kept.
- stdin: read line by line with a cap on line length and on line count (`< /dev/zero` is an error,
  not an exhausted memory).
"""

from __future__ import annotations

import codecs
import errno
import os
import sys
from typing import Any, Iterator

from llmplan.errors import InputError, LlmplanError

# Stdin bounds: a sweep has at most a million values (llmplan.scaling.optimal.MAX_BUDGETS) and a value is short.
MAX_STDIN_LINES = 1_000_000
MAX_LINE_CHARS = 10_000
MAX_STDIN_CHARS = 256 * 2**20  # a whole file read from stdin (fit -): 256 MiB

ASCII = {
    "·": "-", "•": "*", "…": "...", "×": "x", "≈": "~", "≤": "<=", "≥": ">=", "→": "->", "←": "<-",
    "—": "-", "–": "-", "−": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "α": "alpha", "β": "beta",
    "µ": "u", "μ": "u", "²": "^2", "³": "^3", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
    "─": "-", "━": "-", "│": "|", "┃": "|", "┌": "+", "┐": "+", "└": "+", "┘": "+", "├": "+",
    "┤": "+", "┬": "+", "┴": "+", "┼": "+", "╶": "-", "╴": "-", "╸": "-", "╺": "-", "═": "=",
}
ERRORS = "llmplan-ascii"


def _to_ascii(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(ASCII.get(c, "?") for c in bad), error.end


codecs.register_error(ERRORS, _to_ascii)


class ReaderGone(LlmplanError):
    """The reader of stdout went away (`| head`, `| true`): not an error; the run stops quietly.

    Not an OSError, so that click's own EPIPE handling (exit 1) does not catch it."""

    exit_code = 0


class OutputError(LlmplanError):
    """The result could not be written to stdout (closed, full, an I/O error). Exit code 1."""

    exit_code = 1


def _can_encode(stream: Any, sample: str = "·≈─…") -> bool:
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return True  # an in-memory stream (tests) takes any text
    try:
        sample.encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _ascii_fallback(stream: Any) -> None:
    if stream is not None and not _can_encode(stream) and hasattr(stream, "reconfigure"):
        try:
            stream.reconfigure(errors=ERRORS)
        except (ValueError, OSError):  # already closed, or not a text wrapper
            pass


class _Wrapped:
    """A text stream held by the run: what a wrapper does not override goes to the stream itself."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        try:
            return bool(self._stream is not None and self._stream.isatty())
        except (OSError, ValueError, AttributeError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Stdout(_Wrapped):
    """stdout, whose write errors say what happened: a reader that left is ReaderGone (exit 0,
    quiet), anything else (closed, full) is OutputError (exit 1, one line)."""

    def _fail(self, error: OSError | ValueError | AttributeError) -> None:
        if isinstance(error, BrokenPipeError) or getattr(error, "errno", None) == errno.EPIPE:
            raise ReaderGone("the reader of stdout went away") from None
        reason = getattr(error, "strerror", None) or ("stdout is closed" if not isinstance(error, OSError) else str(error))
        raise OutputError(f"cannot write the result to stdout: {reason}") from None

    def write(self, text: str) -> int:
        if self._stream is None:
            self._fail(ValueError())
        try:
            return self._stream.write(text)
        except (OSError, ValueError) as error:
            self._fail(error)
            raise  # unreachable

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError) as error:
            self._fail(error)


class _Stderr(_Wrapped):
    """stderr that never fails: a closed or broken stderr drops messages, never the result."""

    def write(self, text: str) -> int:
        try:
            if self._stream is not None:
                self._stream.write(text)
        except (OSError, ValueError, UnicodeError):
            pass
        return len(text)

    def flush(self) -> None:
        try:
            if self._stream is not None:
                self._stream.flush()
        except (OSError, ValueError):
            pass



class guarded:
    """Context manager for one CLI run: wraps stdout and stderr as above, restores them after."""

    def __enter__(self) -> "guarded":
        self.saved = sys.stdout, sys.stderr
        _ascii_fallback(sys.stdout)
        _ascii_fallback(sys.stderr)
        sys.stdout = _Stdout(sys.stdout)  # type: ignore[assignment]
        sys.stderr = _Stderr(sys.stderr)  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: Any) -> bool:
        sys.stdout, sys.stderr = self.saved
        return False


def silence_stdout() -> None:
    """After a broken pipe: point fd 1 at /dev/null so that the interpreter's last flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ is not None else 1)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


# ----------------------------------------------------------------------------------------- stdin

def _stdin() -> Any:
    stream = sys.stdin
    if stream is None or getattr(stream, "closed", False):
        raise InputError("'-' reads values from stdin, but there is no stdin")
    return stream


HOLD_LINES = 20_000  # lines held back at most while a read ends mid-line


def _available(stream: Any, block: int) -> Any:
    """A read() of at most `block` characters that returns as soon as some are there: a line typed at a
    terminal (so rows come out as values go in, and one Ctrl-D at the start of a line ends the input),
    or what a pipe holds. Falls back to stream.read(block) for a stream without a binary buffer."""
    read1 = getattr(getattr(stream, "buffer", None), "read1", None)
    if read1 is None:
        return lambda: stream.read(block)
    decoder = codecs.getincrementaldecoder(getattr(stream, "encoding", None) or "utf-8")("strict")

    def read() -> str:
        raw = read1(block)
        return decoder.decode(raw, final=not raw)

    return read


def iter_stdin_blocks(max_lines: int | None = None, max_chars: int | None = None, block: int = 1 << 16) -> Iterator[list[str]]:
    """Lists of non-empty, non-comment lines of stdin, stripped, as they arrive, at most `block`
    characters at a time (fast for a million lines), within the caps above: a line longer than max_chars, a NUL byte or
    more than max_lines values is an InputError naming the line."""
    max_lines = MAX_STDIN_LINES if max_lines is None else max_lines
    max_chars = MAX_LINE_CHARS if max_chars is None else max_chars
    read = _available(_stdin(), block)
    count = 0
    number = 0  # lines read so far
    pending = ""
    held: list[str] = []
    while True:
        try:
            data = read()
        except UnicodeDecodeError:
            raise InputError(f"stdin near line {number + 1} is not UTF-8 text; give one value per line") from None
        except (OSError, ValueError) as error:
            raise InputError(f"cannot read stdin: {getattr(error, 'strerror', None) or error}") from None
        if "\x00" in data:
            where = number + 1 + (pending + data[: data.index("\x00")]).count("\n")
            raise InputError(f"stdin line {where} holds a NUL byte; give one value per line as text")
        lines = (pending + data).split("\n")
        pending = lines.pop() if data else ""
        if len(pending) > max_chars:
            raise InputError(f"stdin line {number + len(lines) + 1} is longer than {max_chars:,} characters; give one value per line")
        out = []
        for line in lines:
            number += 1
            if len(line) > max_chars:
                raise InputError(f"stdin line {number} is longer than {max_chars:,} characters; give one value per line")
            text = line.strip()
            if text and not text.startswith("#"):
                out.append(text)
        count += len(out)
        if count > max_lines:
            raise InputError(f"stdin holds more than {max_lines:,} values; split the input")
        held.extend(out)
        # Whole lines go on at once (a typed line, a producer's line); a read that ends mid-line
        # holds its lines for the next, up to a block's worth, so a bad last line stops the rest first.
        if held and (not pending or not data or len(held) >= HOLD_LINES):
            yield held
            held = []
        if not data:
            return


def iter_stdin_lines(max_lines: int | None = None, max_chars: int | None = None) -> Iterator[str]:
    """Non-empty, non-comment lines of stdin, stripped, one at a time (see iter_stdin_blocks)."""
    for lines in iter_stdin_blocks(max_lines, max_chars):
        yield from lines


def read_stdin_text(what: str = "stdin", max_chars: int = MAX_STDIN_CHARS) -> str:
    """All of stdin as text (a runs file given as '-'), at most max_chars."""
    stream = _stdin()
    try:
        text = stream.read(max_chars + 1)
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {what}: {getattr(error, 'strerror', None) or error}") from None
    if len(text) > max_chars:
        raise InputError(f"{what} is longer than {max_chars // 2**20} MiB; give a smaller input")
    return text
