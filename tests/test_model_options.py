"""The shared model-source options: one model from exactly one source, exact wherever a shape is known."""

from __future__ import annotations

import pytest

from llmplan.model import arch
from llmplan.model import source as mo
from llmplan.errors import InputError


def test_a_preset_with_a_shape_is_counted_exactly():
    # Llama 2 7B: 6,738,415,616 parameters, LlamaForCausalLM at 32 x 4096, FFN 11008, vocab 32000
    # (Touvron et al. 2023, Llama 2, Table 1: "7B"); the headline stays the published figure.
    model = mo.resolve_model(preset="llama-2-7b")
    assert model.exact and model.params == 6_738_415_616 and model.published_params == 7_000_000_000
    assert model.tokens == 2_000_000_000_000 and model.train_context == 4096


def test_the_trained_context_is_the_pretraining_one():
    # Llama 3.1: pre-trained at 8K, then extended to 128K (Llama 3 paper §3.4).
    model = mo.resolve_model(preset="llama-3.1-8b")
    assert model.train_context == 8192 and model.shape.context == 131072


def test_shapeless_presets_give_their_published_count_unless_a_shape_is_needed():
    model = mo.resolve_model(preset="chinchilla-70b")
    assert model.shape is None and model.params == 70_000_000_000 and not model.exact
    with pytest.raises(InputError, match="chinchilla-70b"):
        mo.resolve_model(preset="chinchilla-70b", need_shape=True)


def test_flags_and_params():
    model = mo.resolve_model(layers=2, d_model=64, heads=4, vocab=100, mlp="gelu", context=256)
    assert model.name == "custom" and model.params == arch.params(arch.Shape(layers=2, d_model=64, heads=4, vocab=100, mlp="gelu", context=256))
    assert mo.resolve_model(params="7B").params == 7e9


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({}, "give --preset ID"),
        ({"preset": "llama-2-7b", "params": "7B"}, "--preset and --params were both given"),
        ({"preset": "llama-2-7b", "layers": 2}, "--preset and shape flags"),
        ({"preset": "llama-2-7b", "mlp": "gelu"}, "--mlp describe a shape given as flags"),
        ({"layers": 2, "d_model": 64}, "also needs --heads, --vocab"),
        ({"family": "encoder-decoder", "d_model": 64, "heads": 4, "vocab": 9}, "--encoder-layers"),
    ],
)
def test_bad_combinations_are_one_line(kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        mo.resolve_model(**kwargs)


def test_shape_flags_picks_only_the_flag_names():
    assert mo.shape_flags({"layers": 2, "seq": 9, "tied": None}) == {"layers": 2, "tied": None}
    with pytest.raises(TypeError):
        mo.resolve_models(sequence=3)
