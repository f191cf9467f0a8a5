"""The training software stack: what a framework runs (presets/stacks.toml), as the step-time and memory models read it.

A stack decides the attention kernel, fused or eager element-wise kernels (and with them the host's issue time),
torch.compile, the fp8 recipe, what overlaps with what, what "selective" recomputation keeps, how mixed precision
lays out memory, how ZeRO-2 reduces gradients, and which layouts can run. Every field is data with its source.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmplan.errors import InputError
from llmplan.records import record

# The stack throughput, layout, compute --mfu auto, compare and plan assume when none is given: Megatron-LM, the
# stack llmplan's step model was first built and calibrated on (Narayanan 2021, Korthikanti 2022).
DEFAULT_STACK = "megatron"
# memory --train's default: plain DDP + autocast, what its H100 measurements ran.
DEFAULT_MEMORY_STACK = "ddp"


@record
class Stack:
    id: str
    name: str
    attention: str = "te"
    elementwise: str = "fused"
    compiled: bool = False
    compile_option: bool = False
    fp8_recipe: str = "te-delayed"
    overlap_grad_reduce: bool = True
    overlap_param_gather: bool = True
    tp_comm_overlap: bool = False
    selective_recompute: str = "attention-core"
    mixed_precision: str = "megatron"
    zero2_gradients: str = "reduce-scatter-per-micro-batch"
    zero_stages: tuple = (0, 1, 2, 3)
    zero_with_pipeline: tuple = (0, 1, 2, 3)
    tp: bool = True
    pp: bool = True
    cp: bool = True
    ep: bool = True
    sequence_parallel: str = "optional"
    pipeline_split: str = "even"
    calibrated: tuple = ()
    calibration: tuple = ()  # per calibrated GPU: "GPU: N runs, -a% to +b%, mean c%" (published step / predicted - 1)
    fused_loss: bool = False
    grad_reduce_bytes: int = 2  # bytes per gradient value in the data-parallel reduction (4: fp32 reduce)
    logits_kept_for_backward: bool = True  # the training loop holds the 16-bit logits until backward ends
    norm: str = ""  # fused | eager: the norm kernel where it differs from the other element-wise ops; "" as `elementwise`
    optimizer_impl: str = ""  # for-loop | foreach | fused: how the Adam step runs; "" PyTorch's default
    zero3_model_parallel_caveat: str = ""  # said of a ZeRO-3 layout with tp or cp > 1: a cost the stack's docs name, unmodelled
    gqa_repeat_kv: bool = False  # the model copies K and V to every query head before attention (repeat_kv)
    separate_projections: bool = False  # q, k, v (and gate, up) are separate matmuls of one input: backward adds their gradients
    gather_copy_bytes: float = 0.0  # HBM bytes per parameter the framework copies around each ZeRO-3/FSDP all-gather
    reduce_copy_bytes: float = 0.0  # ... and around each gradient reduce-scatter (casts, pre-division)
    searched_zero_stages: tuple = ()  # the ZeRO stages a layout search proposes unless --zero is given; () = zero_stages

    def __post_init__(self):
        if not self.norm:
            object.__setattr__(self, "norm", self.elementwise)

    @classmethod
    def from_preset(cls, preset: Any) -> "Stack":
        d = preset.data
        zs = tuple(d["zero_stages"])
        return cls(preset.id, d["name"], d["attention"], d["elementwise"], bool(d["compiled"]), bool(d.get("compile_option", False)),
                   d["fp8_recipe"], bool(d["overlap_grad_reduce"]), bool(d["overlap_param_gather"]), bool(d["tp_comm_overlap"]),
                   d["selective_recompute"], d["mixed_precision"], d.get("zero2_gradients", "reduce-scatter-per-micro-batch"),
                   zs, tuple(d.get("zero_with_pipeline", zs)), bool(d["tp"]), bool(d["pp"]), bool(d["cp"]), bool(d["ep"]),
                   d["sequence_parallel"], d["pipeline_split"], tuple(d.get("calibrated", ())), tuple(d.get("calibration", ())), bool(d.get("fused_loss", False)),
                   int(d.get("grad_reduce_bytes", 2)), bool(d.get("logits_kept_for_backward", True)), d.get("norm", ""),
                   d.get("optimizer_impl", ""), d.get("zero3_model_parallel_caveat", ""), bool(d.get("gqa_repeat_kv", False)), bool(d.get("separate_projections", False)),
                   float(d.get("gather_copy_bytes", 0.0)), float(d.get("reduce_copy_bytes", 0.0)), tuple(d.get("searched_zero_stages", ())))

    def compiled_as(self, compile_: bool | None) -> "Stack":
        """The stack with --compile (or --no-compile) applied; refused where the stack does not offer it."""
        if compile_ is None or compile_ == self.compiled:
            return self
        if compile_ and not self.compile_option:
            raise InputError(f"--compile: the {self.id} stack does not offer torch.compile in llmplan's presets; drop --compile or use --stack torchtitan")
        return replace(self, compiled=bool(compile_))

    @property
    def eager(self) -> bool:
        """Each element-wise op its own kernel and host launch (not fused, not compiled)."""
        return self.elementwise == "eager" and not self.compiled

    def allows(self, layout) -> str | None:
        """Why this stack cannot run `layout` (one line naming the fix), or None."""
        checks = [("tp", self.tp, "tensor parallelism (--tp)"), ("pp", self.pp, "pipeline parallelism (--pp)"),
                  ("cp", self.cp, "context parallelism (--cp)"), ("ep", self.ep, "expert parallelism (--ep)")]
        for key, ok, what in checks:
            if not ok and getattr(layout, key) > 1:
                return f"the {self.id} stack has no {what}; use --{key} 1 or a stack that has it (--stack megatron or torchtitan)"
        zeros = self.zero_with_pipeline if layout.pp > 1 else self.zero_stages
        if layout.zero not in zeros:
            with_pp = " with pipeline parallelism" if layout.pp > 1 and layout.zero in self.zero_stages else ""
            return f"the {self.id} stack runs ZeRO {', '.join(map(str, zeros))}{with_pp}, not --zero {layout.zero}"
        if self.sequence_parallel == "never" and layout.sequence_parallel:
            return f"the {self.id} stack has no sequence parallelism; drop --sequence-parallel"
        return None

    def caveat(self, layout: Any) -> str | None:
        """What the step time leaves out for this layout on this stack, where its docs name a cost no
        measurement sizes (presets/stacks.toml zero3_model_parallel_caveat), or None."""
        if self.zero3_model_parallel_caveat and layout.zero == 3 and (layout.tp > 1 or layout.cp > 1):
            return f"ZeRO-3 with tp {layout.tp} and cp {layout.cp} on the {self.id} stack: {self.zero3_model_parallel_caveat}"
        return None

    def note(self, gpu_id: str) -> str | None:
        """How sure a row is: the stack's calibration error on this GPU, or that it has none here."""
        if gpu_id in self.calibrated:
            for line in self.calibration:
                gpu, _, said = line.partition(": ")
                if gpu == gpu_id:
                    runs, spread, mean = said.split(", ")
                    low, high = spread.split(" to ")
                    word = lambda e: f"{e.lstrip('-+')} {'shorter' if e.startswith('-') else 'longer'}"
                    what = word(low) if low == high else f"{word(low)} to {word(high)}"
                    return (f"calibration: on {runs} of {self.id} published on {gpu_id} the measured step was {what} than "
                            f"predicted (mean |error| {mean.removeprefix('mean ')})")
            return None
        where = f" (calibrated on {', '.join(self.calibrated)})" if self.calibrated else ""
        return f"the {self.id} stack has no end-to-end calibration on {gpu_id}{where}: kernel rates only"


