"""Collectives by an alpha-beta model (Thakur, Rabenseifner & Gropp 2005) over the link they cross.

Each collective pays NCCL's base latency, a latency per ring step and its bytes over the link's
bandwidth: NVLink inside a node (at the rate NCCL's topology model gives it), the network across
nodes; ring or tree, whichever is faster, as NCCL's tuner chooses (NCCL src/graph/tuning.cc).
Arithmetic only, so the layout search can pass numpy arrays.
"""

from __future__ import annotations

from llmplan.systems._arith import log2_ceil, where
from llmplan.systems.gpu import GPU

# NCCL's latency model (NCCL src/graph/tuning.cc, protocol Simple): a base latency per collective and a
# latency per ring step, NVLink vs network, in seconds.
NCCL_BASE_LATENCY = 8.4e-6
NCCL_STEP_LATENCY_INTRA = 3.4e-6
NCCL_STEP_LATENCY_INTER = 14e-6


def ranks_per_node(n, span, gpus_per_node):
    """Ranks of an n-rank group spread evenly over `span` consecutive GPUs that share one node: n·g/span, between 1 and g."""
    k = n * gpus_per_node / span
    return k - (k - gpus_per_node) * (k > gpus_per_node) + (1 - k) * (k < 1)


def ring_bandwidth(n, span, cluster: GPU):
    """Bus bandwidth of a ring (or tree) collective whose n ranks span `span` GPUs: NVLink inside a node; across
    nodes each ring crosses a node boundary once and NCCL spreads its channels over the NICs of the group's k
    ranks in each node, so the network gives k NICs' worth, up to the NVLink hops' own rate (NCCL's ring
    search, src/graph/search.cc; nccl-tests busbw on DGX A100, NVLink 3 + 8 x 200 Gb/s: 192 GB/s, DGX H100,
    NVLink 4 + 8 x 400 Gb/s: 380 GB/s, NVIDIA GTC24 S62129, against 25 and 50 GB/s per NIC)."""
    nvlink = cluster.intra_link_efficiency * cluster.intra_node_bandwidth
    inter = cluster.inter_node_bandwidth or cluster.intra_node_bandwidth
    k = ranks_per_node(n, span, cluster.gpus_per_node)
    across = k * inter
    across = across - (across - nvlink) * (across > nvlink)  # min(k NICs, NVLink)
    return where(span <= cluster.gpus_per_node, nvlink, across)


def _link(span, cluster: GPU):
    """(bandwidth, per-step latency) of a point-to-point or all-to-all exchange whose ranks span `span`
    consecutive GPUs: each rank's traffic leaves on its own NIC."""
    inside = span <= cluster.gpus_per_node
    inter = cluster.inter_node_bandwidth or cluster.intra_node_bandwidth
    return (where(inside, cluster.intra_link_efficiency * cluster.intra_node_bandwidth, inter),
            where(inside, NCCL_STEP_LATENCY_INTRA, NCCL_STEP_LATENCY_INTER))


def all_reduce_seconds(size, n, span, cluster: GPU):
    """All-reduce of `size` bytes over n ranks: ring 2(n-1)/n·S/B + 2(n-1)·alpha, or double binary tree
    2·S/B + 2·ceil(log2 n)·alpha, whichever is faster (Thakur et al. 2005; NCCL tuning.cc). 0 for n = 1."""
    _, alpha = _link(span, cluster)
    B = ring_bandwidth(n, span, cluster)
    ring = 2 * (n - 1) / n * size / B + 2 * (n - 1) * alpha
    tree = 2 * size / B + 2 * log2_ceil(n) * alpha
    best = (ring + tree - abs(ring - tree)) / 2
    return (n > 1) * (NCCL_BASE_LATENCY + best)


def all_gather_seconds(size, n, span, cluster: GPU):
    """All-gather (or reduce-scatter) whose full buffer is `size` bytes: ring (n-1)/n·S/B + (n-1)·alpha."""
    _, alpha = _link(span, cluster)
    B = ring_bandwidth(n, span, cluster)
    return (n > 1) * (NCCL_BASE_LATENCY + (n - 1) / n * size / B + (n - 1) * alpha)


def all_to_all_seconds(size, n, span, cluster: GPU):
    """All-to-all of `size` bytes per rank: each rank sends (n-1)/n of it, n-1 peers (GShard dispatch)."""
    B, alpha = _link(span, cluster)
    return (n > 1) * (NCCL_BASE_LATENCY + (n - 1) / n * size / B + (n - 1) * alpha)


def p2p_seconds(size, crosses_node, cluster: GPU):
    """One point-to-point send of `size` bytes (pipeline stage boundary)."""
    inter = cluster.inter_node_bandwidth or cluster.intra_node_bandwidth
    B = where(crosses_node, inter, cluster.intra_link_efficiency * cluster.intra_node_bandwidth)
    alpha = where(crosses_node, NCCL_STEP_LATENCY_INTER, NCCL_STEP_LATENCY_INTRA)
    return NCCL_BASE_LATENCY + size / B + alpha

