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
