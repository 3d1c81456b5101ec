"""The paper's model ladder and an analytic parameter / FLOP counter for the SD v1.5 U-Net layout.

Table 1 of "Bigger is not Always Better" is kept here once, as data; everything that needs a model
size (validation, the memory plan, sampling cost, reports) asks this module. The counter walks
the same block structure as the Flax U-Net in ``ladder_trainer.models`` (a test checks the two
agree exactly), so cost figures are for the model that is really trained.

FLOPs are 2 x multiply-accumulates of one forward pass, attention matmuls included; normalisation,
activations and softmax are left out, as is usual. With this convention the counter lands within
~3% of the paper's GFLOPs for c >= 96 (its 25.3 at c = 64 is inconsistent with its own normalised
cost and is treated as a typo).
"""

from __future__ import annotations

from dataclasses import dataclass, field

REFERENCE_WIDTH = 320  # the paper normalises cost to the SD v1.5 width
PAPER_CONTEXT_DIM = 1024  # the context width that reproduces Table 1's parameter counts
PAPER_LATENT_SIZE = 64
PAPER_CONTEXT_TOKENS = 77


@dataclass(frozen=True)
class PaperRow:
    """One column of Table 1, as printed."""

    width: int
    params: str
    gflops: float
    normalized_cost: float
    fid: float
    clip: float


PAPER_TABLE: tuple[PaperRow, ...] = (
    PaperRow(64, "39M", 25.3, 0.07, 25.30, 0.305),
    PaperRow(96, "83M", 102.7, 0.13, 24.30, 0.308),
    PaperRow(128, "145M", 161.5, 0.20, 24.18, 0.310),
    PaperRow(160, "223M", 233.5, 0.30, 23.76, 0.310),
    PaperRow(192, "318M", 318.5, 0.40, 22.83, 0.311),
    PaperRow(224, "430M", 416.6, 0.53, 22.35, 0.312),
    PaperRow(256, "558M", 527.8, 0.67, 22.15, 0.312),
    PaperRow(288, "704M", 652.0, 0.83, 21.82, 0.312),
    PaperRow(320, "866M", 789.3, 1.00, 21.55, 0.312),
    PaperRow(512, "2B", 1887.5, 2.39, 20.98, 0.312),
    PaperRow(768, "5B", 4082.6, 5.17, 20.14, 0.314),
)
PAPER_WIDTHS: tuple[int, ...] = tuple(r.width for r in PAPER_TABLE)


@dataclass(frozen=True)
class UNetShape:
    """Everything that fixes the U-Net's parameter count and cost, and nothing else."""

    base_channels: int
    context_dim: int = PAPER_CONTEXT_DIM
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (0, 1, 2)
    num_heads: int = 8
    in_channels: int = 4
    out_channels: int = 4
    norm_groups: int = 32
    transformer_depth: int = 1
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.base_channels

    @property
    def level_channels(self) -> tuple[int, ...]:
        return tuple(self.base_channels * m for m in self.channel_mult)

    def has_attention(self, level: int) -> bool:
        return level in self.attention_levels


# --- parameters -------------------------------------------------------------------------------


def _norm(ch: int) -> int:
    return 2 * ch


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def _linear(cin: int, cout: int, bias: bool = True) -> int:
    return cin * cout + (cout if bias else 0)


def _resblock_params(cin: int, cout: int, temb: int) -> int:
    p = _norm(cin) + _conv(cin, cout, 3) + _linear(temb, cout) + _norm(cout) + _conv(cout, cout, 3)
    if cin != cout:
        p += _conv(cin, cout, 1)
    return p


def _transformer_params(ch: int, context_dim: int, depth: int) -> int:
    block = (
        _norm(ch) + 3 * _linear(ch, ch, bias=False) + _linear(ch, ch)  # self-attention
        + _norm(ch) + _linear(ch, ch, bias=False) + 2 * _linear(context_dim, ch, bias=False)
        + _linear(ch, ch)  # cross-attention
        + _norm(ch) + _linear(ch, 8 * ch) + _linear(4 * ch, ch)  # GEGLU feed-forward
    )
    return _norm(ch) + _conv(ch, ch, 1) + depth * block + _conv(ch, ch, 1)


def _walk(shape: UNetShape):
    """Yield the U-Net's blocks in order as (kind, level, cin, cout).

    kind is one of conv_in, res, attn, down, mid_res, mid_attn, up, conv_out. Shared by the
    parameter and FLOP counters so both describe the same network.
    """
    chs = shape.level_channels
    c = shape.base_channels
    yield ("conv_in", 0, shape.in_channels, c)
    skips = [c]
    prev = c
    for level, ch in enumerate(chs):
        for _ in range(shape.num_res_blocks):
            yield ("res", level, prev, ch)
            prev = ch
            if shape.has_attention(level):
                yield ("attn", level, ch, ch)
            skips.append(ch)
        if level < len(chs) - 1:
            yield ("down", level, ch, ch)
            skips.append(ch)
    last = len(chs) - 1
    yield ("res", last + 1, prev, prev)
    yield ("attn", last + 1, prev, prev)
    yield ("res", last + 1, prev, prev)
    for level in reversed(range(len(chs))):
        ch = chs[level]
        for _ in range(shape.num_res_blocks + 1):
            yield ("res", level, prev + skips.pop(), ch)
            prev = ch
            if shape.has_attention(level):
                yield ("attn", level, ch, ch)
        if level > 0:
            yield ("up", level, ch, ch)
    yield ("conv_out", 0, c, shape.out_channels)


