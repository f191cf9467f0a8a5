"""The error types that decide llmplan's exit codes (see DESIGN.md, "The command-line contract")."""


class LlmplanError(Exception):
    """Base of the errors the CLI turns into one line on stderr and an exit code."""

    exit_code = 1


class InputError(LlmplanError):
    """Bad input: an unparseable value, an unknown preset, a malformed file. Exit code 2."""

    exit_code = 2


class WorkError(LlmplanError):
    """The work itself failed (a fit that did not converge). Exit code 1."""

    exit_code = 1


def input_error(value: object, expected: str, guess: str | None = None) -> InputError:
    """An InputError that names the value, what was expected and, where there is one, a close guess."""
    message = f"{value!r} is not {expected}"
    if guess:
        message += f"; did you mean {guess}?"
    return InputError(message)
