"""The error types that decide llmplan's exit codes (docs/architecture.md, "The command-line contract")."""


class LlmplanError(Exception):
    """Base of the errors the CLI turns into one line on stderr and an exit code."""

    exit_code = 1


class InputError(LlmplanError):
    """Bad input: an unparseable value, an unknown preset, a malformed file. Exit code 2."""

    exit_code = 2


class WorkError(LlmplanError):
    """The work itself failed (a fit that did not converge). Exit code 1."""

    exit_code = 1


# An error message quotes at most this many characters of the offending input (inputs may be megabytes).
QUOTE_CHARS = 100


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """repr(value), cut to about `limit` characters: 'xxxx'... (99,900 more characters)."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value) - limit:,} more characters)"
    try:
        text = repr(value)
    except ValueError:  # an integer beyond Python's digit limit for str()
        return "a number of more than 4,300 digits"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def cut(text: str, limit: int = QUOTE_CHARS) -> str:
    """A message part (not a quoted value) cut to about `limit` characters."""
    return text if len(text) <= limit else text[:limit] + "..."


def input_error(value: object, expected: str, guess: str | None = None) -> InputError:
    """An InputError that names the value, what was expected and, where there is one, a close guess."""
    message = f"{quote(value)} is not {expected}"
    if guess:
        message += f"; did you mean {guess}?"
    return InputError(message)
