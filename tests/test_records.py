"""llmplan.records.record: the same equality, hash and repr a dataclass would generate."""

from __future__ import annotations

import dataclasses

import pytest

from llmplan.records import record


def _pair(frozen: bool):
    def body(cls):
        cls.__annotations__ = {"a": int, "b": str, "c": float, "hidden": int}
        cls.a = 1
        cls.b = "x"
        cls.c = 2.5
        cls.hidden = dataclasses.field(default=0, compare=False, repr=False)
        return cls

    generated = dataclasses.dataclass(frozen=frozen)(body(type("Point", (), {})))
    shared = record(frozen=frozen)(body(type("Point", (), {})))
    return generated, shared


@pytest.mark.parametrize("frozen", [True, False])
def test_a_record_compares_and_shows_itself_as_a_dataclass_would(frozen):
    generated, shared = _pair(frozen)
    for args in [(), (2,), (2, "y", 0.5), (1, "x", 2.5, 7)]:
        g, s = generated(*args), shared(*args)
        assert repr(s) == repr(g)
        assert (s == shared(*args)) == (g == generated(*args))
        assert (s == shared(9)) == (g == generated(9))
        if frozen:
            assert hash(s) == hash(shared(*args))
    assert shared(1, "x", 2.5, hidden=1) == shared(1, "x", 2.5, hidden=2)  # compare=False is left out
    assert shared() != generated()  # another class is never equal
    assert (shared() == (1, "x", 2.5)) is False


def test_a_frozen_record_is_frozen_and_hashable_a_mutable_one_is_not():
    generated, shared = _pair(True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        shared().a = 3
    assert dataclasses.replace(shared(), a=5).a == 5
    assert dataclasses.asdict(shared(4)) == dataclasses.asdict(generated(4))
    _, mutable = _pair(False)
    item = mutable()
    item.a = 3
    assert item.a == 3
    with pytest.raises(TypeError):
        hash(item)
    assert len({shared(1), shared(1), shared(2)}) == 2


def test_a_record_is_made_as_a_dataclass_would_be():
    calls = []

    def body(cls):
        cls.__annotations__ = {"a": int, "b": list, "c": int}
        cls.b = dataclasses.field(default_factory=list)
        cls.c = 3
        cls.__post_init__ = lambda self: calls.append(self.a)
        return cls

    generated = dataclasses.dataclass(frozen=True)(body(type("Made", (), {})))
    shared = record(body(type("Made", (), {})))
    for args, kwargs in [((1,), {}), ((1, [2]), {"c": 4}), ((), {"a": 5, "c": 6}), ((1, [2], 3), {})]:
        assert dataclasses.asdict(shared(*args, **kwargs)) == dataclasses.asdict(generated(*args, **kwargs))
    assert calls == [1, 1, 1, 1, 5, 5, 1, 1]  # __post_init__ once per instance
    assert shared(1).b is not shared(1).b  # a fresh default from the factory each time
    for args, kwargs, message in [((), {}, "missing 1 required argument"), ((1,), {"a": 2}, "multiple values"),
                                  ((1,), {"d": 2}, "unexpected keyword argument 'd'"), ((1, [], 3, 4), {}, "positional")]:
        with pytest.raises(TypeError, match=message):
            shared(*args, **kwargs)
    item = shared(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.c = 9
    with pytest.raises(dataclasses.FrozenInstanceError):
        del item.a
    assert dataclasses.replace(item, c=9) == shared(1, [], 9)


def test_a_subclass_record_takes_its_parents_fields_first():
    @record
    class Base:
        x: int
        y: int = 2

    @record
    class Child(Base):
        z: int = 3

    assert Child(1) == Child(1, 2, 3) and repr(Child(1, z=4)) == "test_a_subclass_record_takes_its_parents_fields_first.<locals>.Child(x=1, y=2, z=4)"
    assert Child(1) != Base(1)


def test_what_a_record_cannot_be_is_refused_not_changed():
    # A method of its own that @record would replace, or a field it would not treat as a dataclass does.
    with pytest.raises(TypeError, match="defines __repr__"):
        @record
        class Shown:
            a: int = 1

            def __repr__(self):
                return "mine"

    with pytest.raises(TypeError, match="plain fields"):
        @record
        class Hidden:
            a: int = dataclasses.field(default=1, hash=False)

    with pytest.raises(TypeError, match="plain fields"):
        @record
        class Passed:
            a: dataclasses.InitVar[int] = 1


def test_a_subclass_post_init_is_the_one_called():
    seen = []

    @record
    class Base:
        a: int = 1

        def __post_init__(self):
            seen.append("base")

    class Child(Base):
        def __post_init__(self):
            seen.append("child")

    Child()
    assert seen == ["child"]
