"""Serving engines as data (presets/engines.toml, llmplan.systems.engines) and what each changes in `serve`.

The engines' fields are checked against the sources they cite (vLLM V1's gpu_memory_utilization 0.9, graphs up to
512 and max_num_seqs by GPU; vLLM 0.4's graphs up to 256; SGLang's mem_fraction_static by TP, TensorRT-LLM's 0.9 of
free memory, GGML's block sizes, tinygemm's measured math rate); every row's KV capacity is recomputed from its own
keys; vLLM 0.4's per-step host time is re-fitted from vLLM's own published DBRX rows.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math

import pytest

from llmplan.errors import InputError
from llmplan.model import arch
from llmplan.presets import catalog
from llmplan.systems import engines, serving, serving_kernels as kernels
from llmplan.systems.memory import states

CAT = catalog(None)
ENGINES = ["vllm", "sglang", "trtllm", "llamacpp", "gpt-fast", "vllm-0.4"]


def engine(name: str) -> engines.Engine:
    return engines.load(CAT, name)


def served(preset: str, dtype: str = "bf16", kv: str = "bf16", tp: int = 1, name: str = "vllm", group: int | None = None):
    s = arch.Shape.from_preset(CAT.get("models", preset))
    e = engine(name)
    return serving.Served(s, arch.params(s), dtype, kv, tp, group or e.gemm(dtype).group_size or 128, e)


def hw(gpu: str, dtype: str = "bf16", per_node: int | None = None):
    return serving.hardware_from_gpu(CAT.get("gpus", gpu), dtype, gpus_per_node=per_node)


# ---------------------------------------------------------------------------- the presets

def test_every_engine_loads_with_its_sources():
    assert sorted(CAT.ids("engines")) == sorted(ENGINES)
    for name in ENGINES:
        p = CAT.get("engines", name)
        e = engine(name)
        assert e.decode_attention in kernels.DECODE_ATTENTION and e.prefill_attention in ("fa2", "fa3")
        for key in ("batching", "cuda_graphs", "attention", "memory", "small_kernels", "step_overhead", "gemm"):
            assert len(p[f"{key}_source"]) > 20, (name, key)
        assert p["version"] and p["source"]
    assert engines.DEFAULT_ENGINE == "vllm" and engine("trt-llm").id == "trtllm" and engine("llama.cpp").id == "llamacpp"
    assert engine("vllm-v1").id == "vllm" and engine("vllm-v0").id == "vllm-0.4"


def test_fields_are_what_the_sources_say():
    v, s, t, l, g, v0 = (engine(n) for n in ENGINES)
    # vLLM v0.4: gpu_memory_utilization 0.90 of total memory; graphs for batch <= 256; max_num_seqs 256
    assert (v0.memory_fraction, v0.memory_fraction_of, v0.cuda_graph_max_batch, v0.max_batch) == (0.9, "total", 256, 256)
    assert v0.graphed(256) and not v0.graphed(257) and v0.batch_cap(hw("h100")) == 256
    # vLLM V1 (0.14): gpu_memory_utilization 0.9 of total; capture sizes up to min(2 x max_num_seqs, 512) = 512;
    # FlashAttention 3 prefill on Hopper; the scheduler overlapped with the GPU (no host time on the critical path)
    assert (v.memory_fraction, v.memory_fraction_of, v.cuda_graph_max_batch, v.prefill_attention) == (0.9, "total", 512, "fa3")
    assert v.graphed(512) and not v.graphed(513) and min(2 * v.max_batch, 512) == 512
    assert v.step_overhead_seconds == 0 and v.sequence_overhead_seconds == 0 and v.decode_gqa == "shared"
    # SGLang server_args.py: mem_fraction_static 0.88, 0.87 (tp>=2), 0.85 (>=4), 0.83 (>=8), 0.79 (>=16), static meaning
    assert [s.fraction(tp) for tp in (1, 2, 3, 4, 8, 16)] == [0.88, 0.87, 0.87, 0.85, 0.83, 0.79]
    assert s.memory_fraction_of == "static" and s.step_overhead_seconds == 0 and s.decode_attention == "flashinfer"
    # TensorRT-LLM: 0.9 of free memory, no CUDA graphs in gptSessionBenchmark by default
    assert (t.memory_fraction, t.memory_fraction_of, t.cuda_graphs) == (0.9, "free", False)
    # llama.cpp: GGML Q4_0 is 4.5 bits per weight, Q8_0 8.5 (32-weight blocks with one fp16 scale); no FP8
    q4, q8 = l.gemm("int4"), l.gemm("int8")
    assert states.quantised_bits_per_weight("int4", q4.group_size) == 4.5
    assert states.quantised_bits_per_weight("int8", q8.group_size) == 8.5
    assert l.graphed(1) and not l.graphed(2)
    # gpt-fast: whole static cache read each step; tinygemm's math 15.6 of the A6000's 154.8 TFLOP/s
    assert g.kv_reads == "allocated" and g.batching == "static"
    assert g.gemm("int4").compute_ceiling == pytest.approx(2 * 1024 * 4096 * 4096 / 2.2016e-3 / 154.8e12, rel=0.01)
    for e, dtype in ((g, "fp8"), (l, "fp8")):
        with pytest.raises(InputError, match="no GEMM path"):
            e.gemm(dtype)


@pytest.mark.parametrize("gpu,cap,tokens", [
    # get_batch_defaults: >= 70 GiB and not an A100 (H100, H200): max_num_seqs 1024, `vllm serve`'s 8192 batched tokens
    ("h100", 1024, 8192), ("h200", 1024, 8192),
    # the A100 (80 GB) is excluded by name, and smaller GPUs take the other row: 256 sequences, 2048 tokens
    ("a100", 256, 2048), ("l40s", 256, 2048), ("rtx-4090", 256, 2048)])
def test_vllm_v1_defaults_depend_on_the_gpu(gpu, cap, tokens):
    v, h = engine("vllm"), hw(gpu)
    assert (v.batch_cap(h), v.profile_tokens(h)) == (cap, tokens)
    m = served("llama-2-7b")
    assert serving.serve(m, h, 2 * cap, 16, 16)["running_batch"] == cap
    assert serving.reserve_bytes(m, h) == pytest.approx(serving.reserve_bytes() + serving.activation_reserve_bytes(m, tokens))


def test_large_gpu_defaults_need_a_memory_threshold(tmp_path):
    data = {k: v for k, v in CAT.get("engines", "vllm").data.items() if k not in ("aliases", "large_gpu_min_memory_bytes")}
    (tmp_path / "engines.toml").write_text("[bad]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in data.items()))
    with pytest.raises(InputError, match="large_gpu_min_memory_bytes"):
        engines.load(catalog(str(tmp_path)), "bad")


@pytest.mark.parametrize("field,value,fragment", [("decode_attention_gqa", "both", "decode_attention_gqa"),
                                                   ("decode_attention_shared_groups", [0], "positive whole numbers")])
def test_bad_gqa_field_is_refused(tmp_path, field, value, fragment):
    data = {k: v for k, v in CAT.get("engines", "trtllm").data.items() if k != "aliases"}
    (tmp_path / "engines.toml").write_text("[bad]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in {**data, field: value}.items()))
    with pytest.raises(InputError, match=fragment):
        engines.load(catalog(str(tmp_path)), "bad")


def test_bad_engine_preset_is_refused(tmp_path):
    (tmp_path / "engines.toml").write_text(
        "[bad]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in {
            **{k: v for k, v in CAT.get("engines", "sglang").data.items() if k != "aliases"}, "step_overhead_seconds": -1.0}.items()))
    user = catalog(str(tmp_path))
    with pytest.raises(InputError, match=">= 0"):
        engines.load(user, "bad")


# ---------------------------------------------------------------------------- rows a user can check

@pytest.mark.parametrize("name", ENGINES)
@pytest.mark.parametrize("preset,gpu,dtype,tp", [("llama-2-7b", "h100", "bf16", 1), ("llama-2-70b", "h100", "int4", 2),
                                                 ("llama-3-8b", "l40s", "int8", 1), ("mixtral-8x7b", "h200", "bf16", 2)])
def test_kv_capacity_recomputes_from_the_row(name, preset, gpu, dtype, tp):
    """KV capacity = floor((memory_fraction x memory_bytes - weights_bytes - reserved_bytes) / kv_cache_bytes_per_token),
    from the row's own keys, for every engine (for TensorRT-LLM memory_fraction is the share its 0.9 of free memory
    comes to)."""
    m = served(preset, dtype, tp=tp, name=name)
    r = serving.serve(m, hw(gpu, dtype), 4, 512, 64)
    free = r["memory_fraction"] * r["memory_bytes"] - r["weights_bytes"] - r["reserved_bytes"]
    assert r["kv_capacity_tokens"] == max(0, math.floor(free / r["kv_cache_bytes_per_token"]))
    assert r["engine"] == name and r["max_batch"] == r["kv_capacity_tokens"] // 576


# The H100's memory as the device reports it (torch total_memory, presets/gpus.toml device_memory_bytes): engines size
# their KV pool from it (vLLM worker.py: torch.cuda.mem_get_info()'s total), not from the datasheet's decimal 80 GB.
H100_DEVICE = 85_017_493_504


def test_engines_size_memory_from_what_the_device_reports():
    assert hw("h100").memory_bytes == H100_DEVICE
    assert hw("a100").memory_bytes == 80e9  # no device measurement in the catalog: the datasheet's figure
    r = serving.serve(served("llama-2-7b"), hw("h100"), 1, 128, 128)
    assert r["memory_bytes"] == H100_DEVICE


def test_trtllm_takes_its_fraction_of_free_memory():
    m, h = served("llama-2-7b", "fp8", "fp8", name="trtllm"), hw("h100", "fp8")
    plan = serving.memory_plan(m, h)
    pool = 0.9 * (H100_DEVICE - plan.weights_bytes - plan.reserved_bytes)
    assert plan.kv_capacity_tokens == math.floor(pool / plan.kv_bytes_per_token)
    assert plan.engine_memory_fraction == 0.9 and plan.memory_fraction > 0.9


def test_sglang_keeps_activations_outside_its_fraction():
    m, h = served("llama-2-7b", name="sglang", tp=2), hw("h100")
    plan = serving.memory_plan(m, h)
    assert plan.reserved_bytes == 0 and plan.memory_fraction == 0.87
    assert plan.kv_capacity_tokens == math.floor((0.87 * H100_DEVICE - plan.weights_bytes) / plan.kv_bytes_per_token)


# ---------------------------------------------------------------------------- what each engine changes

def test_engines_give_different_answers_and_name_their_parts():
    """The issue's must-show: Llama 2 7B, FP8 weights and KV, batch 1, 128 in + 128 out on an H100, TensorRT-LLM vs
    vLLM. Each row says which GEMM and attention kernels ran and what each part of a step took; the parts add up."""
    h = hw("h100", "fp8")
    rows = {n: serving.serve(served("llama-2-7b", "fp8", "fp8", name=n), h, 1, 128, 128) for n in ("trtllm", "vllm-0.4", "vllm")}
    t, v = rows["trtllm"], rows["vllm-0.4"]
    assert t["time_per_output_token_seconds"] != v["time_per_output_token_seconds"]
    assert t["decode_attention_kernel"] != v["decode_attention_kernel"] and t["gemm_kernel"] != v["gemm_kernel"]
    assert v["decode_overhead_seconds"] == pytest.approx(2.590e-3 + 0.1087e-3) and t["decode_overhead_seconds"] == 0
    # the prefill is one engine step too: vLLM's host time per step is paid there as well
    assert v["prefill_overhead_seconds"] == v["decode_overhead_seconds"] and t["prefill_overhead_seconds"] == 0
    # vLLM V1 hides its host time behind the GPU (async scheduling) and names the FlashAttention kernel it runs
    v1 = rows["vllm"]
    assert v1["decode_overhead_seconds"] == 0 and v1["prefill_overhead_seconds"] == 0
    assert "FlashAttention" in v1["decode_attention_kernel"] and v1["time_per_output_token_seconds"] < v["time_per_output_token_seconds"]
    for r in rows.values():
        parts = (r["decode_gemm_seconds"] + r["decode_attention_seconds"] + r["decode_small_kernels_seconds"]
                 + r["decode_comm_seconds"] + r["decode_launch_seconds"] + r["decode_overhead_seconds"])
        assert r["decode_step_seconds"] == pytest.approx(parts, rel=1e-12)
        parts = (r["prefill_gemm_seconds"] + r["prefill_attention_seconds"] + r["prefill_small_kernels_seconds"]
                 + r["prefill_comm_seconds"] + r["prefill_launch_seconds"] + r["prefill_overhead_seconds"])
        assert r["prefill_seconds"] == pytest.approx(parts, rel=1e-12)
        # never faster than the roofline, nor than reading the weights once at the datasheet bandwidth
        assert r["time_per_output_token_seconds"] >= r["roofline_time_per_output_token_seconds"] >= r["weights_floor_seconds"]
        assert r["prefill_seconds"] >= r["roofline_prefill_seconds"]


def test_no_cuda_graph_means_host_launches_count():
    """TensorRT-LLM without graphs launches each kernel from the host (5 us each, HTA's low end); when a step's GPU
    work is shorter than that, the host sets the pace. A tiny model at batch 1 shows it; vLLM's graph does not."""
    t = served("llama-3.2-1b", name="trtllm")
    step = serving.decode_step(t, hw("h200"), 1, 100)
    host = serving.kernels_per_step(t) * kernels.CPU_LAUNCH_SECONDS
    assert step.launch_seconds == pytest.approx(max(0.0, host - (step.seconds - step.launch_seconds)), abs=1e-12)
    assert step.seconds >= host
    assert serving.decode_step(served("llama-3.2-1b"), hw("h200"), 1, 100).launch_seconds == 0


def test_static_cache_is_read_whole():
    """gpt-fast reads its whole max_seq_length cache every step, whatever the step's KV length; vLLM reads what it has."""
    g, v, h = served("llama-2-7b", name="gpt-fast"), served("llama-2-7b"), hw("h100")
    assert serving.decode_step(g, h, 8, 10, 4096).attention_seconds == serving.decode_step(g, h, 8, 4000, 4096).attention_seconds
    assert serving.decode_step(v, h, 8, 10, 4096).attention_seconds < serving.decode_step(v, h, 8, 4000, 4096).attention_seconds


@pytest.mark.parametrize("preset,tp,expected", [
    # Mistral 7B: 32 query heads over 8 KV heads, a group of 4, head size 128
    ("mistral-7b", 1, {"vllm": 1, "vllm-0.4": 4, "sglang": 1, "trtllm": 4, "llamacpp": 4, "gpt-fast": 4}),
    # Llama 2 70B: a group of 8 and head size 128, which TensorRT-LLM 0.9.0's XQA kernels were built for
    ("llama-2-70b", 2, {"vllm": 1, "vllm-0.4": 8, "sglang": 1, "trtllm": 1, "llamacpp": 8, "gpt-fast": 8}),
    # at tp 16 its 8 KV heads are replicated: 4 query heads and 1 KV head per GPU, a group of 4, no XQA kernel
    ("llama-2-70b", 16, {"vllm": 1, "vllm-0.4": 4, "sglang": 1, "trtllm": 4, "llamacpp": 4, "gpt-fast": 4}),
    # multi-head attention: every query head has its own KV head
    ("llama-2-7b", 1, {"vllm": 1, "vllm-0.4": 1, "sglang": 1, "trtllm": 1, "llamacpp": 1, "gpt-fast": 1}),
])
def test_decode_attention_reads_a_kv_head_once_per_query_head_where_the_kernel_does(preset, tp, expected):
    """vLLM 0.4's PagedAttention and TensorRT-LLM's masked MHA run one thread block per query head (kv_head = head /
    group), so a KV head is read once per query head of its group; FlashInfer (SGLang) and vLLM V1's FlashAttention
    (FA2's seqlen_q/ngroups swap, FA3's PackGQA) serve the group from one read, and so does TensorRT-LLM's XQA, whose
    0.9.0 kernels exist for groups of 8 only (presets/engines.toml sources)."""
    for name, reads in expected.items():
        assert serving.kv_head_reads(served(preset, tp=tp, name=name)) == reads, name


def test_vllm_v1_decode_attention_shares_kv_heads_and_0_4_does_not():
    """Llama 3.1 8B (32 query heads over 8 KV heads) on an H100: vLLM V1's FlashAttention decode reads each KV head once
    per group, vLLM 0.4's PagedAttention once per query head, so at a long KV the 0.4 attention reads 4 times the
    bytes; the prediction's attention time follows the bytes (the roofline reads the cache once for both)."""
    h = hw("h100")
    v1, v0 = served("llama-3.1-8b"), served("llama-3.1-8b", name="vllm-0.4")
    assert (serving.kv_head_reads(v1), serving.kv_head_reads(v0)) == (1, 4)
    a1 = serving.decode_step(v1, h, 64, 4000).attention_seconds
    a0 = serving.decode_step(v0, h, 64, 4000).attention_seconds
    per_layer = 64 * 4000 * serving.kv_bytes_per_token_per_layer(v1)
    layers = v1.shape.layers
    assert a1 == pytest.approx(layers * kernels.memory_kernel_seconds(kernels.DECODE_ATTENTION["flashinfer"], per_layer, h.bandwidth), rel=1e-12)
    assert a0 == pytest.approx(layers * kernels.memory_kernel_seconds(kernels.DECODE_ATTENTION["paged-attention-v2"], 4 * per_layer, h.bandwidth), rel=1e-12)
    assert 3.5 < a0 / a1 < 4.5
    r1, r0 = (serving.serve(m, h, 1, 2048, 256) for m in (v1, v0))
    assert (r1["decode_kv_head_reads"], r0["decode_kv_head_reads"]) == (1, 4)
    assert r1["roofline_time_per_output_token_seconds"] == r0["roofline_time_per_output_token_seconds"]


def test_per_query_head_reads_cost_their_bytes():
    """The decode attention of a group-of-4 model read per query head takes exactly the kernel's time for 4 times the
    bytes (same latency, same measured bandwidth share): no fitted factor."""
    m, h = served("mistral-7b", "fp8", "fp8", name="trtllm"), hw("h100", "fp8")
    shared = dataclasses.replace(m, engine=dataclasses.replace(m.engine, decode_gqa="shared"))
    k = kernels.DECODE_ATTENTION[m.engine.decode_attention]
    per_layer = 64 * 1000 * serving.kv_bytes_per_token_per_layer(m)
    layers = m.shape.layers
    assert serving.decode_step(shared, h, 64, 1000).attention_seconds == pytest.approx(
        layers * kernels.memory_kernel_seconds(k, per_layer, h.bandwidth), rel=1e-12)
    assert serving.decode_step(m, h, 64, 1000).attention_seconds == pytest.approx(
        layers * kernels.memory_kernel_seconds(k, 4 * per_layer, h.bandwidth), rel=1e-12)
    # the roofline still reads the cache once
    assert serving.decode_step(m, h, 64, 1000).memory_seconds == serving.decode_step(shared, h, 64, 1000).memory_seconds


def test_vllm_runs_a_larger_batch_in_waves():
    m, h = served("llama-2-7b", name="vllm-0.4"), hw("h100")
    one, two = serving.serve(m, h, 256, 128, 32), serving.serve(m, h, 512, 128, 32)
    assert two["running_batch"] == 256 and two["latency_seconds"] == pytest.approx(2 * one["latency_seconds"], rel=1e-12)
    assert serving.serve(served("llama-2-7b", name="sglang"), h, 512, 128, 32)["running_batch"] == 512


def test_a_continuous_engine_admits_what_its_kv_pool_holds():
    """A batch whose KV cache does not fit runs in waves of the sequences that fit (vLLM's block manager, SGLang's
    token pool, TensorRT-LLM's in-flight batcher admit a request only with room for it); a static engine (gpt-fast)
    runs the batch it is given, flagged fits = false."""
    h = hw("h100")
    for name in ("sglang", "trtllm"):
        m = served("llama-2-7b", name=name)
        fit = serving.max_batch(m, h, 2048 + 2048)
        row = serving.serve(m, h, 3 * fit, 2048, 2048)
        assert row["running_batch"] == fit and not row["fits"]
        whole = serving.serve(m, h, fit, 2048, 2048)
        assert row["latency_seconds"] == pytest.approx(3 * whole["latency_seconds"], rel=1e-12)
    g = served("llama-2-7b", name="gpt-fast")
    fit = serving.max_batch(g, h, 4096)
    assert serving.serve(g, h, 3 * fit, 2048, 2048)["running_batch"] == 3 * fit


def test_weight_only_kernel_pays_its_dequantisation():
    """tinygemm (gpt-fast int4) runs its math at a tenth of the 16-bit rate on 16-row MMA tiles, so even at batch 1 it
    is bound by dequantisation, as torchao's table shows (16 x 4096 x 4096 in 38.2 us on an A6000, where streaming
    its 8.9 MB would take 11.6 us); Marlin (vLLM) streams the same bytes at the weight-streaming rate."""
    h = hw("a100", "int4")
    g, v = served("llama-2-7b", "int4", name="gpt-fast"), served("llama-2-7b", "int4")
    assert serving.gemm_time(g, h, 1, 1) > 2 * serving.gemm_time(v, h, 1, 1)
    # the torchao point itself: 2·16·4096·4096 FLOPs at 0.101 of the A6000's 154.8 TFLOP/s, plus the fixed 7.52 us
    t = kernels.gemm_seconds(16, 4096, 4096, 4096 * 4096 * 4.25 / 8, 768e9, 0.101 * 154.8e12)
    assert t == pytest.approx(38.2e-6, rel=0.25)


def test_moe_reads_only_touched_experts_per_step():
    """Mixtral 8x7B (8 experts, 2 per token): at batch 1 a step reads 2 experts per layer, at 64 all 8."""
    m, h = served("mixtral-8x7b", tp=2), hw("h100")
    one, many = serving.weights_read_bytes(m, 1), serving.weights_read_bytes(m, 64)
    assert 0.25 < one / many < 0.35  # 2/8 of the expert weights plus attention and the head
    assert serving.decode_step(m, h, 1, 100).gemm_seconds < 0.5 * serving.decode_step(m, h, 64, 100).gemm_seconds


# ---------------------------------------------------------------------------- calibration, reproduced

def _report():
    from conftest import REPO

    spec = importlib.util.spec_from_file_location("serve_report", REPO / "benchmarks" / "serve_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vllm_overhead_refits_from_its_own_published_rows():
    """vLLM 0.4's step_overhead_seconds and sequence_overhead_seconds are the least-squares fit to vLLM PR #3692's 8
    DBRX rows (vLLM's own benchmark) with every kernel at its measured rate; the rows then lie within 8%."""
    c0, c1, errors = _report().fit_vllm_overhead()
    v = engine("vllm-0.4")
    assert v.step_overhead_seconds == pytest.approx(c0, rel=0.01, abs=2e-6)
    assert v.sequence_overhead_seconds == pytest.approx(c1, rel=0.01)
    assert max(abs(e) for e in errors) < 0.08


def test_engine_replace_keeps_a_valid_engine():
    e = dataclasses.replace(engine("vllm-0.4"), step_overhead_seconds=0.0)
    assert e.overhead_seconds(10) == pytest.approx(10 * 0.1087e-3)


# ---------------------------------------------------------------------------- the command

def test_serve_engine_rows(cli):
    for name in ("trtllm", "vllm"):
        r = cli(["serve", "--preset", "llama-2-7b", "--gpu", "h100", "--dtype", "fp8", "--kv-dtype", "fp8", "--batch", "1",
                 "--input", "128", "--output", "128", "--engine", name, "-f", "json"])
        assert r.code == 0, r.stderr
        (row,) = json.loads(r.stdout)
        assert row["engine"] == name and "memory_fraction" in row and "reserved_bytes" in row
        assert "decode step" in r.stderr and "KV room" in r.stderr


def test_serve_default_engine_is_vllm(cli):
    r = cli(["serve", "--preset", "llama-2-7b", "-f", "json"])
    assert r.code == 0 and json.loads(r.stdout)[0]["engine"] == "vllm"
    assert json.loads(r.stdout)[0]["engine_version"].endswith("(V1 engine)")


def test_serve_vllm_0_4_still_runs(cli):
    r = cli(["serve", "--preset", "llama-3.1-8b", "--gpu", "h100", "--engine", "vllm-0.4", "-f", "json"])
    assert r.code == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["engine"] == "vllm-0.4" and row["decode_kv_head_reads"] == 4
    assert row["decode_overhead_seconds"] == pytest.approx(2.590e-3 + 0.1087e-3)


def test_serve_l40s_tp4_over_pcie(cli):
    """The issue's must-show: Llama 2 70B in FP8 on four L40S (PCIe Gen4, 8 per server): it runs, its all-reduces
    cross PCIe at nccl-tests' measured 24 GB/s."""
    r = cli(["serve", "--preset", "llama-2-70b", "--gpu", "l40s", "--tp", "4", "--dtype", "fp8", "--batch", "1", "-f", "json"])
    assert r.code == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["tp"] == 4 and row["decode_comm_seconds"] > 0 and row["fits"] is True
    size = 8192 * 2
    assert row["decode_comm_seconds"] == pytest.approx(2 * 80 * (6.6e-6 + 6 * 3.4e-6 + 1.5 * size / 24e9), rel=1e-9)


def test_serve_mixtral_sweep(cli):
    r = cli(["serve", "--preset", "mixtral-8x7b", "--gpu", "h100", "--tp", "2", "--batch", "1:64", "-f", "json"])
    assert r.code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["batch"] for x in rows] == [1, 2, 4, 8, 16, 32, 64]
    tput = [x["output_tokens_per_second_per_gpu"] for x in rows]
    assert tput == sorted(tput)


# ---------------------------------------------------------------------------- expert parallelism

def test_busiest_gpu_under_expert_parallelism():
    """Mixtral on 2 GPUs, 4 experts each, 2 of 8 per token: at batch 1 a GPU's count is Binomial(4, 1/4), mean 1,
    sd 0.866, the busier of two about 1 + 0.866·sqrt(2 ln 2) = 2.02; at large batch every expert is reached (4)."""
    one = serving.experts_touched_busiest(8, 2, 1, 2)
    assert one == pytest.approx(1 + math.sqrt(4 * 0.25 * 0.75) * math.sqrt(2 * math.log(2)), rel=1e-12)
    assert serving.experts_touched_busiest(8, 2, 10_000, 2) == pytest.approx(4)
    assert serving.experts_touched_busiest(8, 2, 3, 1) == pytest.approx(serving.experts_touched(8, 2, 3))


def test_expert_parallel_reads_whole_experts_on_the_busiest_gpu():
    """With --ep a GPU reads the experts routed to it whole, so at batch 1 the busiest GPU reads more than a
    tensor-parallel shard of the 2 routed experts; once every expert is reached, both read the same bytes."""
    s = arch.Shape.from_preset(CAT.get("models", "mixtral-8x7b"))
    e = engine("sglang")
    tp = serving.Served(s, arch.params(s), "bf16", "bf16", 2, 128, e)
    ep = serving.Served(s, arch.params(s), "bf16", "bf16", 2, 128, e, ep=True)
    # the routed experts' bytes: TP reads 2 of 8 experts, each half (1 expert's worth per GPU); EP reads the busiest
    # GPU's 2.02 whole experts. The rest (attention, router, head) is the same: read at tokens = 0 there is none routed.
    rest = serving.weights_read_bytes(tp, 1) - 2 / 8 * (serving.weights_read_bytes(tp, 10**6) - serving.weights_read_bytes(tp, 1)) / (1 - 2 / 8)
    expert_tp = serving.weights_read_bytes(tp, 1) - rest
    expert_ep = serving.weights_read_bytes(ep, 1) - rest
    assert expert_ep / expert_tp == pytest.approx(serving.experts_touched_busiest(8, 2, 1, 2) / 1.0, rel=1e-9)
    assert serving.weights_read_bytes(ep, 4096) == pytest.approx(serving.weights_read_bytes(tp, 4096), rel=1e-6)
    r = serving.serve(ep, hw("h100"), 64, 128, 32)
    assert r["ep"] is True and r["engine"] == "sglang"


@pytest.mark.parametrize("args,fragment", [
    (["--preset", "mixtral-8x7b", "--tp", "2", "--ep"], "no expert parallelism"),  # vLLM (V1's EP is an all-to-all, not modelled)
    (["--preset", "llama-2-7b", "--tp", "2", "--ep", "--engine", "sglang"], "no experts"),
    (["--preset", "mixtral-8x7b", "--ep", "--engine", "sglang"], "--tp of 2 or more"),
])
def test_expert_parallel_refusals(cli, args, fragment):
    r = cli(["serve", *args])
    assert r.code == 2 and fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