def param_count(shape: UNetShape) -> int:
    """Exact parameter count of the SD-layout U-Net (text encoder and VAE excluded)."""
    temb = shape.time_embed_dim
    total = _linear(shape.base_channels, temb) + _linear(temb, temb)  # timestep MLP
    for kind, _level, cin, cout in _walk(shape):
        if kind == "conv_in":
            total += _conv(cin, cout, 3)
        elif kind == "res":
            total += _resblock_params(cin, cout, temb)
        elif kind == "attn":
            total += _transformer_params(cin, shape.context_dim, shape.transformer_depth)
        elif kind in ("down", "up"):
            total += _conv(cin, cout, 3)
        elif kind == "conv_out":
            total += _norm(cin) + _conv(cin, cout, 3)
    return total


# --- FLOPs ------------------------------------------------------------------------------------


def forward_flops(
    shape: UNetShape,
    latent_size: int = PAPER_LATENT_SIZE,
    context_tokens: int = PAPER_CONTEXT_TOKENS,
) -> float:
    """FLOPs (2 x MACs) of one U-Net forward pass on one latent of latent_size x latent_size."""
    temb = shape.time_embed_dim
    n_levels = len(shape.level_channels)
    macs = shape.base_channels * temb + temb * temb

    def side(level: int) -> int:
        return latent_size // (2 ** min(level, n_levels - 1))

    def transformer_macs(ch: int, hw: int) -> int:
        d, m = shape.context_dim, context_tokens
        per_block = (
            4 * hw * ch * ch + 2 * hw * hw * ch  # self-attention: q, k, v, out; QK^T and AV
            + 2 * hw * ch * ch + 2 * m * d * ch + 2 * hw * m * ch  # cross-attention
            + 12 * hw * ch * ch  # GEGLU: ch -> 8ch, 4ch -> ch
        )
        return 2 * hw * ch * ch + shape.transformer_depth * per_block  # proj_in / proj_out

    for kind, level, cin, cout in _walk(shape):
        if kind in ("conv_in", "conv_out"):
            macs += latent_size**2 * cin * cout * 9
        elif kind == "res":
            hw = side(level) ** 2
            macs += hw * 9 * (cin * cout + cout * cout) + temb * cout
            if cin != cout:
                macs += hw * cin * cout
        elif kind == "attn":
            macs += transformer_macs(cin, side(level) ** 2)
        elif kind == "down":
            macs += side(level + 1) ** 2 * 9 * cin * cout
        elif kind == "up":
            macs += side(level - 1) ** 2 * 9 * cin * cout
    return 2.0 * macs


def reference_flops(
    shape: UNetShape,
    latent_size: int = PAPER_LATENT_SIZE,
    context_tokens: int = PAPER_CONTEXT_TOKENS,
) -> float:
    """FLOPs of the c = 320 model with otherwise identical settings: the paper's cost unit."""
    ref = UNetShape(**{**_shape_kwargs(shape), "base_channels": REFERENCE_WIDTH})
    return forward_flops(ref, latent_size, context_tokens)


def normalized_cost(
    shape: UNetShape,
    latent_size: int = PAPER_LATENT_SIZE,
    context_tokens: int = PAPER_CONTEXT_TOKENS,
) -> float:
    """Cost of one forward pass relative to the c = 320 model (the paper's 'normalized cost')."""
    return forward_flops(shape, latent_size, context_tokens) / reference_flops(
        shape, latent_size, context_tokens
    )


def _shape_kwargs(shape: UNetShape) -> dict:
    return {
        "base_channels": shape.base_channels,
        "context_dim": shape.context_dim,
        "channel_mult": shape.channel_mult,
        "num_res_blocks": shape.num_res_blocks,
        "attention_levels": shape.attention_levels,
        "num_heads": shape.num_heads,
        "in_channels": shape.in_channels,
        "out_channels": shape.out_channels,
        "norm_groups": shape.norm_groups,
        "transformer_depth": shape.transformer_depth,
    }


def format_params(n: int) -> str:
    """Round a parameter count the way Table 1 prints it: millions below 1B, else billions."""
    if n >= 1_000_000_000:
        return f"{round(n / 1e9)}B"
    return f"{round(n / 1e6)}M"


@dataclass(frozen=True)
class SizeRow:
    width: int
    params: int
    gflops: float
    normalized_cost: float


def size_table(
    widths: tuple[int, ...] | list[int] = PAPER_WIDTHS,
    context_dim: int = PAPER_CONTEXT_DIM,
    latent_size: int = PAPER_LATENT_SIZE,
    **shape_kwargs,
) -> list[SizeRow]:
    """The rows `ladder sizes` prints."""
    rows = []
    for w in widths:
        shape = UNetShape(base_channels=w, context_dim=context_dim, **shape_kwargs)
        rows.append(
            SizeRow(
                width=w,
                params=param_count(shape),
                gflops=forward_flops(shape, latent_size) / 1e9,
                normalized_cost=normalized_cost(shape, latent_size),
            )
        )
    return rows
