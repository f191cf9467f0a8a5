"""The training software stack as data (presets/stacks.toml) and the kernel rates (presets/kernels.toml), issue 21.

What each stack changes is checked against what its framework does (the source named in each preset field),
and the measured kernel rates against their published numbers.
"""

from __future__ import annotations

import json

import pytest

from conftest import run_cli

MUST_SHOW = ["throughput", "--preset", "llama-3.1-8b", "--gpu", "h100", "--gpus", "8", "--seq", "8192", "--global-batch", "16",
             "--micro-batch", "2", "--zero", "3", "--recompute", "selective", "-f", "json"]
STACKS = ("megatron", "torchtitan", "fsdp", "deepspeed", "ddp")


def _stack(name):
    from llmplan.systems.stack import load

    return load(name)


def _row(args):
    r = run_cli(args)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)[0], r.stderr


# ----------------------------------------------------------------------------- the presets

def test_every_stack_names_its_sources():
    from llmplan.presets import catalog

    cat = catalog()
    assert set(STACKS) <= set(cat.ids("stacks"))
    for preset in cat.all("stacks"):
        for choice in ("attention", "elementwise", "fp8", "overlap", "recompute", "mixed_precision", "layouts"):
            source = preset.get(f"{choice}_source")
            assert source and ("/" in source or "." in source), f"{preset.id}: {choice}_source names no file"
        assert preset["version"]


def test_what_each_stack_changes():
    # Megatron: TE attention, fused kernels, selective = attention core (Korthikanti 2022 section 5), distributed optimizer
    m, t, f, d, p = (_stack(s) for s in STACKS)
    assert (m.attention, m.elementwise, m.selective_recompute, m.mixed_precision) == ("te", "fused", "attention-core", "megatron")
    # torchtitan: SDPA (FlashAttention-2), eager unless --compile, op-level SAC, FSDP2 bf16 params + fp32 reduce
    assert (t.attention, t.eager, t.selective_recompute, t.mixed_precision) == ("sdpa", True, "op-level", "fsdp")
    assert not t.compiled_as(True).eager
    # llm-foundry: FSDP only, whole-block checkpointing
    assert (f.tp, f.pp, f.cp, f.selective_recompute) == (False, False, False, "per-block")
    # DeepSpeed: pipeline only with ZeRO 0-1 (deepspeed/runtime/pipe/engine.py)
    assert d.zero_with_pipeline == (0, 1) and 3 in d.zero_stages
    # plain DDP + autocast: the cast cache (amp), no model parallelism, no ZeRO
    assert (p.mixed_precision, p.tp, p.pp, p.zero_stages) == ("amp", False, False, (0,))


def test_unknown_stack_is_one_line():
    r = run_cli(MUST_SHOW + ["--stack", "megatrom"])
    assert r.code == 2 and r.stderr.count("\n") == 1 and "megatron" in r.stderr


def test_compile_only_where_the_stack_offers_it():
    r = run_cli(MUST_SHOW + ["--stack", "megatron", "--compile"])
    assert r.code == 2 and "does not offer torch.compile" in r.stderr
    eager, _ = _row(MUST_SHOW + ["--stack", "torchtitan"])
    compiled, _ = _row(MUST_SHOW + ["--stack", "torchtitan", "--compile"])
    assert compiled["step_seconds"] < eager["step_seconds"]  # fused element-wise work


# ----------------------------------------------------------------------------- must show

def test_torchtitan_and_megatron_differ_for_their_reasons():
    titan, notes_t = _row(MUST_SHOW + ["--stack", "torchtitan"])
    mega, notes_m = _row(MUST_SHOW + ["--stack", "megatron"])
    assert titan["stack"] == "torchtitan" and mega["stack"] == "megatron"
    assert titan["step_seconds"] > 1.2 * mega["step_seconds"]
    # the reasons, part by part: torchtitan's op-level selective recompute reruns every second matmul (HFU > MFU),
    # Megatron's keeps all but the attention core, which FlashAttention-style kernels never save (HFU = MFU) ...
    assert titan["hfu"] > 1.05 * titan["mfu"] and mega["hfu"] == pytest.approx(mega["mfu"])
    # ... and FlashAttention-2 on H100 runs at ~300 TFLOP/s where cuDNN's fused attention reaches ~520 (8K, hd 128)
    assert "FlashAttention-2" in notes_t and "cuDNN" in notes_m
    # the memory differs for the stack's reasons too: op-level SAC saves far less than Megatron's selective
    assert titan["total_bytes"] < 0.7 * mega["total_bytes"]


def test_405b_on_uneven_stages_runs():
    row, _ = _row(["throughput", "--preset", "llama-3.1-405b", "--gpu", "h100", "--gpus", "16384", "--tp", "8", "--pp", "16",
                   "--seq", "8192", "--global-batch", "2048", "--stack", "megatron", "-f", "json"])
    assert (row["tp"], row["pp"], row["dp"]) == (8, 16, 128)


