"""Records: dataclasses whose comparison, hash and repr are shared functions, not code made per class.

`@dataclass` writes and compiles six methods for every frozen class when its module is imported
(__init__, __repr__, __eq__, __hash__, __setattr__, __delattr__); across the classes a command
loads that compiling was a third of llmplan's own start-up. `@record` keeps the dataclass (fields,
defaults, `dataclasses.replace`, `fields`, `asdict`, frozen instances) and gives __eq__, __hash__
and __repr__ that read the fields instead, with the same results as the generated ones.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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


def _key(names: tuple[str, ...]) -> Callable[[Any], Any]:
    get = attrgetter(*names) if names else (lambda obj: ())
    return lambda obj: (get(obj),)


def record(cls: type[T] | None = None, /, *, frozen: bool = True, **options: Any) -> Any:
    """@dataclass(frozen=True, **options) (frozen=False: a mutable one, unhashable as a dataclass
    with eq is), with __eq__ (same class, fields with compare=True), __hash__ (frozen only) and
    __repr__ (fields with repr=True) as a dataclass would generate them."""

    def wrap(cls: type[T]) -> type[T]:
        made = dataclass(frozen=frozen, eq=False, repr=False, **options)(cls)
        found = fields(made)
        made.__record_key__ = staticmethod(_key(tuple(f.name for f in found if f.compare)))  # type: ignore[attr-defined]
        made.__record_shown__ = tuple(f.name for f in found if f.repr)  # type: ignore[attr-defined]
        made.__eq__ = _eq  # type: ignore[method-assign]
        made.__hash__ = _hash if frozen else None  # type: ignore[method-assign, assignment]
        made.__repr__ = _repr  # type: ignore[method-assign]
        return made

    return wrap if cls is None else wrap(cls)
