"""The model-source options every model-taking command shares (their resolution: llmplan.model.source).

A command declares the options it takes with the Annotated aliases below (the parameter NAME
matters for the shape flags: use the names in llmplan.model.source.SHAPE_FLAGS), then calls
`resolve_model` (one model) or `resolve_models` (arch: any number; '-' among the preset ids reads
ids from stdin). Example:

    from llmplan.cli import model_options as mo

    def command(
        preset: mo.PresetOption = None, hf_config: mo.HfConfigOption = None,
        safetensors: mo.SafetensorsOption = None, params: mo.ParamsOption = None,
        layers: mo.LayersOption = None, d_model: mo.DModelOption = None, heads: mo.HeadsOption = None,
        kv_heads: mo.KvHeadsOption = None, head_dim: mo.HeadDimOption = None, ffn: mo.FfnOption = None,
        mlp: mo.MlpOption = None, vocab: mo.VocabOption = None, tied: mo.TiedOption = None,
        ...,
        presets: PresetsOption = None,
    ):
        model = mo.resolve_model(preset=preset, hf_config=hf_config, safetensors=safetensors,
                                 params=params, presets=presets, **mo.shape_flags(locals()))
        for line in model.notes: note(line)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from llmplan.model.source import Model, resolve_model, shape_flags  # noqa: F401 (the commands reach them as mo.*)

_HF_HELP = "A local Hugging Face config.json (or its folder); see 'llmplan arch --help' for the families read."
_ST_HELP = ("A safetensors checkpoint: one .safetensors file, a folder of shards, or its model.safetensors.index.json. "
            "Only the headers are read: the exact stored count, by dtype, for any architecture.")

# ----- sources --------------------------------------------------------------------------------
PresetOption = Annotated[Optional[str], typer.Option("--preset", "-p", help="A models preset id or alias (llmplan presets list models).", show_default=False)]
PresetListOption = Annotated[Optional[list[str]], typer.Option("--preset", "-p", help="A models preset id or alias (repeatable; '-' reads ids from stdin).", show_default=False)]
HfConfigOption = Annotated[Optional[Path], typer.Option("--hf-config", help=_HF_HELP, show_default=False)]
HfConfigListOption = Annotated[Optional[list[Path]], typer.Option("--hf-config", help=_HF_HELP + " Repeatable.", show_default=False)]
SafetensorsOption = Annotated[Optional[Path], typer.Option("--safetensors", help=_ST_HELP, show_default=False)]
SafetensorsListOption = Annotated[Optional[list[Path]], typer.Option("--safetensors", help=_ST_HELP + " Repeatable.", show_default=False)]
ParamsOption = Annotated[Optional[str], typer.Option("--params", help="A parameter count (e.g. 7B) when no shape is given.", show_default=False)]

# ----- shape flags (parameter names must be the source.SHAPE_FLAGS names) ------------------------------------
TypeOption = Annotated[Optional[str], typer.Option("--type", help="Shape flags: decoder (default), encoder or encoder-decoder.", show_default=False)]
LayersOption = Annotated[Optional[int], typer.Option("--layers", help="Layers (decoder or encoder; with --type encoder-decoder: each stack).", show_default=False)]
EncoderLayersOption = Annotated[Optional[int], typer.Option("--encoder-layers", help="Encoder layers (encoder-decoder).", show_default=False)]
DecoderLayersOption = Annotated[Optional[int], typer.Option("--decoder-layers", help="Decoder layers (encoder-decoder).", show_default=False)]
DModelOption = Annotated[Optional[int], typer.Option("--d-model", help="Model width.", show_default=False)]
HeadsOption = Annotated[Optional[int], typer.Option("--heads", help="Attention heads.", show_default=False)]
KvHeadsOption = Annotated[Optional[int], typer.Option("--kv-heads", help="Key/value heads (GQA; 1 = MQA). Default: --heads.", show_default=False)]
HeadDimOption = Annotated[Optional[int], typer.Option("--head-dim", help="Width of one head. Default: d-model / heads.", show_default=False)]
FfnOption = Annotated[Optional[int], typer.Option("--ffn", help="FFN width. Default: 4*d (gelu, relu) or LLaMA's 8/3*d rounded up to 256 (swiglu, geglu).", show_default=False)]
MlpOption = Annotated[Optional[str], typer.Option("--mlp", help="swiglu (default), geglu (gated, 3 matrices), gelu or relu (2 matrices).", show_default=False)]
VocabOption = Annotated[Optional[int], typer.Option("--vocab", help="Vocabulary (embedding rows).", show_default=False)]
TiedOption = Annotated[Optional[bool], typer.Option("--tied-embeddings/--untied-embeddings", help="Share the input embedding with the output head (default: untied).", show_default=False)]
PositionsOption = Annotated[Optional[str], typer.Option("--positions", help="rotary (default), learned, relative or alibi.", show_default=False)]
NormOption = Annotated[Optional[str], typer.Option("--norm", help="rmsnorm (default) or layernorm.", show_default=False)]
BiasOption = Annotated[Optional[bool], typer.Option("--bias/--no-bias", help="Biases on the linear layers (default: none).", show_default=False)]
ExpertsOption = Annotated[Optional[int], typer.Option("--experts", help="Routed experts per MoE layer (default 0: dense).", show_default=False)]
ExpertsPerTokenOption = Annotated[Optional[int], typer.Option("--experts-per-token", help="Routed experts each token uses (MoE).", show_default=False)]
SharedExpertsOption = Annotated[Optional[int], typer.Option("--shared-experts", help="Always-used experts per MoE layer.", show_default=False)]
MoeFfnOption = Annotated[Optional[int], typer.Option("--moe-ffn", help="FFN width of one expert (default: --ffn).", show_default=False)]
DenseLayersOption = Annotated[Optional[int], typer.Option("--dense-layers", help="The first k layers stay dense (MoE).", show_default=False)]


def resolve_models(*, preset: Any = None, **given: Any) -> list[Model]:
    """llmplan.model.source.resolve_models, with '-' among the preset ids read from stdin (one id a line)."""
    from llmplan.cli.common import expand
    from llmplan.model import source

    ids = expand(list(preset) if isinstance(preset, (list, tuple)) else [preset], str) if preset else preset
    return source.resolve_models(preset=ids, **given)