# ----------------------------------------------------------------------------- layouts a stack can run

def test_layout_searches_only_what_the_stack_runs():
    rows = json.loads(run_cli(["layout", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "16", "--global-batch", "64",
                               "--stack", "fsdp", "--top", "5", "-f", "json"]).stdout)
    assert rows and all(r["tp"] == 1 and r["pp"] == 1 and r["cp"] == 1 and r["zero"] in (0, 2, 3) for r in rows)
    assert all(r["stack"] == "fsdp" for r in rows)
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.layout import Run
    from llmplan.systems.layout_search import enumerate_layouts

    shape = arch.Shape.from_preset(catalog().get("models", "llama-2-7b"))
    arrays = enumerate_layouts(shape, Run(seq=4096, global_batch=64, stack=_stack("deepspeed")), 16, 8)
    assert arrays["pp"].max() > 1 and arrays["zero"][arrays["pp"] > 1].max() <= 1 and arrays["tp"].max() == 1


@pytest.mark.parametrize("stack, args, expected", [
    ("ddp", ["--tp", "2"], "the ddp stack has no tensor parallelism"),
    ("deepspeed", ["--pp", "2", "--zero", "2"], "runs ZeRO 0, 1 with pipeline parallelism"),
    ("megatron", ["--zero", "2"], "the megatron stack runs ZeRO 0, 1, 3"),
])
def test_a_layout_the_stack_cannot_run_is_bad_input(stack, args, expected):
    r = run_cli(["throughput", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "16", "--global-batch", "64", "--stack", stack] + args)
    assert r.code == 2 and expected in r.stderr and r.stderr.count("\n") == 1


# ----------------------------------------------------------------------------- kernel rates

def test_attention_rates_are_the_measured_ones():
    # flash-attention assets: FA2 causal hd128 fwd+bwd 308 TFLOP/s at 8K on H100, 182 on A100; FA3 forward 602.
    from llmplan.systems import kernels

    assert kernels.attention_rate("fa2", "sm90", 8192, 128)[0] == pytest.approx(308e12)
    assert kernels.attention_rate("fa2", "sm80", 8192, 128)[0] == pytest.approx(182e12)
    assert kernels.attention_rate("fa3", "sm90", 8192, 128)[0] == pytest.approx(602e12)
    assert kernels.attention_rate("fa2", "sm90", 8192, 64)[0] == pytest.approx(273e12)
    between = kernels.attention_rate("fa2", "sm90", 3000, 128)[0]
    assert 265e12 < between < 294e12  # interpolated in log2(seq)
    assert kernels.attention_kernel("te", "sm90") == "cudnn" and kernels.attention_kernel("te", "sm80") == "fa2"
    assert kernels.attention_rate("fa2", "", 8192, 128) is None  # no measurement: the row says so


def test_gemm_floor_per_launch():
    # XLA's sm_90 table: the smallest bf16 GEMMs all take about 6 us whatever their FLOPs.
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.step_time import gemm_seconds

    h100 = GPU.from_preset(catalog().get("gpus", "h100"))
    assert gemm_seconds(512, 256, 256, h100) == pytest.approx(6e-6)
    assert gemm_seconds(8192, 8192, 8192, h100) > 1e-3


def test_fp8_gains_only_on_large_gemms():
    # MAMF: fp8 1402.6 vs bf16 794.5 TFLOP/s on H100 (1.77x, not 2x); torchao: a 1024x2048x1024 linear gains nothing.
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.step_time import gemm_seconds

    cat = catalog().get("gpus", "h100")
    bf16, fp8 = GPU.from_preset(cat, "bf16"), GPU.from_preset(cat, "fp8")
    big = gemm_seconds(16384, 16384, 16384, bf16) / gemm_seconds(16384, 16384, 16384, fp8, fp8_cast=3)
    assert 1.5 < big < 1402.6 / 794.5 + 0.02
    small = gemm_seconds(1024, 1024, 2048, bf16) / gemm_seconds(1024, 1024, 2048, fp8, fp8_cast=5)
    assert small == pytest.approx(1.0, abs=0.02)  # left in bf16: the faster of the two
    assert GPU.from_preset(cat, "fp8", sustained=False).best_matmul_flops == pytest.approx(1402.6e12, rel=0.01)


