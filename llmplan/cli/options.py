"""Every option that more than one command takes, declared once, and the groups of options that travel together.

A command declares only its own flags. A shared flag is one Annotated alias here (its name, short
flag, type, default display and help), so `--dtype` or `--gpus` cannot drift between commands. The
groups that always travel together are added by a decorator, sqlite-utils style:

    @app.command(help=...)
    @options.grouped(source=options.MODEL_SOURCE, shape_flags=options.SHAPE)
    def serve(source: options.Flags = None, shape_flags: options.Flags = None, dtype: ..., ...):
        resolved = resolve_model(**source, **shape_flags, presets=presets, ...)

`grouped` replaces each placeholder parameter (here source and shape_flags, None until then) with
the group's options, at the placeholder's place in the signature (so --help lists them where the
placeholder stands), and calls the command with one `Flags` (a dict) per group, keyed by the
parameter names the core takes. The groups:

  MODEL_SOURCE, MODEL_SOURCES    --preset/-p --hf --hf-config --safetensors (one model; arch: many)
  SHAPE                          the shape flags every model-taking command takes
  FULL_SHAPE_HEAD, _TAIL         arch's: SHAPE with --type, --encoder-layers, --decoder-layers,
                                 --positions, --norm and --bias (two parts: --context sits between)
  HARDWARE_TIME                  --gpu --gpus --days --hours --gpu-hours --mfu --goodput --dtype
                                 (the budget that hardware time buys: optimal and plan)

A flag whose help differs by command (--plot, --params, --seq, ...) is still declared once, by a small
factory here that takes the command's words. Flags that share a name but not a type stay with their
command: memory's --gpu (a list, or a size such as 24GB) and serve's (one GPU); memory's --batch (per GPU)
and serve's (a list or range); layout's --gpus (required) and --explain (why the runner-up lost) against
plan's --explain (a column); the --budget of optimal (ranges, repeatable), compute (one) and data (a list).

Nothing heavy is imported here: `llmplan COMMAND --help` stays fast.
"""

from __future__ import annotations

import functools
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer



