"""llmplan: a command-line planner for pre-training large language models.

From Python, one function per command returns the rows `-f json` prints (see llmplan.api and
docs/api.md):

    import llmplan
    llmplan.plan(gpu="h100", gpus=256, days=30)[0]["params"]

`import llmplan` stays light: the functions load llmplan.api (and the command) on first use.
`llmplan.dtypes` is also the module of number formats; called, it runs the `dtypes` command.
`presets` is `llmplan.api.presets` (`llmplan.presets` is the module that loads presets).
`llmplan.data("filter", pool="15T", budget="1e24")` runs `llmplan data filter|domain|mix`.
"""

__version__ = "0.1.0"

# The commands as functions, loaded from llmplan.api on first use (PEP 562).
_API = ("plan", "optimal", "loss", "compute", "compare", "fit", "arch", "memory", "throughput", "layout", "serve",
        "gpus", "data", "api", "Rows", "run")


def __getattr__(name: str):
    if name in _API:
        import sys

        import llmplan.api  # not `from llmplan import api`: its hasattr check would call this again

        api = sys.modules["llmplan.api"]
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'llmplan' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API) | {"dtypes"})


def _callable_dtypes() -> None:
    """llmplan.dtypes is the number-format module (llmplan.dtypes.canonical ...) and, called, the
    `dtypes` command: its class gets a __call__ (a module's class may be a ModuleType subclass)."""
    import sys
    import types

    from llmplan import dtypes as module

    class _CommandModule(types.ModuleType):
        def __call__(self, **options):
            """The rows of `llmplan dtypes -f json` (llmplan.api.dtypes)."""
            import llmplan.api

            return sys.modules["llmplan.api"].dtypes(**options)

    if type(module) is types.ModuleType:
        module.__class__ = _CommandModule
    sys.modules.setdefault("llmplan.dtypes", module)


_callable_dtypes()