def test_a_training_step_runs_at_the_clock_a_sustained_load_holds():
    # Hopper's kernel rates are bursts at the 1980 MHz boost clock; a training step's compute and communication hold
    # the SM clock at about 1575 MHz under the power limit (DeepGEMM issue #120): GEMMs and attention run at that
    # ratio, memory-bound kernels (HBM's clock does not move) and serving do not.
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.step_time import attention_seconds, elementwise_seconds, gemm_seconds
    from llmplan.systems.layout import Run

    cat = catalog().get("gpus", "h100")
    burst, held = GPU.from_preset(cat, sustained=False), GPU.from_preset(cat)
    assert held.clock_ratio == pytest.approx(1575 / 1980) and burst.clock_ratio == 1.0
    big = (16384, 16384, 16384)
    assert gemm_seconds(*big, burst) / gemm_seconds(*big, held) == pytest.approx(1575 / 1980, rel=0.03)
    run = Run(seq=8192, global_batch=1)
    assert attention_seconds(1e15, 8192, 128, run, burst)[0] / attention_seconds(1e15, 8192, 128, run, held)[0] == pytest.approx(1575 / 1980)
    assert elementwise_seconds(1e9, burst) == elementwise_seconds(1e9, held)
    # A100s: no sustained clock is given, the measured rate stands; an explicit --matmul-efficiency is taken as the rate a
    # step's matmuls see (no derate on it), while attention keeps the sustained clock
    assert GPU.from_preset(catalog().get("gpus", "a100")).clock_ratio == 1.0
    given = GPU.from_preset(cat, matmul_efficiency=0.7)
    assert given.matmul_clock_ratio == 1.0 and given.clock_ratio == pytest.approx(1575 / 1980)
    assert given.best_matmul_flops == pytest.approx(0.7 * 989.4e12)


def test_host_overhead_bounds_small_layers_on_eager_stacks():
    # A layer takes the longer of the CPU's issue time (36 eager ops x 7 us forward and 65 backward: the kernels
    # torchtitan's block launches, counted op by op) and the GPU's time.
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.step_time import layer_cost

    tiny = arch.Shape(d_model=256, heads=4, vocab=1000, layers=2)
    h100 = GPU.from_preset(catalog().get("gpus", "h100"))
    cost = layer_cost(tiny, Run(seq=128, global_batch=8, stack=_stack("ddp")), Layout(), h100)
    assert cost.forward == pytest.approx(36 * 7e-6) and cost.backward == pytest.approx(65 * 7e-6)
    fused = layer_cost(tiny, Run(seq=128, global_batch=8, stack=_stack("megatron")), Layout(), h100)
    assert fused.forward == pytest.approx(14 * 7e-6)


@pytest.mark.parametrize("stack", STACKS)
def test_no_layout_beats_the_best_matmul(stack):
    # Issue 21: no layout may imply a hardware FLOP rate above the GPU's best measured matmul.
    rows = json.loads(run_cli(["layout", "--layers", "16", "--d-model", "2048", "--heads", "16", "--vocab", "32000", "--seq", "4096",
                               "--gpu", "h100", "--gpus", "8", "--global-batch", "64", "--stack", stack, "--top", "3", "-f", "json"]).stdout)
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU

    best = GPU.from_preset(catalog().get("gpus", "h100")).best_matmul_flops
    assert rows and all(r["hardware_flops_per_second_per_gpu"] <= best for r in rows)


# ----------------------------------------------------------------------------- time and memory agree

def test_zero2_reduces_every_micro_batch_where_the_stack_does():
    # DeepSpeed ZeRO-2 reduce-scatters each micro-batch's gradients (stage_1_and_2.py); with 8 micro-batches the
    # gradient traffic is 8 reduce-scatters, not one per step as ZeRO-1's.
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.step_time import step_time

    shape = arch.Shape.from_preset(catalog().get("models", "llama-2-7b"))
    cl = GPU.from_preset(catalog().get("gpus", "a100"))
    run = Run(seq=4096, global_batch=512, stack=_stack("deepspeed"), overlap_dp=False)
    z1 = step_time(shape, run, Layout(dp=64, zero=1, micro_batch=1), cl)
    z2 = step_time(shape, run, Layout(dp=64, zero=2, micro_batch=1), cl)
    assert z1.micro_batches == 8
    # (each of ZeRO-2's per-micro-batch reduce-scatters pays a latency per layer, ZeRO-1's one per 64M-parameter
    # bucket, so 8 against 1 + 1 comes out above 2.5x rather than the volumes' 4.5x)
    assert z2.dp_comm_seconds > 2.5 * z1.dp_comm_seconds


def test_pipeline_memory_and_bubble_from_the_busiest_stage():
    # Llama 3 405B: 126 layers on 16 stages, stages of 8 with the first and last 7 (Megatron's accounting).
    from llmplan.systems.layout import stage_layers

    assert stage_layers(126, 16, "embedding-and-loss") == (8, 7)
    assert stage_layers(126, 16, "even") == (8, 6)
    assert stage_layers(128, 64, "embedding-and-loss") == (2, 2)  # pp divides L: even stages (Narayanan 2021)
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.layout_search import memory_request

    shape = arch.Shape.from_preset(catalog().get("models", "llama-3.1-405b"))
    req = memory_request(shape, Run(seq=8192, global_batch=2048), Layout(tp=8, pp=16, dp=128, zero=1))
    assert req.stage_layers == 8


