"""Memory timeline of one real training step on CPU PyTorch, phase by phase: the calibration harness.

Not part of llmplan (torch is for calibrating only, never a dependency). Run it in a separate
virtualenv that has torch (the recorded data used torch 2.13.0+cpu):

    python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    /tmp/torchvenv/bin/python benchmarks/torch_memory_timeline.py --out tests/data/memory_timeline_cpu.json

What it does. It builds a LLaMA-style decoder in plain torch that follows transformers'
LlamaForCausalLM line by line (RMSNorm upcasting to fp32, rotary in fp32 with autocast disabled, SDPA
with enable_gqa and is_causal or HF's eager attention with repeat_kv and a b x 1 x s x s mask, SwiGLU,
untied or tied output head, ForCausalLMLoss: logits.float() then cross_entropy, gradient checkpointing
as HF's default torch.utils.checkpoint(use_reentrant=True)), and runs gpu_truth.py's loop:
`out = model(ids, labels=ids)` under autocast (amp) or not; `out.loss.backward()`; `opt.step()`;
`opt.zero_grad(set_to_none=True)`, with torch.optim.AdamW(foreach=..., fused=...) for each
implementation. The second step is recorded with torch.profiler (profile_memory=True): every
allocation and free, in nanosecond order, and markers that gradient hooks drop when backward reaches
the logits, the final norm, each layer's output and the embedding. Each phase's peak is the highest
running total (bytes above what was allocated when the step began: weights + optimizer states) inside
its interval:

    end of forward          from the step's start until autocast exits (forward, loss, cast cache)
    start of backward       loss.backward() until d(logits) reaches lm_head
    backward, output head   lm_head's backward (its weight gradient, d(hidden))
    backward, top layer     the final norm and the top layer's backward
    backward, middle layers the layers between (reported, not a modelled phase)
    backward, bottom layer  layer 0's backward (with checkpointing: its recomputation too)
    backward, embedding     the embedding's backward to the end of loss.backward()
    optimizer step          opt.step()

Each case is run at 2 and 3 layers (the issue's slope check: per-layer terms extrapolate linearly).
A Mixtral-style MoE block (transformers 4.x MixtralSparseMoeBlock: router, fp32 softmax, top-k, a loop
over the experts, index_add_) calibrates the MoE terms. `--only SHAPE` reruns one shape's cases.
The SDPA backend is chosen with torch.nn.attention.sdpa_kernel (CPU has flash and math).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.checkpoint import checkpoint


# ---------------------------------------------------------------------------- the model (HF Llama)

class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = 1e-6

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        return self.weight * x.to(dtype)


class Rotary(nn.Module):
    def __init__(self, hd):
        super().__init__()
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.int64).to(dtype=torch.float) / hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    @torch.no_grad()
    def forward(self, x, pos):
        inv = self.inv_freq[None, :, None].float().expand(pos.shape[0], -1, 1)
        p = pos[:, None, :].float()
        with torch.autocast(device_type="cpu", enabled=False):
            freqs = (inv.float() @ p.float()).transpose(1, 2)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n):
    if n == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None, :, :].expand(b, h, n, s, d).reshape(b, h * n, s, d)


class Attention(nn.Module):
    def __init__(self, d, heads, kv, attn):
        super().__init__()
        self.hd, self.heads, self.kv, self.attn = d // heads, heads, kv, attn
        self.q_proj = nn.Linear(d, heads * self.hd, bias=False)
        self.k_proj = nn.Linear(d, kv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, kv * self.hd, bias=False)
        self.o_proj = nn.Linear(heads * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask):
        shape = (*x.shape[:-1], -1, self.hd)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        c, s_ = cos.unsqueeze(1), sin.unsqueeze(1)
        q = (q * c) + (rotate_half(q) * s_)
        k = (k * c) + (rotate_half(k) * s_)
        scaling = self.hd ** -0.5
        if self.attn == "eager":
            n = self.heads // self.kv
            kr, vr = repeat_kv(k, n), repeat_kv(v, n)
            w = torch.matmul(q, kr.transpose(2, 3)) * scaling
            w = w + mask[:, :, :, : kr.shape[-2]]
            w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
            w = F.dropout(w, p=0.0, training=self.training)
            o = torch.matmul(w, vr)
        else:  # transformers sdpa_attention_forward: enable_gqa when there is no mask (torch >= 2.5)
            gqa = {"enable_gqa": True} if self.kv != self.heads else {}
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, scale=scaling, is_causal=True, **gqa)
        o = o.transpose(1, 2).contiguous()
        return self.o_proj(o.reshape(*x.shape[:-1], -1).contiguous())


class MLP(nn.Module):
    def __init__(self, d, ffn):
        super().__init__()
        self.gate_proj = nn.Linear(d, ffn, bias=False)
        self.up_proj = nn.Linear(d, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class SparseMoE(nn.Module):
    """transformers' MixtralSparseMoeBlock (4.x): router, fp32 softmax, top-k, renormalised weights, a loop
    over the experts that received tokens, index_add_ of the weighted outputs."""

    def __init__(self, d, ffn, experts, top_k):
        super().__init__()
        self.gate = nn.Linear(d, experts, bias=False)
        self.experts = nn.ModuleList(MLP(d, ffn) for _ in range(experts))
        self.top_k, self.n = top_k, experts

    def forward(self, x):
        b, s, d = x.shape
        h = x.view(-1, d)
        logits = self.gate(h)
        weights = F.softmax(logits, dim=1, dtype=torch.float)
        weights, chosen = torch.topk(weights, self.top_k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        weights = weights.to(h.dtype)
        out = torch.zeros((b * s, d), dtype=h.dtype)
        mask = F.one_hot(chosen, num_classes=self.n).permute(2, 1, 0)
        for e in range(self.n):
            idx, rows = torch.where(mask[e])
            if rows.numel() == 0:
                continue
            state = h[None, rows].reshape(-1, d)
            y = self.experts[e](state) * weights[rows, idx, None]
            out.index_add_(0, rows, y.to(h.dtype))
        return out.reshape(b, s, d)


class Layer(nn.Module):
    def __init__(self, d, heads, kv, ffn, attn, experts=0, top_k=0):
        super().__init__()
        self.self_attn = Attention(d, heads, kv, attn)
        self.mlp = SparseMoE(d, ffn, experts, top_k) if experts else MLP(d, ffn)
        self.input_layernorm = RMSNorm(d)
        self.post_attention_layernorm = RMSNorm(d)

    def forward(self, x, cos, sin, mask):
        r = x
        x = r + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        r = x
        return r + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, L, d, heads, kv, ffn, V, tied, attn, experts=0, top_k=0):
        super().__init__()
        self.embed_tokens = nn.Embedding(V, d)
        self.layers = nn.ModuleList(Layer(d, heads, kv, ffn, attn, experts, top_k) for _ in range(L))
        self.norm = RMSNorm(d)
        self.rotary = Rotary(d // heads)
        self.lm_head = nn.Linear(d, V, bias=False)
        if tied:
            self.lm_head.weight = self.embed_tokens.weight
        self.attn, self.V, self.ckpt, self.mark = attn, V, False, None

    def _hook(self, name, t):
        if self.mark is not None and t.requires_grad:
            t.register_hook(lambda g: self.mark(name))

    def forward(self, ids):
        x = self.embed_tokens(ids)
        self._hook("embedding", x)
        b, s = ids.shape
        pos = torch.arange(s).unsqueeze(0)
        cos, sin = self.rotary(x, pos)
        mask = None
        if self.attn == "eager":  # HF eager mask: b x 1 x s x s in the hidden dtype, min where masked
            causal = torch.ones(s, s, dtype=torch.bool).tril()
            mask = torch.zeros(b, 1, s, s, dtype=x.dtype).masked_fill(~causal, torch.finfo(x.dtype).min)
        for i, layer in enumerate(self.layers):
            if self.ckpt:
                x = checkpoint(layer, x, cos, sin, mask, use_reentrant=True)
            else:
                x = layer(x, cos, sin, mask)
            self._hook(f"layer{i}", x)
        x = self.norm(x)
        self._hook("norm", x)
        logits = self.lm_head(x)
        self._hook("logits", logits)
        # transformers ForCausalLMLoss
        lg = logits.float()
        labels = F.pad(ids, (0, 1), value=-100)[..., 1:].contiguous()
        loss = F.cross_entropy(lg.view(-1, self.V), labels.view(-1), ignore_index=-100, reduction="mean")
        return loss, logits


# ---------------------------------------------------------------------------- one profiled step

def storage_bytes(tensors) -> int:
    seen = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def run_case(case: dict) -> dict:
    L, d, heads, kv, ffn, V = (case[k] for k in ("layers", "d_model", "heads", "kv_heads", "ffn", "vocab"))
    b, s, mode = case["batch"], case["seq"], case["mode"]
    torch.manual_seed(0)
    wdt = torch.bfloat16 if mode == "bf16" else torch.float32
    old = torch.get_default_dtype()
    torch.set_default_dtype(wdt)
    try:
        model = Llama(L, d, heads, kv, ffn, V, case["tied"], "eager" if case["attn"] == "eager" else "sdpa",
                      case.get("experts", 0), case.get("top_k", 0))
    finally:
        torch.set_default_dtype(old)
    model.ckpt = case["ckpt"]
    model.train()
    impl = case["optimizer_impl"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=impl == "foreach", fused=impl == "fused")
    ids = torch.randint(0, V, (b, s))
    backend = {"flash": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}.get(case["attn"])

    def step():
        ac = torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "amp")
        with sdpa_kernel(backend) if backend is not None else contextlib.nullcontext():
            with ac:
                loss, logits = model(ids)
            mark("autocast exited")
            mark("backward")
            loss.backward()
            mark("backward done")
        mark("optimizer step")
        opt.step()
        mark("optimizer done")
        opt.zero_grad(set_to_none=True)
        return logits

    def mark(name):
        with record_function("MARK:" + name):
            pass

    model.mark = None
    out = step()  # creates the optimizer states
    del out
    params = list(model.parameters())
    weights = storage_bytes(params)
    states = storage_bytes([t for st in opt.state.values() for t in st.values() if torch.is_tensor(t) and t.dim() > 0])
    model.mark = mark
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        mark("step")
        out = step()
        del out
        mark("end")
    events = sorted(prof.profiler.kineto_results.events(), key=lambda e: e.start_ns())
    rec = {**case, "params": sum(p.numel() for p in params), "weights_bytes": weights, "optimizer_states_bytes": states}
    rec.update(phase_peaks(events, L))
    return rec


def phase_peaks(events, L: int) -> dict:
    """Walk the allocations in time order; each phase's peak is the highest running total inside it."""
    bottom = "layer0"
    # The marker that OPENS each interval (gradient hooks fire when backward reaches that tensor).
    openers = {"step": "end of forward", "backward": "start of backward", "logits": "backward, output head",
               "norm": "backward, top layer", f"layer{L - 2}": "backward, middle layers", bottom: "backward, bottom layer",
               "embedding": "backward, embedding", "optimizer step": "optimizer step"}
    if L == 2:
        openers[f"layer{L - 2}"] = "backward, bottom layer"
    closers = {"autocast exited", "backward done", "optimizer done", "end"}
    peaks: dict[str, int] = {}
    total, current, order = 0, None, []
    forward_end = None
    for e in events:
        name = e.name()
        if name.startswith("MARK:"):
            tag = name[5:]
            if tag in openers:
                current = openers[tag]
                peaks.setdefault(current, total)
                order.append(current)
            elif tag in closers:
                if tag == "autocast exited":
                    forward_end = total
                current = None
            continue
        if name == "[memory]":
            total += e.nbytes()
            if current is not None:
                peaks[current] = max(peaks[current], total)
    out = {"phase_peaks_above_start_bytes": peaks, "after_forward_bytes": forward_end, "end_of_step_bytes": total}
    out["peak_phase"] = max(peaks, key=peaks.get)
    out["peak_above_start_bytes"] = peaks[out["peak_phase"]]
    return out