class Flags(dict):
    """The values of one option group, by parameter name (pass on with **flags)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


# ----- output and presets (every command) -------------------------------------------------------
FormatOption = Annotated[Optional[str], typer.Option(
    "--format", "-f",
    help="Output format: table, json, jsonl, csv or tsv. Default: table on a terminal, tsv otherwise (env LLMPLAN_FORMAT).",
    show_default=False)]
PresetsOption = Annotated[Optional[Path], typer.Option(
    "--presets",
    help="A folder with any of models.toml, laws.toml, gpus.toml, hparams.toml, engines.toml, runs.toml, stacks.toml that add to or override the shipped presets (env LLMPLAN_PRESETS).",
    show_default=False)]

# ----- model sources (arch, memory, throughput, layout, serve, compute) ----------------------------
_HF_HELP = "A local Hugging Face config.json (or its folder); see 'llmplan arch --help' for the families read."
_ST_HELP = ("A safetensors checkpoint: one .safetensors file, a folder of shards, or its model.safetensors.index.json. "
            "Only the headers are read: the exact stored count, by dtype, for any architecture.")

PresetOption = Annotated[Optional[str], typer.Option("--preset", "-p", help="A models preset id or alias (llmplan presets list models).", show_default=False)]
PresetListOption = Annotated[Optional[list[str]], typer.Option("--preset", "-p", help="A models preset id or alias (repeatable; '-' reads ids from stdin).", show_default=False)]
# compute reads more of a preset than its shape (its tokens too), and says so.
ComputePresetOption = Annotated[Optional[str], typer.Option("--preset", "-p", help="A model preset: its params (exact, from its shape), tokens and shape (attention term).", show_default=False)]
_HUB_HELP = ("A Hugging Face Hub model, ORG/NAME or ORG/NAME@REVISION: its config.json and safetensors headers (never the weights), "
             "through the Hub cache; HF_HUB_OFFLINE=1 reads the cache only, HF_TOKEN for gated models, HF_ENDPOINT for a mirror. "
             "Needs pip install 'llmplan[hub]'.")
HubOption = Annotated[Optional[str], typer.Option("--hf", help=_HUB_HELP, show_default=False)]
HubListOption = Annotated[Optional[list[str]], typer.Option("--hf", help=_HUB_HELP + " Repeatable.", show_default=False)]
HfConfigOption = Annotated[Optional[Path], typer.Option("--hf-config", help=_HF_HELP, show_default=False)]
HfConfigListOption = Annotated[Optional[list[Path]], typer.Option("--hf-config", help=_HF_HELP + " Repeatable.", show_default=False)]
SafetensorsOption = Annotated[Optional[Path], typer.Option("--safetensors", help=_ST_HELP, show_default=False)]
SafetensorsListOption = Annotated[Optional[list[Path]], typer.Option("--safetensors", help=_ST_HELP + " Repeatable.", show_default=False)]
ParamsOption = Annotated[Optional[str], typer.Option("--params", help="A parameter count (e.g. 7B) when no shape is given.", show_default=False)]

# ----- shape flags (the parameter names are llmplan.model.source.SHAPE_FLAGS) ------
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

# ----- hardware time: the budget GPUs x peak x MFU x time x goodput (optimal, compute, plan) --------
GpuOption = Annotated[Optional[str], typer.Option("--gpu", "-g", help="GPU from the catalog (llmplan gpus), e.g. a100, h100, v100.", show_default=False)]
# plan's GPU is required (the plan is of a run on it); its help names the two it is mostly asked about.
PlanGpuOption = Annotated[Optional[str], typer.Option("--gpu", "-g", help="GPU from the catalog (llmplan gpus), e.g. h100, a100.", show_default=False)]
GpusOption = Annotated[Optional[int], typer.Option("--gpus", "-k", help="Number of GPUs (default 1; wall time assumes the work spreads over all of them).", show_default=False)]
DaysOption = Annotated[Optional[str], typer.Option("--days", help="Calendar days on --gpus GPUs: the budget is GPUs x dense peak x MFU x time x goodput.", show_default=False)]
HoursOption = Annotated[Optional[str], typer.Option("--hours", help="Calendar hours on --gpus GPUs (instead of --days).", show_default=False)]
GpuHoursOption = Annotated[Optional[str], typer.Option("--gpu-hours", help="GPU-hours (e.g. 184k) instead of --gpus and --days; with --gpus the wall time is GPU-hours / GPUs.", show_default=False)]
MfuOption = Annotated[Optional[str], typer.Option("--mfu", help="Model FLOPs utilisation, a fraction of the dense peak (default 0.4); 'auto' (optimal, plan) takes it from the throughput model's best layout for the model the budget buys.", show_default=False)]
# compute's 'auto' predicts the MFU of a GIVEN model (optimal's and plan's: of the model a budget buys).
ComputeMfuOption = Annotated[Optional[str], typer.Option("--mfu", help="Model FLOPs utilisation, a fraction of the dense peak (default 0.4); 'auto': the MFU of the fastest layout that fits, predicted by the step model (needs --gpu and a model shape).", show_default=False)]
GoodputOption = Annotated[Optional[str], typer.Option("--goodput", help="Share of calendar time spent training, the rest lost to failures and restarts (default 0.9: Llama 3 reports more than 90% effective training time).", show_default=False)]

# ----- --dtype: one parsing (`parse_dtype`), three meanings, so three helps -----------------------
# Which peak a budget is counted at (optimal, compute, plan).
PeakDtypeOption = Annotated[str, typer.Option("--dtype", help="Which peak to use: bf16 (fp16 on GPUs without bf16), fp16, tf32, fp32, fp8 (or fp8-e4m3, fp8-e5m2); PyTorch names such as bfloat16 work too.")]
# The precision a training step computes in (throughput, layout).
ComputeDtypeOption = Annotated[str, typer.Option("--dtype", help="Compute precision: bf16, fp16 or fp8 (fp8 matmuls at the fp8 peak; weights and states as bf16 mixed precision).")]
# The format the weights are stored in (memory: default depends on --precision, so no default shown; serve).
MemoryDtypeOption = Annotated[Optional[str], typer.Option("--dtype", help="Weights: fp32, fp16, bf16, fp8, int8, int4, nf4 (training: the compute type). Default: bf16 (fp32 with --precision fp32).", show_default=False)]
ServeDtypeOption = Annotated[str, typer.Option("--dtype", help="Weights: fp32, fp16, bf16, fp8, int8, int4, nf4. fp8 runs fp8 matmuls where the GPU has them; int8/int4/nf4 are weight-only (16-bit matmuls).")]
GroupSizeOption = Annotated[Optional[int], typer.Option("--group-size", help="Values per quantisation scale (fp8, int8, int4, nf4). Default 128; 64 for nf4 (bitsandbytes' block, as in QLoRA).", show_default=False)]
# The KV cache's format where it is stored and read (memory, serve); arch's --kv-dtype only sizes
# bytes per token, in any format llmplan.dtypes lists, so it keeps its own.
KvDtypeOption = Annotated[Optional[str], typer.Option("--kv-dtype", help="KV cache format: fp32, fp16, bf16, fp8, int8, int4 (default: 16-bit, fp32 with --dtype fp32).", show_default=False)]

# ----- prices: USD per GPU-hour --------------------------------------------------------------------
# A training run's price (compute, plan): a positive amount, parsed by units.parse_positive.
PriceOption = Annotated[Optional[str], typer.Option("--price", help="Price in USD per GPU-hour; adds cost_usd.", show_default=False)]
# serve prices TOKENS (cost per million in and out, per request), and 0 is allowed (owned GPUs): a
# different question with its own checks, so its own alias.
ServePriceOption = Annotated[Optional[float], typer.Option("--price", help="USD per GPU-hour: adds cost per million input and output tokens and per request.", show_default=False)]

# ----- training run and cluster (throughput, layout) ------------------------------------------------
SeqOption = Annotated[Optional[int], typer.Option("--seq", help="Training sequence length (default: the model's pre-training context).", show_default=False)]
GlobalBatchOption = Annotated[Optional[int], typer.Option("--global-batch", help="Sequences per optimizer step (all replicas).", show_default=False)]
BatchTokensOption = Annotated[Optional[str], typer.Option("--batch-tokens", help="Tokens per optimizer step instead of --global-batch (e.g. 16M); a multiple of --seq.", show_default=False)]
ClusterGpuOption = Annotated[str, typer.Option("--gpu", "-g", help="GPU from the catalog (llmplan gpus): peak, HBM, scale-up domain, link bandwidths.")]
ClusterGpusOption = Annotated[Optional[int], typer.Option("--gpus", "-k", help="GPUs in all (data parallel = gpus / (tp * pp * cp)).", show_default=False)]
GpusPerNodeOption = Annotated[Optional[int], typer.Option("--gpus-per-node", help="Override the scale-up domain (8 for DGX/HGX, 72 for NVL72).", show_default=False)]
IntraBwOption = Annotated[Optional[str], typer.Option("--intra-bw", help="Override the intra-node bandwidth per GPU per direction: 450GB (bytes/s), 3.6Tb/s (bits/s) or a number of bytes/s.", show_default=False)]
InterBwOption = Annotated[Optional[str], typer.Option("--inter-bw", help="Override the inter-node bandwidth per GPU per direction, e.g. 400Gb/s or 50GB.", show_default=False)]
MatmulEffOption = Annotated[Optional[float], typer.Option("--matmul-efficiency", help="Override the achievable fraction of the dense peak for large matmuls (catalog: measured, else 0.806 from our H100 measurement).", show_default=False)]
AttentionOption = Annotated[str, typer.Option("--attention", help="flash (FlashAttention kernels) or eager (Megatron fused softmax: s^2 scores in HBM).")]
DropoutOption = Annotated[bool, typer.Option("--dropout/--no-dropout", help="Dropout on attention probabilities and residuals (GPT-3/Megatron 0.1); modern LLMs train without.")]
OverlapOption = Annotated[bool, typer.Option("--overlap-dp/--no-overlap-dp", help="Gradient reduction overlaps backward (DDP buckets, Megatron --overlap-grad-reduce).")]
TpAcrossOption = Annotated[bool, typer.Option("--tp-across-nodes", help="Allow tensor parallelism beyond one node (slow; off by default).")]
StackOption = Annotated[Optional[str], typer.Option("--stack", help="The training software (presets/stacks.toml): megatron (default), torchtitan, fsdp (llm-foundry), deepspeed or ddp (PyTorch DDP + autocast); sets the attention kernel, fused or eager kernels, overlap, what 'selective' recompute keeps, mixed-precision memory and the layouts it can run.", show_default=False)]
MemoryStackOption = Annotated[Optional[str], typer.Option("--stack", help="Training: the software whose memory to count (presets/stacks.toml): ddp (default: DDP + autocast, what the H100 measurements ran), megatron, torchtitan, fsdp or deepspeed; sets --precision and what 'selective' recompute keeps unless given.", show_default=False)]
CompileOption = Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the layers where the stack offers it (torchtitan, ddp): element-wise ops fused, no per-op host overhead.", show_default=False)]

# ----- the scaling question (optimal, loss, plan, compare) ------------------------------------------
LawOption = Annotated[Optional[str], typer.Option("--law", "-l", help="Scaling law: a preset id (default epoch-2024) or a TOML file.", show_default=False)]
TokensOption = Annotated[Optional[str], typer.Option("--tokens", "-D", help="Training tokens (e.g. 1.4T).", show_default=False)]
# optimal and plan solve for what is not fixed: the same --tokens, said as a constraint.
FixTokensOption = Annotated[Optional[str], typer.Option("--tokens", "-D", help="Fix the training tokens (e.g. 1.4T).", show_default=False)]
InferenceTokensOption = Annotated[Optional[str], typer.Option("--inference-tokens", help="Tokens the model will serve (e.g. 2T), with --target-loss: minimise training plus inference compute (Sardana et al. 2024).", show_default=False)]
RatioOption = Annotated[Optional[str], typer.Option("--ratio", help="Tokens per parameter for --law tokens-per-param (default 20).", show_default=False)]



# ----- a parallel layout's degrees (throughput and memory set them; layout pins them, searching the rest) -----
TpOption = Annotated[Optional[int], typer.Option("--tp", help="Tensor-parallel degree (divides the heads).")]
PpOption = Annotated[Optional[int], typer.Option("--pp", help="Pipeline-parallel degree (stages of whole layers).")]
VpOption = Annotated[Optional[int], typer.Option("--vp", help="Virtual stages per pipeline rank (interleaved 1F1B).")]
CpOption = Annotated[Optional[int], typer.Option("--cp", help="Context-parallel degree (ring attention; each GPU holds seq / cp of the tokens).")]
EpOption = Annotated[Optional[int], typer.Option("--ep", help="Expert-parallel degree (MoE: routed experts split over ep data-parallel GPUs).")]
ZeroOption = Annotated[Optional[int], typer.Option("--zero", help="ZeRO stage 0-3 over the data-parallel GPUs (FSDP = 3).")]
MicroBatchOption = Annotated[Optional[int], typer.Option("--micro-batch", help="Sequences per micro-batch.")]
RecomputeOption = Annotated[Optional[str], typer.Option("--recompute", help="Activation recomputation: none, selective or full (what 'selective' keeps is the stack's).")]
SequenceParallelOption = Annotated[bool, typer.Option("--sequence-parallel", help="Megatron sequence parallelism with --tp: norms and block inputs split over the tp GPUs too (all-gather + reduce-scatter instead of all-reduce).")]


# ----- flags shared by name whose help says what each command does with them ---------------------
# One declaration each (the flag, its short form, its type); the command passes its own words.


def plot_option(what: str, more: str = ".") -> Any:
    """--plot FILE in every command that draws: `what` it draws, and `more` after the file types."""
    return Annotated[Optional[str], typer.Option("--plot", help=f"Also draw {what} to FILE (.png or .svg; needs matplotlib){more}", show_default=False)]


def params_option(help: str, short: bool = True) -> Any:
    """--params/-N: a parameter count (7B, 70e9)."""
    return Annotated[Optional[str], typer.Option("--params", *(("-N",) if short else ()), help=help, show_default=False)]


def unique_tokens_option(help: str) -> Any:
    """--unique-tokens/-U: the unique tokens behind the training tokens (data-constrained law)."""
    return Annotated[Optional[str], typer.Option("--unique-tokens", "-U", help=help, show_default=False)]


def target_loss_option(help: str) -> Any:
    """--target-loss: a loss in nats per token."""
    return Annotated[Optional[str], typer.Option("--target-loss", help=help, show_default=False)]


def law_option(help: str) -> Any:
    """--law/-l: a law preset id or a TOML file (LawOption is the plain one)."""
    return Annotated[Optional[str], typer.Option("--law", "-l", help=help, show_default=False)]

def seq_option(help: str) -> Any:
    """--seq: a sequence length in tokens (at least 1)."""
    return Annotated[Optional[int], typer.Option("--seq", help=help, min=1, show_default=False)]


def context_option(help: str) -> Any:
    """--context: a context length in tokens."""
    return Annotated[Optional[int], typer.Option("--context", help=help, show_default=False)]


def tokens_option(help: str) -> Any:
    """--tokens/-D: a token count (1.4T)."""
    return Annotated[Optional[str], typer.Option("--tokens", "-D", help=help, show_default=False)]


# ----- groups ------------------------------------------------------------------------------------
# (parameter name, Annotated alias, default) in --help order.
Group = tuple[tuple[str, Any, Any], ...]

MODEL_SOURCE: Group = (("preset", PresetOption, None), ("hf", HubOption, None), ("hf_config", HfConfigOption, None), ("safetensors", SafetensorsOption, None))
MODEL_SOURCES: Group = (("preset", PresetListOption, None), ("hf", HubListOption, None), ("hf_config", HfConfigListOption, None), ("safetensors", SafetensorsListOption, None))
COMPUTE_MODEL_SOURCE: Group = (("preset", ComputePresetOption, None),) + MODEL_SOURCE[1:]
_DIMENSIONS: Group = (
    ("layers", LayersOption, None), ("d_model", DModelOption, None), ("heads", HeadsOption, None),
    ("kv_heads", KvHeadsOption, None), ("head_dim", HeadDimOption, None), ("ffn", FfnOption, None),
    ("mlp", MlpOption, None), ("vocab", VocabOption, None),
)
_MOE: Group = (
    ("experts", ExpertsOption, None), ("experts_per_token", ExpertsPerTokenOption, None),
    ("shared_experts", SharedExpertsOption, None), ("moe_ffn", MoeFfnOption, None), ("dense_layers", DenseLayersOption, None),
)
SHAPE: Group = _DIMENSIONS + (("tied", TiedOption, None),) + _MOE
# arch's: the stacks of an encoder-decoder, and the choices that change the count (positions, norm, bias).
FULL_SHAPE_HEAD: Group = (("family", TypeOption, None), ("layers", LayersOption, None),
                          ("encoder_layers", EncoderLayersOption, None), ("decoder_layers", DecoderLayersOption, None)) + _DIMENSIONS[1:]
FULL_SHAPE_TAIL: Group = (("tied", TiedOption, None), ("positions", PositionsOption, None), ("norm", NormOption, None),
                          ("bias", BiasOption, None)) + _MOE
HARDWARE_TIME: Group = (
    ("gpu", GpuOption, None), ("gpus", GpusOption, None), ("days", DaysOption, None), ("hours", HoursOption, None),
    ("gpu_hours", GpuHoursOption, None), ("mfu", MfuOption, None), ("goodput", GoodputOption, None),
    ("dtype", PeakDtypeOption, "bf16"),
)


def with_option(group: Group, name: str, alias: Any, default: Any = None) -> Group:
    """The group with one option's alias replaced (e.g. plan's own --gpu help)."""
    return tuple((n, alias, default) if n == name else (n, a, d) for n, a, d in group)


def grouped(**groups: Group) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Replace each placeholder parameter named in `groups` by that group's options, in place; the
    command receives one `Flags` per placeholder. Typer reads the rewritten `__signature__` and
    `__annotations__` (inspect.signature and typing.get_type_hints), so --help, the order of the
    options and their parsing are those of options written out in the signature."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(command, include_extras=True)
        params: list[inspect.Parameter] = []
        annotations: dict[str, Any] = {}
        members: dict[str, tuple[str, ...]] = {}
        for param in inspect.signature(command).parameters.values():
            group = groups.get(param.name)
            if group is None:
                params.append(param.replace(annotation=hints.get(param.name, param.annotation)))
                annotations[param.name] = hints.get(param.name, param.annotation)
                continue
            members[param.name] = tuple(n for n, _, _ in group)
            for name, alias, default in group:
                params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY if param.kind == inspect.Parameter.KEYWORD_ONLY
                                                else inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=alias))
                annotations[name] = alias
        missing = set(groups) - set(members)
        if missing:
            raise TypeError(f"{command.__name__} has no placeholder parameter for {', '.join(sorted(missing))}")
        names = [p.name for p in params]
        if len(names) != len(set(names)):
            raise TypeError(f"{command.__name__}: an option of a group is also declared by the command")

        @functools.wraps(command)
        def wrapper(**values: Any) -> Any:
            for placeholder, member_names in members.items():
                values[placeholder] = Flags((n, values.pop(n)) for n in member_names)
            return command(**values)

        wrapper.__signature__ = inspect.Signature(params, return_annotation=inspect.Signature.empty)  # type: ignore[attr-defined]
        wrapper.__annotations__ = annotations
        del wrapper.__wrapped__  # inspect.signature must read the rewritten signature, not the command's
        return wrapper

    return decorate


# ----- hardware time -> a compute budget (optimal, compute, plan) -----------------------------------
#     --gpu h100 --gpus 256 --days 30 | --hours 720 | --gpu-hours 184k   [--mfu 0.4] [--goodput 0.9]
# The days are calendar time: budget = GPUs x dense peak x MFU x time x goodput (llmplan.systems.budget).