def test_memory_h100_cases_within_5_percent_under_stack_ddp():
    # The H100 measurements ran plain PyTorch + autocast: --stack ddp keeps every training case within 5%.
    rows = [json.loads(line) for line in open("tests/data/gpu_memory_calibration.jsonl")]
    cases = [r for r in rows if r.get("case") == "train"]
    assert cases
    for row in cases:
        precision = {"fp32": "fp32", "amp-bf16": "amp", "bf16": "pure"}[row["mode"]]
        dtype = "fp32" if precision == "fp32" else "bf16"
        args = ["memory", "--train", "--stack", "ddp", "--layers", "12", "--d-model", "768", "--heads", "12", "--kv-heads", "12",
                "--ffn", "2048", "--vocab", "32000", "--context", "2048", "--batch", str(row["batch"]), "--seq", str(row["seq"]),
                "--dtype", dtype, "--overhead", "0", "--attention", "eager" if row["attn"] == "eager" else "auto",
                "--optimizer-impl", "fused" if row["optimizer"].endswith("fused") else "for-loop", "-f", "json"]
        if precision != "amp":
            args += ["--precision", precision]  # the stack sets only the default precision
        if row["ckpt"]:
            args += ["--recompute", "full"]
        got, _ = _row(args)
        assert got["stack"] == "ddp"
        assert got["total_bytes"] == pytest.approx(row["peak_step_bytes"], rel=0.05), row


def test_memory_stack_sets_precision_and_selective():
    base = ["memory", "--preset", "llama-3.1-8b", "--train", "--zero", "3", "--gpus", "8", "--batch", "1", "--seq", "8192",
            "--recompute", "selective", "-f", "json"]
    ddp, _ = _row(base)
    titan, _ = _row(base + ["--stack", "torchtitan"])
    mega, _ = _row(base + ["--stack", "megatron"])
    assert ddp["stack"] == "ddp" and ddp["precision"] == "amp"
    # torchtitan's op-level policy saves the block input, odd-numbered mm outputs and the attention output;
    # Megatron's selective keeps everything but the attention core (nothing, under flash); DDP + HF checkpoints blocks
    assert titan["precision"] == "mixed" and titan["saved_activations_bytes"] < 0.6 * mega["saved_activations_bytes"]
    assert ddp["saved_activations_bytes"] < titan["saved_activations_bytes"]
    r = run_cli(["memory", "--preset", "llama-3.1-8b", "--stack", "megatron"])
    assert r.code == 2 and "add --train" in r.stderr


# ----------------------------------------------------------------------------- the hardware the published runs used

def test_catalog_has_the_published_runs_hardware():
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU

    cat = catalog()
    h96, h800, l40s = cat.get("gpus", "h100-96gb"), cat.get("gpus", "h800"), cat.get("gpus", "l40s")
    # torchtitan's H100s: 96 GB HBM2e, 2.4 TB/s, 500 W; the matmul rate at the NVL end (835.5 dense) of "between SXM and NVL"
    assert (h96["memory_bytes"], h96["bandwidth"], h96["tdp_watts"]) == (96e9, 2.4e12, 500)
    assert GPU.from_preset(h96, sustained=False).best_matmul_flops == pytest.approx(835.5e12 * 797.86 / 989.4, rel=0.01)
    assert GPU.from_preset(h96).arch == "sm90"
    # H800: NVLink cut to 400 GB/s (200 per direction), otherwise an H100 SXM5
    assert h800["intra_node_bandwidth"] == 200e9 and h800["peak_bf16"] == cat.get("gpus", "h100")["peak_bf16"]
    # L40S servers: up to 8 GPUs on PCIe, so serve --tp 4 is a node, not a refusal
    assert l40s["gpus_per_node"] == 8
    r = run_cli(["serve", "--preset", "llama-2-70b", "--gpu", "l40s", "--tp", "4", "-f", "json"])
    assert r.code == 0, r.stderr


def test_h800_tensor_parallel_costs_more_than_h100():
    base = ["throughput", "--preset", "llama-2-70b", "--gpus", "8", "--tp", "8", "--global-batch", "8", "--sequence-parallel", "-f", "json"]
    h100, _ = _row(base + ["--gpu", "h100"])
    h800, _ = _row(base + ["--gpu", "h800"])
    assert h800["tp_comm_seconds"] > 1.8 * h100["tp_comm_seconds"]


def test_stack_memory_fields():
    # Megatron keeps fp32 main gradients under bf16 (arguments.py: bf16 sets accumulate_allreduce_grads_in_fp32);
    # DeepSpeed ZeRO-1/2 holds a reduce and an all-gather bucket of 5e8 elements each (zero/config.py).
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.layout_search import memory_breakdown

    shape = arch.Shape.from_preset(catalog().get("models", "llama-2-7b"))
    layout = Layout(dp=8, zero=1, micro_batch=1)
    mega = memory_breakdown(shape, Run(seq=4096, global_batch=8, stack=_stack("megatron")), layout)
    deep = memory_breakdown(shape, Run(seq=4096, global_batch=8, stack=_stack("deepspeed")), layout)
    P = arch.params(shape)
    assert mega.gradients_bytes == pytest.approx(4 * P)
    assert deep.gradients_bytes == pytest.approx(2 * P)
    assert deep.at_peak["workspace"] - mega.at_peak["workspace"] == pytest.approx(2e9)


