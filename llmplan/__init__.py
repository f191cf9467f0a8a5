"""llmplan: a command-line planner for pre-training large language models."""

__version__ = "0.1.0"