def load(stack_id: str | None, presets: Any = None, default: str = DEFAULT_STACK) -> Stack:
    """The stack preset `stack_id` (id or alias), or the default; unknown ids are bad input naming the known ones."""
    from llmplan.presets import catalog

    cat = catalog(presets)
    return Stack.from_preset(cat.get("stacks", stack_id or default))


def default() -> Stack:
    """The default stack without reading a user's presets folder (the core's default argument)."""
    return load(None)


def describe(stack: Stack, gpu_arch: str) -> str:
    """What the stack changes, in words, for the note under a step: its attention kernel on this GPU, its
    element-wise kernels, what 'selective' keeps, its memory layout."""
    from llmplan.systems import kernels

    kernel = kernels.attention_kernel(stack.attention, gpu_arch)
    measured = kernels.attention_rate(kernel, gpu_arch, 8192, 128) is not None
    attention = {"fa2": "FlashAttention-2", "fa3": "FlashAttention-3", "cudnn": "cuDNN fused attention",
                 "fa-triton": "Triton FlashAttention"}.get(kernel, kernel)
    selective = {"attention-core": "keeps all but the attention core", "op-level": "reruns every second matmul and the element-wise ops",
                 "per-block": "checkpoints whole blocks (as full)"}[stack.selective_recompute]
    memory = {"megatron": "bf16 weights, fp32 master and Adam (distributed optimizer)", "fsdp": "fp32 sharded parameters gathered in bf16, no cast cache",
              "amp": "fp32 weights with autocast's bf16 cast cache", "deepspeed": "ZeRO's 2 + 2 + 12 bytes per parameter"}[stack.mixed_precision]
    return (f"stack {stack.id}: {attention}{'' if measured else ' (no measured rate on this GPU: 0.6 of peak)'}, "
            f"{'compiled' if stack.compiled else stack.elementwise} element-wise kernels, 'selective' {selective}; {memory}")