@pytest.mark.parametrize("command", [
    ["compute", "--preset", "llama-2-7b", "--gpu", "a100", "--gpus", "64", "--mfu", "auto"],
    ["plan", "--gpu", "h100", "--gpus", "64", "--days", "7", "--mfu", "auto"],
])
def test_stack_reaches_the_layout_search(command):
    # compute --mfu auto and plan pass the stack to the layout search: a stack without tensor or pipeline
    # parallelism (fsdp) finds a different layout or MFU than Megatron's.
    a = run_cli(command + ["--stack", "megatron", "-f", "json"])
    b = run_cli(command + ["--stack", "fsdp", "-f", "json"])
    assert a.code == 0 and b.code == 0, a.stderr + b.stderr
    ra, rb = json.loads(a.stdout)[0], json.loads(b.stdout)[0]
    assert ra["mfu"] != rb["mfu"]
    r = run_cli(["compute", "--preset", "llama-2-7b", "--gpu", "a100", "--stack", "fsdp"])
    assert r.code == 2 and "add --mfu auto" in r.stderr


def test_compare_takes_the_stack():
    r = run_cli(["compare", "--models", "mpt-7b", "--stack", "fsdp", "-f", "json"])
    assert r.code == 0, r.stderr
    fsdp = json.loads(r.stdout)[0]["predicted_mfu"]
    mega = json.loads(run_cli(["compare", "--models", "mpt-7b", "-f", "json"]).stdout)[0]["predicted_mfu"]
    assert fsdp is not None and mega is not None and fsdp != mega


def test_zero2_memory_follows_the_stacks_reduction():
    # A stack that reduce-scatters every micro-batch keeps 1/dp of the gradients; one that accumulates whole
    # gradients and reduces once per step keeps them all, and its time pays the reduction once.
    from dataclasses import replace

    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.layout_search import memory_breakdown
    from llmplan.systems.step_time import step_time

    shape = arch.Shape.from_preset(catalog().get("models", "llama-2-7b"))
    per_mb = _stack("deepspeed")
    whole = replace(per_mb, zero2_gradients="accumulate-full")
    layout = Layout(dp=8, zero=2, micro_batch=1)
    a = memory_breakdown(shape, Run(seq=4096, global_batch=64, stack=per_mb), layout)
    b = memory_breakdown(shape, Run(seq=4096, global_batch=64, stack=whole), layout)
    assert b.gradients_bytes == pytest.approx(8 * a.gradients_bytes)
    cl = GPU.from_preset(catalog().get("gpus", "h100"))
    ta = step_time(shape, Run(seq=4096, global_batch=64, stack=per_mb, overlap_dp=False), layout, cl)
    tb = step_time(shape, Run(seq=4096, global_batch=64, stack=whole, overlap_dp=False), layout, cl)
    assert ta.dp_comm_seconds > 3 * tb.dp_comm_seconds


def test_a_fused_cross_entropy_saves_no_fp32_log_probs():
    # llm-foundry's MPT loss defaults to flash_attn's fused cross-entropy (modeling_mpt.py, loss_fn
    # 'fused_crossentropy'): no fp32 copy of the logits and no fp32 log-probabilities (4 bytes per logit) kept.
    from llmplan.model import arch
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.layout_search import memory_breakdown

    shape = arch.Shape(d_model=2048, heads=16, layers=24, vocab=50368, mlp="gelu", ffn=8192, positions="learned",
                       norm="layernorm", tied_embeddings=True, context=2048)
    layout = Layout(dp=8, zero=3, micro_batch=8)
    fused = memory_breakdown(shape, Run(seq=2048, global_batch=64, stack=_stack("fsdp")), layout)
    from dataclasses import replace

    plain = memory_breakdown(shape, Run(seq=2048, global_batch=64, stack=replace(_stack("fsdp"), fused_loss=False)), layout)
    logits = 8 * 2048 * 50368
    assert plain.activations_bytes - fused.activations_bytes == pytest.approx(logits * 4 - 8 * 2048 * 4)


# ----------------------------------------------------------------------------- issue 21, second pass

def test_triton_flash_attention_is_the_measured_one():
    # flash-attention assets/flash2_a100_fwd_bwd_benchmark.png, "FlashAttention Triton", causal hd128: 68 TFLOP/s at 2K,
    # 78 at 8K (FA2 155 and 182): the kernel llm-foundry's A100 table ran (attn_impl: triton)
    from llmplan.systems import kernels

    assert kernels.attention_rate("fa-triton", "sm80", 2048, 128)[0] == pytest.approx(68e12)
    assert kernels.attention_rate("fa-triton", "sm80", 8192, 128)[0] == pytest.approx(78e12)
    assert kernels.attention_rate("fa-triton", "sm90", 8192, 128) is None  # measured on A100 only


