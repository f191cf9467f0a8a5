"""Exact parameter counts, FLOPs per token and KV cache from a model's shape (llmplan.model.arch, `llmplan arch`).

Published numbers are quoted with their source (the rows of /work/shared/reference/models.csv and
models.md, which cite the papers); no expected value here was produced by the code under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmplan.model import arch
from llmplan.model.arch import Shape
from llmplan.model.propose import PROPOSAL_TOLERANCE, family_layers, propose
from llmplan.errors import InputError
from llmplan.presets import catalog

DATA = Path(__file__).resolve().parent / "data"


def preset_shape(pid: str) -> Shape:
    return Shape.from_preset(catalog().get("models", pid))


# LLaMA-2-7B as the paper publishes it (Llama 2 Table 1; LLaMA §2.2 SwiGLU 2/3·4d rounded to 256).
LLAMA2_7B = Shape(layers=32, d_model=4096, heads=32, vocab=32000, context=4096)
LLAMA2_7B_PARAMS = 6_738_415_616  # issue 5 / models.csv llama2-7b params_exact


# ----- exact counts against published totals --------------------------------------------------

def test_llama2_7b_same_count_from_flags_preset_and_config(cli):
    # The FFN default (LLaMA's rounding) must give the published 11008 by itself.
    assert LLAMA2_7B.d_ffn == 11008
    assert arch.params(LLAMA2_7B) == LLAMA2_7B_PARAMS
    assert arch.params(preset_shape("llama-2-7b")) == LLAMA2_7B_PARAMS
    from llmplan.model.hfconfig import shape_from_hf_config

    assert arch.params(shape_from_hf_config(DATA / "llama2_7b_config.json")) == LLAMA2_7B_PARAMS
    for args in (
        ["arch", "--layers", "32", "--d-model", "4096", "--heads", "32", "--vocab", "32000", "-f", "json"],
        ["arch", "--preset", "llama-2-7b", "-f", "json"],
        ["arch", "--hf-config", str(DATA / "llama2_7b_config.json"), "-f", "json"],
    ):
        result = cli(args)
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)[0]["params"] == LLAMA2_7B_PARAMS
    # (The HF safetensors total is larger by the rotary inv_freq buffers the checkpoint stores,
    # models.csv flags "+2048": 32 layers x 64 values. Buffers are not parameters.)


@pytest.mark.parametrize(
    "pid, published, why",
    [
        ("llama-2-70b", 68_976_648_192, "models.csv llama2-70b (GQA: 8 KV heads of 64)"),
        ("mistral-7b", 7_241_732_096, "models.csv mistral-7b, Mistral Table 1 shape (GQA 8, FFN 14336)"),
        ("pythia-12b", 11_846_072_320, "Pythia README total; untied embed_out, rows padded to 50688"),
        ("bloom-176b", 176_247_271_424, "BLOOM model card; 250,880 padded rows, embedding LayerNorm, tied"),
        ("falcon-180b", 179_522_565_120, "HF safetensors total quoted in models.csv; untied lm_head"),
        ("llama-3.1-405b", 405_853_388_800, "models.csv, equal to the HF safetensors total"),
        ("qwen2.5-72b", 72_706_203_648, "models.csv; q/k/v biases (Qwen2), untied"),
        ("t5-11b", 11_307_321_344, "models.csv derivation: 24+24 layers, inner 128x128, tied, 32,128 rows"),
        ("flan-t5-xxl", 11_135_332_352, "models.csv derivation from the HF config (GeGLU, untied)"),
        ("bert-large", 335_141_888, "models.csv: HF BertModel with pooler"),
        ("roberta-large", 355_359_744, "models.csv: HF RobertaModel with pooler, 514 position rows, 1 token type"),
    ],
)
def test_exact_counts(pid, published, why):
    assert arch.params(preset_shape(pid)) == published, why


B = 1e9


@pytest.mark.parametrize(
    "pid, headline, tolerance, active, why",
    [
        # (the figure the card/paper prints, how far the exact count may sit from it, and why)
        ("llama-3.2-1b", 1.23 * B, 0.01 * B, None, "model card 1.23B (1.2358B, truncated)"),
        ("llama-3.2-3b", 3.21 * B, 0.005 * B, None, "model card 3.21B"),
        ("qwen2.5-0.5b", 0.49 * B, 0.005 * B, None, "model card 0.49B"),
        ("qwen2.5-7b", 7.61 * B, 0.01 * B, None, "model card 7.61B (7.6156B, truncated)"),
        ("qwen3-8b", 8.2 * B, 0.05 * B, None, "model card 8.2B"),
        ("qwen3-30b-a3b", 30.5 * B, 0.05 * B, (3.3 * B, 0.1 * B), "model card 30.5B total, 3.3B activated (3.35B truncated)"),
        ("gemma-2-2b", 2.6 * B, 0.05 * B, None, "Gemma 2 paper: 2.6B"),
        ("gemma-2-9b", 9 * B, 0.5 * B, None, "Gemma 2 paper: 9B (to the billion)"),
        ("gemma-2-27b", 27 * B, 0.5 * B, None, "Gemma 2 paper: 27B (to the billion)"),
        ("gemma-3-1b", 1.0 * B, 0.5e6 + 0.5e6, None, "Gemma 3 Table 1: 302M + 698M (each to 0.5M)"),
        ("gemma-3-27b", 27 * B, 0.5 * B, None, "Gemma 3: 27B with the 417M vision encoder (language model alone here)"),
        ("phi-3-mini", 3.8 * B, 0.05 * B, None, "Phi-3 report: 3.8B"),
        ("phi-4", 14.5 * B, 0.5 * B, None, "Phi-4 report: 14B (14.66B, truncated)"),
        ("mixtral-8x7b", 46.7 * B, 0.05 * B, (12.9 * B, 0.05 * B), "Mistral AI: 46.7B total, 12.9B per token"),
        ("mixtral-8x22b", 141 * B, 0.5 * B, (39 * B, 0.5 * B), "Mistral AI: 141B total, 39B active"),
        ("olmo-2-7b", 7.3 * B, 0.05 * B, None, "OLMo 2: 7.3B"),
        ("olmo-2-13b", 13.7 * B, 0.05 * B, None, "OLMo 2: 13.7B"),
        ("deepseek-v2-lite", 15.7 * B, 0.05 * B, None, "DeepSeek-V2 App. B: 15.7B total"),
    ],
)
def test_family_presets_are_exact_and_match_their_headlines(pid, headline, tolerance, active, why):
    # params_exact is the released modelling code's count (transformers' model class from the same
    # config; tests/data/README.md), which the preset's shape must reproduce exactly.
    p = catalog().get("models", pid)
    s = arch.Shape.from_preset(p)
    assert arch.params(s) == p["params_exact"]
    assert abs(arch.params(s) - headline) <= tolerance, why
    if active:
        assert abs(arch.active_params(s) - active[0]) <= active[1], why
    assert p.get("source")


def test_pythia_non_embedding():
    # Pythia Table 1 / README: 11,327,027,200 non-embedding parameters (the untied in/out embeddings excluded).
    assert arch.non_embedding_params(preset_shape("pythia-12b")) == 11_327_027_200


def test_bloom_embedding_norm_is_what_closes_the_gap():
    # Without BLOOM's LayerNorm after the embeddings the count is short by exactly its gain and bias.
    s = preset_shape("bloom-176b")
    assert arch.params(arch.with_changes(s, embedding_norm=False)) == 176_247_271_424 - 2 * 14336


# GPT-3 (Brown et al. 2020): Table 2.1 shapes against Table D.1 parameter counts (millions).
GPT3 = [  # (layers, d_model, heads, Table D.1 params in M, digits printed)
    (12, 768, 12, 125, 1),
    (24, 1024, 16, 356, 1),
    (24, 1536, 16, 760, 1),
    (24, 2048, 24, 1320, 10),  # Table 2.1's d_head 128 contradicts d_model 2048; the count follows 2048
    (32, 2560, 32, 2650, 10),
    (32, 4096, 32, 6660, 10),
    (40, 5120, 40, 12850, 10),  # Table 2.1 prints 5140 (a typo, see below)
    (96, 12288, 96, 174600, 100),
]


def gpt3(layers: int, d_model: int, heads: int) -> Shape:
    # GPT-2 conventions (models.md †): V=50257, 2048 learned positions, tied, biases, LayerNorm, FFN 4d.
    return Shape(layers=layers, d_model=d_model, heads=heads, vocab=50257, context=2048, mlp="gelu",
                 norm="layernorm", positions="learned", bias=True, tied_embeddings=True)


@pytest.mark.parametrize("layers, d_model, heads, d1_millions, unit", GPT3)
def test_gpt3_table_2_1_shapes_reproduce_table_d1(layers, d_model, heads, d1_millions, unit):
    # D.1 prints 3-4 significant figures: the derived count must round to it (within half a printed unit).
    count = arch.params(gpt3(layers, d_model, heads))
    assert abs(count / 1e6 - d1_millions) <= unit / 2


def test_gpt3_presets_equal_the_csv_derivation():
    # models.csv params_exact (same conventions), e.g. 175B: 174,604,259,328.
    expected = {"gpt-3-125m": 125_226_240, "gpt-3-350m": 355_871_744, "gpt-3-760m": 760_300_032,
                "gpt-3-1.3b": 1_315_723_264, "gpt-3-2.7b": 2_651_553_280, "gpt-3-6.7b": 6_658_404_352,
                "gpt-3-13b": 12_853_386_240, "gpt-3-175b": 174_604_259_328}
    for pid, count in expected.items():
        assert arch.params(preset_shape(pid)) == count, pid


def test_gpt3_13b_typo():
    # models.md: d_model 5140 (as printed) would give 12.95B, not D.1's 12,850M; 5120 gives 12.853B.
    typo = arch.params(gpt3(40, 5140, 40))
    assert abs(typo / 1e9 - 12.95) < 0.005
    assert abs(typo / 1e6 - 12850) > 50


def test_bert_large_vs_paper_headline():
    # Devlin et al. say 340M; the exact BertModel count is 335.1M (models.csv). The paper's figure is
    # rounded and the pre-training heads (MLM transform d^2+d+2d, its V output bias, NSP 2d+2) add ~1.1M;
    # GPT-3 D.1 uses 355M. So: within 2% of 340M, and the pooler is part of the count.
    s = preset_shape("bert-large")
    assert abs(arch.params(s) / 340e6 - 1) < 0.02
    assert arch.params(s) - arch.params(arch.with_changes(s, pooler=False)) == 1024 * 1024 + 1024


def test_t5_11b_vs_headline():
    # "11B" is rounded down: 11.31B exact (models.csv); ReLU vs GELU does not change the count.
    s = preset_shape("t5-11b")
    assert s.mlp == "relu"
    assert abs(arch.params(s) / 11e9 - 1) < 0.03


def test_deepseek_v3_total_and_active():
    s = preset_shape("deepseek-v3")
    total, active = arch.params(s), arch.active_params(s)
    # DeepSeek-V3 report: 671B total. Published figure has 3 significant digits -> within 0.1%.
    assert abs(total / 671e9 - 1) < 1e-3
    # 37B activated: our count (9 of 257 experts per MoE layer, router, both embeddings) is 37.55B.
    # The report's 37B is rounded, and whether the input embedding (0.93B, a lookup) counts is not
    # stated; without it the figure is 36.6B. Within 2% either way.
    assert abs(active / 37e9 - 1) < 0.02
    assert abs((active - 129280 * 7168) / 37e9 - 1) < 0.02
    # The HF repo's 685B adds the 14B multi-token-prediction module (models.md flag 15).
    assert abs((total + 14e9) / 685e9 - 1) < 0.005
    # Without the query compression (q_lora_rank 1536) the count overshoots by ~7.8B: it is needed.
    assert arch.params(arch.with_changes(s, q_lora_rank=None)) > 678e9


def test_tied_vs_untied_and_embedding_split():
    untied = LLAMA2_7B
    tied = arch.with_changes(untied, tied_embeddings=True)
    assert arch.params(untied) - arch.params(tied) == 32000 * 4096
    assert arch.embedding_params(untied) + arch.non_embedding_params(untied) == arch.params(untied)
    assert sum(arch.components(preset_shape("bert-large")).values()) == 335_141_888


def test_gqa_and_mqa_shrink_only_k_and_v():
    mha = LLAMA2_7B
    gqa = arch.with_changes(mha, kv_heads=8)
    mqa = arch.with_changes(mha, kv_heads=1)
    # K and V: 2 · d · kv_heads · head_dim per layer.
    assert arch.params(mha) - arch.params(gqa) == 32 * 2 * 4096 * (32 - 8) * 128
    assert arch.params(mha) - arch.params(mqa) == 32 * 2 * 4096 * (32 - 1) * 128


def test_gated_vs_plain_mlp():
    plain = arch.with_changes(LLAMA2_7B, mlp="gelu", ffn=11008)
    assert arch.params(LLAMA2_7B) - arch.params(plain) == 32 * 4096 * 11008
    assert arch.with_changes(LLAMA2_7B, mlp="gelu").d_ffn == 4 * 4096


def test_moe_counts_mixtral_like():
    # 8 experts, 2 per token: total adds 7 more FFNs per layer plus the router; active adds 1.
    dense = arch.with_changes(LLAMA2_7B, ffn=14336)
    moe = arch.with_changes(dense, experts=8, experts_per_token=2)
    ffn = 3 * 4096 * 14336
    assert arch.params(moe) - arch.params(dense) == 32 * (7 * ffn + 8 * 4096)
    assert arch.active_params(moe) - arch.params(dense) == 32 * (1 * ffn + 8 * 4096)


# ----- KV cache ---------------------------------------------------------------------------------

def test_kv_cache_bytes_per_token():
    # 2 · L · n_kv · head_dim · bytes (memory-and-compute.md "KV cache").
    assert arch.kv_cache_bytes_per_token(LLAMA2_7B, 2) == 2 * 32 * 32 * 128 * 2 == 524_288
    assert arch.kv_cache_bytes_per_token(preset_shape("llama-2-70b"), 2) == 2 * 80 * 8 * 128 * 2
    # MLA latent: (kv_lora_rank + qk_rope_head_dim) · L · bytes.
    assert arch.kv_cache_bytes_per_token(preset_shape("deepseek-v3"), 2) == (512 + 64) * 61 * 2
    assert arch.kv_cache_bytes_per_token(preset_shape("bert-large"), 2) == 0  # nothing is decoded
    assert arch.kv_cache_bytes_per_token(LLAMA2_7B, 0.5) == 2 * 32 * 32 * 128 // 2


# ----- FLOPs per token ----------------------------------------------------------------------------

@pytest.mark.parametrize("pid, d1_flops", [
    ("gpt-3-125m", 2.25e20), ("gpt-3-350m", 6.41e20), ("gpt-3-760m", 1.37e21), ("gpt-3-1.3b", 2.38e21),
    ("gpt-3-2.7b", 4.77e21), ("gpt-3-6.7b", 1.20e22), ("gpt-3-13b", 2.31e22), ("gpt-3-175b", 3.14e23),
])
def test_six_n_reproduces_gpt3_table_d1(pid, d1_flops):
    # Table D.1: 6 FLOPs per parameter per token x 300B tokens, attention ignored. D.1 prints 3
    # significant figures and its params are themselves rounded (1.32B vs 1.3157B): 1%.
    f = arch.flops_per_token(preset_shape(pid))
    assert abs(f["six_n"] * 300e9 / d1_flops - 1) < 0.01


def test_matmul_count_is_palm_appendix_b():
    # PaLM App. B: 6N + 12·L·H·Q·T per token, N the weights a token multiplies by (here the
    # output logits V·d included, the input lookup excluded), attention over the full T x T.
    s, seq = LLAMA2_7B, 4096
    norms = (2 * 32 + 1) * 4096
    n_matmul = arch.params(s) - 32000 * 4096 - norms
    f = arch.flops_per_token(s, seq)
    assert f["matmul"] == 6 * n_matmul + 12 * 32 * 32 * 128 * seq
    assert f["ratio"] == f["matmul"] / (6 * arch.params(s))


def test_causal_count_is_kaplan_eq_2_2():
    # Kaplan Table 1 / Eq. 2.2: C_forward ≈ 2N + 2·n_layer·n_ctx·d_attn (N non-embedding), the
    # attention term already halved for the causal mask; training = 3 x forward. GPT-3 175B: N
    # also holds biases and norms, which Kaplan's 2N counts as FLOPs too; logits are separate.
    s = preset_shape("gpt-3-175b")
    f = arch.flops_per_token(s, 2048)
    kaplan = 3 * (2 * arch.non_embedding_params(s) + 2 * 96 * 2048 * 12288) + 3 * 2 * 50257 * 12288
    assert abs(f["matmul_causal"] / kaplan - 1) < 1e-4


def test_hoffmann_appendix_f_counting():
    # App. F (as in scaling-laws.md §3.1): per layer KQV, logits, softmax (3·H·s^2), value reduction,
    # projection, dense; backward = 2 x forward. Without embeddings and logits it equals our full-
    # attention matmul count minus the logits plus the softmax term, which our count leaves out.
    s, seq = preset_shape("gpt-3-6.7b"), 2048
    f = arch.flops_per_token(s, seq)
    biases = 32 * (3 * 4096 + 4096 + 16384 + 4096)  # GPT-3's biases are in N but not in App. F's matrices
    ours_no_logits = f["matmul"] - 3 * 2 * 50257 * 4096 - 3 * 2 * biases
    softmax = 3 * 32 * 3 * 32 * seq  # 3 x (L · 3·H·s^2 / s)
    assert arch.hoffmann_flops_per_token(s, seq, embeddings=False) == pytest.approx(ours_no_logits + softmax, rel=1e-12)
    # Table A4's ratios to 6N are 0.99-1.10 for 73M-6.8B. A 6.7B GPT-3 shape lands in that band
    # when, as the nanoGPT notebook found, embeddings and logits are left out of the FLOPs.
    ratio = arch.hoffmann_flops_per_token(s, seq, embeddings=False) / (6 * arch.params(s))
    assert 0.99 <= ratio <= 1.10


def test_t5_follows_table_d1_half_convention():
    # GPT-3 D.1 counts T5 at 3 FLOPs per parameter per token (half the parameters per token): our
    # per-token count (encoder + decoder tokens) is ~half of 6N, plus the attention scores at 512.
    f = arch.flops_per_token(preset_shape("t5-11b"))
    assert 0.5 <= f["ratio"] <= 0.6


def test_moe_six_n_uses_active():
    s = preset_shape("deepseek-v3")
    assert arch.flops_per_token(s, 4096)["six_n"] == 6 * arch.active_params(s)


# ----- proposals ----------------------------------------------------------------------------------

def test_propose_hits_published_shapes():
    # Asked for Llama 2 70B's exact count (68.98B, models.md), the proposer finds its shape: 80 x 8192,
    # 64 heads of 128, 8 KV heads, SwiGLU 28,672 (Llama 3's rounding gives the same width).
    first = propose(68_976_648_192, 3)[0]
    assert (first.layers, first.d_model, first.heads, first.n_kv_heads, first.d_ffn) == (80, 8192, 64, 8, 28672)
    assert arch.params(first) == 68_976_648_192
    # Mistral 7B (7.24B with vocab 32,000): 32 x 4096, 32 heads, 8 KV heads, FFN 14,336 (models.md).
    seven = propose(7_241_732_096, 1)[0]
    assert (seven.layers, seven.d_model, seven.heads, seven.n_kv_heads, seven.d_ffn) == (32, 4096, 32, 8, 14336)


def test_llama3_ffn_reproduces_the_published_widths():
    # Llama 3.1 8B / 70B / 405B: 14,336 / 28,672 / 53,248 (models.md); LLaMA's 8/3 d rounded to 256 below 2048 wide.
    from llmplan.model.propose import llama3_ffn

    assert [llama3_ffn(d) for d in (4096, 8192, 16384)] == [14336, 28672, 53248]
    assert llama3_ffn(1024) == 2816  # int(8/3 * 1024) = 2730 -> 2816


def test_propose_shapes_split_over_a_node_and_pipeline_stages():
    from llmplan.model.propose import FAMILY_SPREAD, DEPTH_SPREAD

    for target in (1e9, 7e9, 13e9, 70e9, 175e9, 405e9, 1e12):
        shapes = propose(target, 3)
        assert 1 <= len(shapes) <= 3
        for s in shapes:
            # d_model a multiple of 128; heads of 128 (64 up to 2560 wide) in multiples of 8; 8 KV heads from 1B.
            assert s.d_model % 128 == 0 and s.d_head == (64 if s.d_model <= 2560 else 128)
            assert s.heads % 8 == 0 and s.n_kv_heads == 8
            # Depth within the spread of the family's curve, a multiple of 8 from 64 layers (4 below).
            assert abs(s.layers / family_layers(s.d_model) - 1) <= DEPTH_SPREAD + 1e-9
            assert s.layers % (8 if family_layers(s.d_model) >= 64 else 4) == 0
        # Within 5% when any shape is; the family's own depth (within 15%) ranks first.
        if abs(arch.params(shapes[0]) / target - 1) <= PROPOSAL_TOLERANCE:
            assert all(abs(arch.params(s) / target - 1) <= PROPOSAL_TOLERANCE for s in shapes)
            assert abs(shapes[0].layers / family_layers(shapes[0].d_model) - 1) <= FAMILY_SPREAD + 1e-9
    # Below 1B: multi-head attention; the 405B proposals include Llama 3.1 405B's width 16,384 (128 heads).
    assert propose(350e6, 1)[0].n_kv_heads == propose(350e6, 1)[0].heads
    assert any(s.d_model == 16384 and s.heads == 128 for s in propose(405e9, 3))


def test_kv_heads_override_and_must_divide_the_heads():
    (s,) = propose(70e9, 1, kv_heads=16)
    assert s.n_kv_heads == 16 and s.heads % 16 == 0
    assert propose(70e9, 1, kv_heads=64)[0].n_kv_heads == 64
    with pytest.raises(InputError, match="kv-heads"):
        propose(70e9, 1, kv_heads=1000)


def test_propose_rejects_nonsense():
    with pytest.raises(InputError):
        propose(-5)
    with pytest.raises(InputError):
        propose(1e20)


# ----- presets and errors -------------------------------------------------------------------------

def test_derived_counts_for_presets_show(cli):
    d = arch.derived_counts(catalog().get("models", "llama-2-70b"))
    assert d["derived_params"] == 68_976_648_192 and d["derived_vs_published"] == 1.0
    assert arch.derived_counts(catalog().get("models", "chinchilla-70b")) == {}  # MLP kind not published
    ds = arch.derived_counts(catalog().get("models", "deepseek-v3"))
    assert "derived_active_params" in ds
    result = cli(["presets", "show", "llama-2-7b", "-f", "json"])
    assert result.code == 0 and json.loads(result.stdout)[0]["derived_params"] == LLAMA2_7B_PARAMS


def test_preset_without_shape_is_an_input_error(cli):
    with pytest.raises(InputError, match="chinchilla-70b"):
        preset_shape("chinchilla-70b")
    result = cli(["arch", "--preset", "chinchilla-70b"])
    assert result.code == 2 and "chinchilla-70b" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, text", [
    (["arch"], "--preset"),
    (["arch", "--layers", "32", "--d-model", "4096", "--heads", "32"], "--vocab"),
    (["arch", "--layers", "32", "--d-model", "4096", "--heads", "30", "--kv-heads", "8", "--vocab", "32000"], "heads"),
    (["arch", "--layers", "32", "--d-model", "4096", "--heads", "32", "--vocab", "32000", "--mlp", "swish"], "swiglu"),
    (["arch", "--layers", "0", "--d-model", "4096", "--heads", "32", "--vocab", "32000"], "layers"),
    (["arch", "--target", "seven"], "seven"),
    (["arch", "--preset", "llama-2-7b", "--kv-dtype", "bf17"], "bf16"),
    (["arch", "--type", "encoder-decoder", "--d-model", "512", "--heads", "8", "--vocab", "32000"], "encoder-layers"),
])
def test_bad_input_exits_2(cli, args, text):
    result = cli(args)
    assert result.code == 2, result.stdout
    assert text in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_target_rows(cli):
    result = cli(["arch", "--target", "7B", "-f", "json"])
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    # one shape within 5% of 7B: 32 x 4096 with 8 KV heads (7.24B, Mistral 7B's shape); the next is further
    assert len(rows) == 1 and all(r["target_params"] == 7e9 for r in rows)
    assert (rows[0]["layers"], rows[0]["d_model"], rows[0]["heads"], rows[0]["kv_heads"]) == (32, 4096, 32, 8)
    big = json.loads(cli(["arch", "--target", "70B", "--kv-heads", "8", "-f", "json"]).stdout)
    assert (big[0]["layers"], big[0]["d_model"], big[0]["heads"], big[0]["kv_heads"], big[0]["ffn"]) == (80, 8192, 64, 8, 28672)
    assert all(r["gap_params"] == r["params"] - 7e9 for r in rows)


def test_cli_stdin_presets_and_table(cli):
    result = cli(["arch", "--preset", "-", "-f", "tsv"], stdin="llama-2-7b\nmistral-7b\n")
    assert result.code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and "7241732096" in lines[2]
    table = cli(["arch", "--preset", "t5-11b", "-f", "table"])
    assert table.code == 0 and "11.3B" in table.stdout and "matmul" in table.stdout


def test_encoder_decoder_and_encoder_from_flags(cli):
    # T5-11B as flags reproduces the preset count.
    args = ["arch", "--type", "encoder-decoder", "--encoder-layers", "24", "--decoder-layers", "24", "--d-model", "1024",
            "--heads", "128", "--head-dim", "128", "--ffn", "65536", "--mlp", "relu", "--vocab", "32128", "--context", "512",
            "--tied-embeddings", "--positions", "relative", "-f", "json"]
    result = cli(args)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)[0]["params"] == 11_307_321_344


def test_arch_module_is_light():
    # Importing the command module must not pull numpy or scipy (DESIGN: startup is part of the product).
    code = "import sys, llmplan.cli.arch, llmplan.model.arch, llmplan.model.hfconfig; print('numpy' in sys.modules or 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_optimal_shape_proposes_a_model_near_the_optimal_size(cli):
    # `optimal --shape` attaches propose's nearest LLaMA-style shape; its count is exact.
    import json

    from llmplan.model.arch import Shape, params as count

    result = cli(["optimal", "--budget", "1e20", "--budget", "1e24", "--shape", "-f", "json"])
    assert result.code == 0, result.stderr
    for row in json.loads(result.stdout):
        assert row["shape_params"] == pytest.approx(row["params"], rel=0.10)
        shape = Shape(d_model=row["shape_d_model"], heads=row["shape_heads"], kv_heads=row["shape_kv_heads"], vocab=32000,
                      layers=row["shape_layers"], ffn=row["shape_ffn"], context=4096)
        assert count(shape) == row["shape_params"]


# Hoffmann et al. 2022, Table A4 (App. F): layers, d_model, ffw_size, heads, and the printed
# ratio of their FLOP count to 6ND, at sequence 2048 and vocabulary 32,000.
TABLE_A4 = [(10, 640, 2560, 10, 1.03), (20, 1024, 4096, 16, 1.10), (24, 1280, 5120, 10, 1.08),
            (26, 1792, 7168, 14, 1.04), (28, 2048, 8192, 16, 1.03), (40, 3584, 14336, 28, 0.99)]


@pytest.mark.parametrize("layers, d, ffw, heads, printed", TABLE_A4)
def test_appendix_f_count_reproduces_table_a4(layers, d, ffw, heads, printed):
    # Reproduced only as the nanoGPT scaling_laws notebook found (per the authors' correspondence):
    # FLOPs without the embedding and logit terms, and N as Chinchilla counts it: Transformer-XL
    # relative positions (d² + 2d per layer), biases and LayerNorms, the output head, but not the
    # input embedding. Printed to two decimals, so 0.0051 covers rounding (1.025 prints as 1.03).
    from llmplan.model.arch import Shape, hoffmann_flops_per_token, params as count

    shape = Shape(d_model=d, heads=heads, vocab=32000, layers=layers, ffn=ffw, mlp="gelu", context=2048,
                  tied_embeddings=False, positions="relative", norm="layernorm", bias=True)
    n_chinchilla = count(shape) - d * 32000 + layers * (d * d + 2 * d)
    ratio = hoffmann_flops_per_token(shape, 2048, embeddings=False) / (6 * n_chinchilla)
    print(f"Table A4 {layers}x{d}: ours/6N = {ratio:.4f} (printed {printed})")
    assert ratio == pytest.approx(printed, abs=0.0051)
