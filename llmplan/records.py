"""Records: dataclasses whose methods are shared functions, not code compiled per class.

`@dataclass` writes and compiles up to six methods for every frozen class when its module is
imported (__init__, __repr__, __eq__, __hash__, __setattr__, __delattr__); across the classes a
command loads that compiling was a third of llmplan's own start-up. `@record` keeps the dataclass
(fields, defaults, default factories, __post_init__, `dataclasses.replace`, `fields`, `asdict`) and
gives it an __init__, __eq__, __hash__, __repr__ and, frozen, a refusing __setattr__/__delattr__
that read the fields instead, with the results the generated ones give (tests/test_records.py).
"""

from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from operator import attrgetter
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return self.__record_key__(self) == other.__record_key__(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self.__record_key__(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_shown__)
    return f"{self.__class__.__qualname__}({shown})"


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _key(names: tuple[str, ...]) -> Callable[[Any], Any]:
    get = attrgetter(*names) if names else (lambda obj: ())
    return lambda obj: (get(obj),)


def _init(cls: type, found: tuple) -> Callable[..., None]:
    """__init__(self, *fields in order, **by name): defaults and default factories, then __post_init__.
    Values go straight into the instance's __dict__, as a frozen dataclass's object.__setattr__ would."""
    names = tuple(f.name for f in found)
    known = frozenset(names)
    defaults = {f.name: f.default for f in found if f.default is not MISSING}
    factories = tuple((f.name, f.default_factory) for f in found if f.default_factory is not MISSING)
    title = f"{cls.__qualname__}.__init__()"

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{title} takes {len(names) + 1} positional arguments but {len(args) + 1} were given")
        values = self.__dict__
        values.update(defaults)
        if args:
            for name in names[: len(args)]:
                if name in kwargs:
                    raise TypeError(f"{title} got multiple values for argument {name!r}")
            values.update(zip(names, args))
        if kwargs:
            if not known.issuperset(kwargs):
                raise TypeError(f"{title} got an unexpected keyword argument {next(k for k in kwargs if k not in known)!r}")
            values.update(kwargs)
        for name, factory in factories:
            if name not in values:
                values[name] = factory()
        if len(values) < len(names):
            missing = [name for name in names if name not in values]
            if missing:
                raise TypeError(f"{title} missing {len(missing)} required argument(s): {', '.join(map(repr, missing))}")
        post_init = getattr(self, "__post_init__", None)  # a subclass's own, as a dataclass would call it
        if post_init is not None:
            post_init()

    return __init__


def record(cls: type[T] | None = None, /, *, frozen: bool = True) -> Any:
    """@dataclass(frozen=True) (frozen=False: a mutable one, unhashable as a dataclass with eq is),
    its methods shared: __init__ by position or name, __eq__ (same class, fields with compare=True),
    __hash__ (frozen only), __repr__ (fields with repr=True), frozen __setattr__ and __delattr__."""

    def wrap(cls: type[T]) -> type[T]:
        own = [name for name in ("__init__", "__eq__", "__hash__", "__repr__", "__setattr__", "__delattr__") if name in cls.__dict__]
        if own:
            raise TypeError(f"{cls.__qualname__} defines {', '.join(own)}: @record would replace it; use @dataclass")
        made = dataclass(init=False, eq=False, repr=False)(cls)  # fields only: nothing compiled
        found = fields(made)
        initvars = [f for f in made.__dataclass_fields__.values() if str(getattr(f, "_field_type", "")) == "_FIELD_INITVAR"]
        if initvars or any(not f.init or f.kw_only or f.hash is not None for f in found):
            raise TypeError(f"{made.__qualname__}: @record takes plain fields (set by __init__ by position or name, "
                            "no InitVar, kw_only or field(hash=...)); use @dataclass")
        made.__init__ = _init(made, found)  # type: ignore[misc]
        made.__record_key__ = staticmethod(_key(tuple(f.name for f in found if f.compare)))  # type: ignore[attr-defined]
        made.__record_shown__ = tuple(f.name for f in found if f.repr)  # type: ignore[attr-defined]
        made.__eq__ = _eq  # type: ignore[method-assign]
        made.__hash__ = _hash if frozen else None  # type: ignore[method-assign, assignment]
        made.__repr__ = _repr  # type: ignore[method-assign]
        if frozen:
            made.__setattr__ = _frozen_setattr  # type: ignore[method-assign, assignment]
            made.__delattr__ = _frozen_delattr  # type: ignore[method-assign, assignment]
        return made

    return wrap if cls is None else wrap(cls)