# ---------------------------------------------------------------------------- the cases

SHAPES = {
    # name: d_model, heads, kv_heads, ffn, vocab, batch, seq, tied
    "gqa": (256, 8, 2, 688, 2000, 2, 256, False),
    "tied": (256, 4, 4, 688, 8000, 2, 128, True),
    "long": (128, 4, 4, 344, 1000, 1, 2048, False),
}
# llama-134m's width (gpu_memory_calibration.jsonl) at batch 1 and 2, sequence 1024: extrapolated in
# layers and batch to the H100 cases' 12 layers and batch 8 by tests/test_memory_phases.py.
CALIBRATION = (768, 12, 12, 2048, 32000, None, 1024, False)


def cases(quick: bool = False) -> list[dict]:
    out = []

    def add(name, dims, layers, batch=None, **kw):
        d, h, kv, ffn, V, b, s, tied = dims
        base = dict(shape=name, layers=layers, d_model=d, heads=h, kv_heads=kv, ffn=ffn, vocab=V,
                    batch=batch or b, seq=s, tied=tied, mode="fp32", attn="auto", ckpt=False, optimizer_impl="for-loop")
        base.update(kw)
        out.append(base)

    for name, dims in SHAPES.items():
        for L in (2, 3):
            for mode in ("fp32", "amp", "bf16"):
                for ckpt in (False, True):
                    add(name, dims, L, mode=mode, ckpt=ckpt)
            for impl in ("foreach", "fused"):
                add(name, dims, L, mode="amp", optimizer_impl=impl)
            add(name, dims, L, mode="fp32", attn="math")
            add(name, dims, L, mode="bf16", attn="eager")
    # A Mixtral-style MoE (8 experts, top 2, expert FFN 256) for the MoE activation terms.
    for L in (2, 3):
        for mode in ("fp32", "amp", "bf16"):
            add("moe", (256, 4, 4, 256, 2000, 2, 256, False), L, mode=mode, experts=8, top_k=2)
    if not quick:
        for L in (2, 3):
            for b in (1, 2):
                for mode, ckpt, attn in (("fp32", False, "auto"), ("amp", False, "auto"), ("bf16", False, "auto"),
                                         ("amp", True, "auto"), ("amp", False, "eager")):
                    add("llama-134m", CALIBRATION, L, batch=b, mode=mode, ckpt=ckpt, attn=attn)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="skip the llama-134m-width cases")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", help="run only the cases of this shape (gqa, tied, long, moe, llama-134m)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    t0 = time.time()
    for case in cases(args.quick):
        if args.only and case["shape"] != args.only:
            continue
        rec = run_case(case)
        rows.append(rec)
        print(f"{time.time() - t0:7.1f}s {case['shape']} L{case['layers']} b{case['batch']} {case['mode']} {case['attn']}"
              f"{' ckpt' if case['ckpt'] else ''} {case['optimizer_impl']}: {rec['peak_phase']} {rec['peak_above_start_bytes']:,}",
              file=sys.stderr, flush=True)
    doc = {"torch": torch.__version__, "device": "cpu", "harness": "benchmarks/torch_memory_timeline.py", "cases": rows}
    with open(args.out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    import os

    os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