def _dp_step(stack, zero=1, tp=1, gpus=64, **kw):
    from dataclasses import replace

    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.step_time import step_time

    shape = arch.Shape.from_preset(catalog().get("models", "llama-2-7b"))
    cl = GPU.from_preset(catalog().get("gpus", "a100"))
    run = Run(seq=4096, global_batch=gpus // tp * 2, stack=replace(stack, **kw), overlap_dp=False)
    return step_time(shape, run, Layout(tp=tp, dp=gpus // tp, zero=zero, micro_batch=1, sequence_parallel=tp > 1), cl)


def test_gradients_are_reduced_in_the_stacks_dtype():
    # Megatron (bf16 -> accumulate_allreduce_grads_in_fp32), FSDP2 and Composer (reduce_dtype fp32) reduce-scatter fp32
    # gradients and all-gather bf16 weights: 4 + 2 bytes per parameter where a bf16 reduction moves 2 + 2
    for name in ("megatron", "torchtitan", "fsdp"):
        assert _stack(name).grad_reduce_bytes == 4
    assert _stack("deepspeed").grad_reduce_bytes == 2
    from llmplan.model import arch
    from llmplan.presets import catalog

    fp32 = _dp_step(_stack("megatron"))
    bf16 = _dp_step(_stack("megatron"), grad_reduce_bytes=2)
    # the latencies cancel: 2 more bytes per parameter through a 64-rank ring at 8 NICs x 25 GB/s per node
    P = arch.params(arch.Shape.from_preset(catalog().get("models", "llama-2-7b")))
    assert fp32.dp_comm_seconds - bf16.dp_comm_seconds == pytest.approx(P * 2 * 63 / 64 / 200e9, rel=1e-6)


def test_rings_across_nodes_use_the_ranks_nics():
    # tp 1: a data-parallel ring has 8 ranks in each DGX A100 node, and NCCL's channels leave through 8 NICs (busbw
    # 192 GB/s, GTC24 S62129); tp 8: one rank per node, one 25 GB/s NIC. The same bytes per GPU cost ~8x more
    from llmplan.presets import catalog
    from llmplan.systems import collectives as c
    from llmplan.systems.gpu import GPU

    cl = GPU.from_preset(catalog().get("gpus", "a100"))
    assert c.ring_bandwidth(64, 64, cl) == pytest.approx(200e9)  # min(8 x 25 GB/s, NVLink's 240)
    assert c.ring_bandwidth(8, 64, cl) == pytest.approx(25e9)
    assert c.ring_bandwidth(8, 8, cl) == pytest.approx(240e9)
    assert c.ranks_per_node(64, 512, 8) == 1 and c.ranks_per_node(256, 64, 8) == 8


def test_a_synchronous_step_waits_for_its_slowest_gpu():
    # MAMF's 5% GPU-to-GPU spread within a node (presets/kernels.toml straggler_spread): more than one GPU, compute
    # at 95% of the measured GPU's rate; one GPU waits for no other
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems import kernels
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.step_time import step_time

    assert kernels.straggler_spread() == 0.05
    shape = arch.Shape.from_preset(catalog().get("models", "llama-2-7b"))
    cl = GPU.from_preset(catalog().get("gpus", "h100"))
    one = step_time(shape, Run(seq=4096, global_batch=8), Layout(dp=1, micro_batch=1), cl)
    two = step_time(shape, Run(seq=4096, global_batch=16, overlap_dp=False), Layout(dp=2, micro_batch=1), cl)
    assert two.compute_seconds / one.compute_seconds == pytest.approx(1 / 0.95)


def test_hidden_collectives_cost_the_sms_they_hold():
    # TE userbuffers (num_sm 16) and NCCL (16 channels) hold 16 of the A100's 108 SMs while they hide behind compute:
    # a TP overlap that hides t seconds of collectives costs 16/108·t of compute; none where nothing is hidden
    from dataclasses import replace

    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems import kernels
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.step_time import comm_sm_share, layer_cost

    assert kernels.comm_sms() == 16
    cl = GPU.from_preset(catalog().get("gpus", "a100"))
    assert comm_sm_share(cl) == pytest.approx(16 / 108)
    shape = arch.Shape.from_preset(catalog().get("models", "llama-2-70b"))
    layout = Layout(tp=8, dp=1, micro_batch=1, sequence_parallel=True)
    plain = layer_cost(shape, Run(seq=4096, global_batch=1), layout, cl)
    stack = replace(_stack("megatron"), tp_comm_overlap=True)
    hidden = layer_cost(shape, Run(seq=4096, global_batch=1, stack=stack), layout, cl)
    assert hidden.tp_comm < plain.tp_comm
    extra = (hidden.forward + hidden.backward) - (plain.forward + plain.backward)
    assert extra == pytest.approx(16 / 108 * (plain.tp_comm - hidden.tp_comm), rel=1e-6)


def test_the_8b_must_show_memory_under_each_stack():
    # torchtitan frees the logits before backward ('del pred', torchtitan/train.py) and its op-level SAC saves ~15.5
    # bytes per token per unit of d_model in each layer: it fits an 80 GB H100. Megatron's selective keeps every
    # activation but the attention core, which flash kernels never save (Korthikanti et al. 2022: 34·s·b·h bytes a
    # layer): 32 layers x 16,384 tokens of Llama 3.1 8B hold 73 GB before the weights, so it does not fit, and says so.
    titan, _ = _row(MUST_SHOW + ["--stack", "torchtitan"])
    mega, _ = _row(MUST_SHOW + ["--stack", "megatron"])
    assert titan["fits"] and titan["total_bytes"] <= 80e9
    assert not mega["fits"]
    full, _ = _row([a if a != "selective" else "full" for a in MUST_SHOW] + ["--stack", "megatron"])
    assert full["fits"]


def test_logits_freed_before_backward_where_the_loop_drops_them():
    from dataclasses import replace

    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.layout_search import memory_breakdown

    assert not _stack("torchtitan").logits_kept_for_backward and not _stack("megatron").logits_kept_for_backward
    assert _stack("ddp").logits_kept_for_backward  # HF's outputs hold them (the H100 measurements)
    shape = arch.Shape.from_preset(catalog().get("models", "llama-3.1-8b"))
    layout = Layout(dp=8, zero=3, micro_batch=2, recompute="selective")
    titan = _stack("torchtitan")
    freed = memory_breakdown(shape, Run(seq=8192, global_batch=16, stack=titan), layout)
    kept = memory_breakdown(shape, Run(seq=8192, global_batch=16, stack=replace(titan, logits_kept_for_backward=True)), layout)
    logits = 2 * 8192 * shape.vocab * 2  # bf16, 16,384 tokens
    assert kept.peak_bytes - freed.peak_bytes == pytest.approx(logits)


def test_norm_and_optimizer_as_the_stack_runs_them():
    # torchtitan's 2024 configs set norm_type = "fused_rmsnorm" (a Triton kernel: input and 1/rms saved) with the other
    # element-wise ops eager; Composer's DecoupledAdamW updates one tensor at a time (no whole-shard temporaries)
    from dataclasses import replace

    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.layout_search import memory_breakdown

    titan = _stack("torchtitan")
    assert titan.norm == "eager" and replace(titan, norm="fused").elementwise == "eager"
    assert _stack("fsdp").optimizer_impl == "for-loop" and _stack("megatron").optimizer_impl == "fused"
    shape = arch.Shape.from_preset(catalog().get("models", "llama-2-13b"))
    layout = Layout(dp=64, zero=3, micro_batch=2)
    eager = memory_breakdown(shape, Run(seq=4096, global_batch=128, stack=titan), layout)
    fused = memory_breakdown(shape, Run(seq=4096, global_batch=128, stack=replace(titan, norm="fused")), layout)
    # each of the 2 norms a layer keeps its fp32 input copy (4 bytes) beside x̂ (2) eager, its 2-byte input fused
    T = 2 * 4096
    assert eager.activations_bytes - fused.activations_bytes == pytest.approx(40 * 2 * T * 5120 * 4, rel=0.01)
    run = Run(seq=4096, global_batch=128, stack=_stack("fsdp"))
    loop = memory_breakdown(shape, run, Layout(dp=8, zero=3, micro_batch=1, recompute="full"))
    each = memory_breakdown(shape, Run(seq=4096, global_batch=128, stack=replace(_stack("fsdp"), optimizer_impl="foreach")),
                            Layout(dp=8, zero=3, micro_batch=1, recompute="full"))
    assert loop.phases["optimizer step"]["transient"] < 0.2 * each.phases["optimizer step"]["transient"]


def test_a_megatron_zero3_layout_with_tp_or_cp_says_what_its_time_leaves_out(cli):
    # Megatron-FSDP's guide: unsetting CUDA_DEVICE_MAX_CONNECTIONS for FSDP overlap "may slow down TP and CP";
    # unmeasured, so said in a note, never in the number (presets/stacks.toml zero3_model_parallel_caveat).
    base = ["throughput", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "64", "--global-batch", "512", "-f", "json"]
    said = cli(base + ["--zero", "3", "--tp", "2"])
    assert said.code == 0 and "may slow down TP and CP" in said.stderr
    for quiet in (["--zero", "3"], ["--zero", "1", "--tp", "2"], ["--zero", "3", "--tp", "2", "--stack", "torchtitan"]):
        result = cli(base + quiet)
        assert result.code == 0 and "may slow down TP and CP" not in result.stderr, quiet


def test_the_gradient_merges_of_separate_projections_run_on_the_whole_input():
    # Under sequence parallelism the residual stream is split over tp, but q/k/v (and gate/up) take the gathered input:
    # the adds that merge their input gradients run over all T x h values on every rank (3 adds, 6 bytes per value).
    from dataclasses import replace

    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.step_time import layer_cost

    shape = arch.Shape.from_preset(catalog().get("models", "llama-3.1-70b"))
    cl = GPU.from_preset(catalog().get("gpus", "h100"))
    layout = Layout(tp=8, sequence_parallel=True)
    cost = lambda sep: layer_cost(shape, Run(seq=4096, global_batch=1, stack=replace(_stack("torchtitan"), separate_projections=sep)), layout, cl)
    extra = (cost(True).elementwise - cost(False).elementwise) * cl.hbm_rate
    assert extra == pytest.approx(3 * 4096 * shape.d_model * 3 * 2, rel=1e-9)


def test_megatron_falls_back_to_its_fsdp_where_nothing_else_fits():
    # Llama 3.1 70B on 16 H100s: no distributed-optimizer layout fits (model states alone ~70 GB per GPU), ZeRO-3 does.
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Run
    from llmplan.systems.layout_search import search

    shape = arch.Shape.from_preset(catalog().get("models", "llama-3.1-70b"))
    result = search(shape, Run(seq=8192, global_batch=16), GPU.from_preset(catalog().get("gpus", "h100")), 16, top=1)
    assert result.best and result.best[0].layout.zero == 3


def test_megatrons_search_proposes_its_distributed_optimizer_unless_asked():
    # presets/stacks.toml searched_zero_stages: the layouts Megatron's calibration runs used (ZeRO 0/1); ZeRO-3
    # (Megatron-FSDP) is searched when --zero 3 is given, and other stacks search every stage they run.
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.layout import Run
    from llmplan.systems.layout_search import enumerate_layouts

    shape = arch.Shape.from_preset(catalog().get("models", "llama-2-7b"))
    run = lambda stack: Run(seq=4096, global_batch=64, stack=_stack(stack))
    assert set(enumerate_layouts(shape, run("megatron"), 16, 8)["zero"]) == {0, 1}
    assert set(enumerate_layouts(shape, run("megatron"), 16, 8, fixed={"zero": 3})["zero"]) == {3}
    assert set(enumerate_layouts(shape, run("torchtitan"), 16, 8)["zero"]) == {0, 2, 3}


# The memory-bound bytes of torchtitan's Llama 3 block (pytorch/torchtitan @1ea476e9), measured op by op on the CPU build of
# PyTorch 2.13 under a TorchDispatchMode at Llama 3 8B's widths (d 4096, 32 heads, 8 KV heads, ffn 14336), per token per
# layer in bytes per unit of d_model: forward and backward, with the Triton fused RMSNorm (the 8B/13B rows) and the eager
# one (the 70B rows). tests/data/README.md says how they were measured.
TITAN_BLOCK_BYTES = {"fused": (85.25, 135.75), "eager": (149.26, 307.77)}


@pytest.mark.parametrize("norm", ["fused", "eager"])
def test_element_wise_bytes_are_the_ones_torchtitans_block_moves(norm):
    # Within 2% (the measurement counts rotary's small frequency-table reads and the norm weights' per-token share; the
    # model counts only the per-element traffic).
    from dataclasses import replace

    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.step_time import layer_cost

    shape = arch.Shape.from_preset(catalog().get("models", "llama-3-8b"))
    cl = GPU.from_preset(catalog().get("gpus", "a100"))
    stack = replace(_stack("torchtitan"), norm=norm)
    T = 8192
    cost = layer_cost(shape, Run(seq=T, global_batch=1, stack=stack), Layout(), cl)
    per_unit = lambda seconds: seconds * cl.hbm_rate / (T * shape.d_model)
    fwd, bwd = TITAN_BLOCK_BYTES[norm]
    assert per_unit(cost.elementwise_forward) == pytest.approx(fwd, rel=0.02)
    assert per_unit(cost.elementwise - cost.elementwise_forward) == pytest.approx(bwd, rel=0.02)


def test_a_stack_whose_calibration_line_is_malformed_is_bad_input(tmp_path):
    # A user's stacks.toml: the calibration a row's note reads is checked when the presets load, in one line.
    from llmplan.presets import builtin_dir

    shipped = (builtin_dir() / "stacks.toml").read_text()
    bad = shipped.replace('calibration = ["a100-80gb: 18 runs', 'calibration = ["a100-80gb: many runs', 1)
    assert bad != shipped
    (tmp_path / "stacks.toml").write_text(bad)
    r = run_cli(["throughput", "--preset", "llama-2-7b", "--gpus", "8", "--global-batch", "8", "--presets", str(tmp_path)])
    assert r.code == 2 and "field 'calibration'" in r.stderr and r.stderr.count("\n") == 1
