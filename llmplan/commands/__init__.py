"""Each command as a Python function: its options in, its rows out.

`llmplan.commands.memory.memory(preset="llama-3.1-8b", train=True, gpu="h100")` is what
`llmplan memory --preset llama-3.1-8b --train --gpu h100` computes: the command line (llmplan.cli)
parses its options, calls this function and renders the rows it returns; the Python API
(llmplan.api, `llmplan.memory(...)`) is this function. One implementation, so the two cannot drift.

A function takes the command's options by their long names ('-' -> '_'), values as the command line
takes them (strings with units such as "1.4T", or numbers), returns llmplan.commands.result.Rows
(the dicts `-f json` prints; `.notes` holds what the command says on stderr) and raises
llmplan.errors.InputError for bad input. What only a terminal needs (--format, --wide, --quiet,
--check's exit code, '-' read from stdin) stays in the command line.
"""
