"""Spatial and temporal attention layers for SIAM.

Shape letters: N frames folded into one batch, B clips, T frames per clip, C channels,
h x w positions of a convolutional feature map, D size of a recurrent state.

Spatial attention gates every position of a frame's feature map, ``F'[i, j] = a[i, j] F[i, j]``.
SIAM's spatially-indexed attention gives every position its own parameters,
``a[i, j] = gate(w[i, j] . F[i, j] + b[i, j])`` with ``w[i, j]`` in R^C, because on aligned
faces a position always covers the same facial region. Pei et al., "Attended End-to-end
Architecture for Age Estimation from Facial Expression Videos", IEEE TIP 29 (2020),
arXiv:1711.08690, name this mechanism; the per-position formula is this repository's reading
of it. The alternatives for ablations are a shared 1x1 convolution (the same ``w``, ``b`` at
every position, as in CBAM-style modules), a content-free per-position map ``gate(b[i, j])``
and no spatial attention. Every spatial module maps features (N, C, h, w) to
(gated features (N, C, h, w), attention map (N, h, w)).

The gate is ``"sigmoid"`` (each position in (0, 1)) or ``"softmax"`` (softmax over the h*w
positions of a frame, multiplied by h*w so that a uniform map is all ones and leaves the
features unchanged).

Temporal attention scores each frame's recurrent state, ``e_t = v . tanh(W h_t + b)``, and
normalises the scores with a softmax over the valid frames only: padded frames get a score of
-inf, so their weight is exactly 0 and the pooled state does not depend on padding. Mean
pooling and the last valid state are the alternatives, and for a bidirectional LSTM the
last-state pooling joins the forward state at the last valid frame with the backward state at
the first valid frame. Every temporal module maps states (B, T, D) and a mask (B, T) to
(pooled state (B, D), frame weights (B, T)).

The attention-gated LSTM acts inside the recurrence instead. A sigmoid gate per frame,
``g_t = sigmoid(w . x_t + b)`` from the frame's feature x_t, mixes the LSTM cell's update with
the previous state, ``h_t = g_t h~_t + (1 - g_t) h_{t-1}`` and the same for the cell state.
The update has the form of the Temporal Attention-Gated Model (Pei et al., CVPR 2017), with the
gate computed from each frame's feature alone. The module maps frame features (B, T, F) and a
mask (B, T) to (final state (B, D), frame weights (B, T)).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

SpatialGate = Literal["sigmoid", "softmax"]
SPATIAL_GATES: tuple[str, ...] = ("sigmoid", "softmax")


def apply_spatial_gate(logits: Tensor, gate: SpatialGate) -> Tensor:
    """Turn attention logits (N, h, w) into an attention map (N, h, w) with the given gate."""
    if gate == "sigmoid":
        return torch.sigmoid(logits)
    if gate == "softmax":
        N, h, w = logits.shape
        weights = torch.softmax(logits.reshape(N, h * w), dim=1)  # (N, h*w)
        return weights.reshape(N, h, w) * (h * w)  # (N, h, w), mean 1 over positions
    raise ValueError(f"gate must be one of {SPATIAL_GATES}, got {gate!r}")


def _check_gate(gate: str) -> None:
    if gate not in SPATIAL_GATES:
        raise ValueError(f"gate must be one of {SPATIAL_GATES}, got {gate!r}")


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class SpatiallyIndexedAttention(nn.Module):
    """Per-position gate with separate parameters at every feature-map position.

    ``a[i, j] = gate(sum_c w[c, i, j] F[c, i, j] + b[i, j])``: a locally connected 1x1 layer,
    so changing the parameters at one position changes the gate at that position only.

    Initialisation: ``b = 0`` and ``w ~ N(0, init_std^2)`` with a small ``init_std``, so with the
    sigmoid gate every position starts close to 0.5 (features halved, which the next block's
    BatchNorm absorbs) and the map is learned from a neutral start.

    Args:
        channels: C, channels of the feature map.
        height: h, rows of the feature map.
        width: w, columns of the feature map.
        gate: ``"sigmoid"`` or ``"softmax"`` (see the module docstring).
        init_std: Standard deviation of the initial weights.

    Raises:
        ValueError: If a size is not positive, ``gate`` is unknown or ``init_std`` is negative.
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        gate: SpatialGate = "sigmoid",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        _check_positive(channels=channels, height=height, width=width)
        _check_gate(gate)
        if init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {init_std!r}")
        self.gate = gate
        self.weight = nn.Parameter(torch.randn(channels, height, width) * init_std)  # (C, h, w)
        self.bias = nn.Parameter(torch.zeros(height, width))  # (h, w)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Gate features (N, C, h, w); return (gated features (N, C, h, w), map (N, h, w))."""
        if features.shape[1:] != self.weight.shape:
            raise ValueError(
                f"features must have shape (N, {', '.join(map(str, self.weight.shape))}), "
                f"got {tuple(features.shape)}"
            )
        attn_logits = torch.einsum("nchw,chw->nhw", features, self.weight) + self.bias
        attn = apply_spatial_gate(attn_logits, self.gate)  # (N, h, w)
        return features * attn.unsqueeze(1), attn

    def extra_repr(self) -> str:
        C, h, w = self.weight.shape
        return f"channels={C}, height={h}, width={w}, gate={self.gate!r}"


class SharedSpatialAttention(nn.Module):
    """Per-position gate from a 1x1 convolution whose weights are shared by all positions.

    Initialised like :class:`SpatiallyIndexedAttention` (zero bias, small weights).

    Args:
        channels: C, channels of the feature map.
        gate: ``"sigmoid"`` or ``"softmax"``.
        init_std: Standard deviation of the initial weights.

    Raises:
        ValueError: If ``channels`` is not positive or ``gate`` is unknown.
    """

    def __init__(
        self, channels: int, gate: SpatialGate = "sigmoid", init_std: float = 0.01
    ) -> None:
        super().__init__()
        _check_positive(channels=channels)
        _check_gate(gate)
        self.gate = gate
        self.conv = nn.Conv2d(channels, 1, kernel_size=1)
        nn.init.normal_(self.conv.weight, std=init_std)
        nn.init.zeros_(self.conv.bias)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Gate features (N, C, h, w); return (gated features (N, C, h, w), map (N, h, w))."""
        attn_logits = self.conv(features).squeeze(1)  # (N, h, w)
        attn = apply_spatial_gate(attn_logits, self.gate)  # (N, h, w)
        return features * attn.unsqueeze(1), attn


class PositionalSpatialAttention(nn.Module):
    """Content-free gate ``a[i, j] = gate(b[i, j])``: one learned map shared by all frames.

    Args:
        height: h, rows of the feature map.
        width: w, columns of the feature map.
        gate: ``"sigmoid"`` or ``"softmax"``.

    Raises:
        ValueError: If a size is not positive or ``gate`` is unknown.
    """

    def __init__(self, height: int, width: int, gate: SpatialGate = "sigmoid") -> None:
        super().__init__()
        _check_positive(height=height, width=width)
        _check_gate(gate)
        self.gate = gate
        self.bias = nn.Parameter(torch.zeros(height, width))  # (h, w)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Gate features (N, C, h, w); return (gated features (N, C, h, w), map (N, h, w))."""
        N = features.shape[0]
        attn_logits = self.bias.expand(N, -1, -1)  # (N, h, w)
        attn = apply_spatial_gate(attn_logits, self.gate)  # (N, h, w)
        return features * attn.unsqueeze(1), attn


class NoSpatialAttention(nn.Module):
    """Identity in place of a spatial attention; its map is all ones."""

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Return features (N, C, h, w) unchanged and a map of ones (N, h, w)."""
        N, _, h, w = features.shape
        return features, features.new_ones(N, h, w)


def _check_mask(states: Tensor, mask: Tensor) -> None:
    if mask.dtype != torch.bool or mask.shape != states.shape[:2]:
        raise ValueError(
            f"mask must be a bool tensor of shape {tuple(states.shape[:2])}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"every clip needs at least one valid frame; clips {empty} have none")


class TemporalAttention(nn.Module):
    """Additive attention over frames, ``e_t = v . tanh(W h_t + b)``, softmax over valid frames.

    Args:
        hidden_size: D, size of each frame's state.
        attention_size: Size of the hidden layer ``W h_t + b``.

    Raises:
        ValueError: If a size is not positive.
    """

    def __init__(self, hidden_size: int, attention_size: int) -> None:
        super().__init__()
        _check_positive(hidden_size=hidden_size, attention_size=attention_size)
        self.proj = nn.Linear(hidden_size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Pool states (B, T, D) over the valid frames of mask (B, T).

        Returns:
            The pooled state (B, D) and the frame weights (B, T): exactly 0 on padded frames,
            summing to 1 over each clip's valid frames.

        Raises:
            ValueError: If the mask has the wrong shape or dtype, or a clip has no valid frame.
        """
        _check_mask(states, mask)
        scores = self.score(torch.tanh(self.proj(states))).squeeze(2)  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (B, T)
        pooled = torch.einsum("bt,btd->bd", weights, states)
        return pooled, weights


class TemporalMeanPooling(nn.Module):
    """Mean of the valid frames' states; the weights are 1 / (valid frames) on valid frames."""

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Pool states (B, T, D) over mask (B, T); return (pooled (B, D), weights (B, T))."""
        _check_mask(states, mask)
        weights = mask.to(states.dtype)  # (B, T)
        weights = weights / weights.sum(dim=1, keepdim=True)
        pooled = torch.einsum("bt,btd->bd", weights, states)
        return pooled, weights


class TemporalLastPooling(nn.Module):
    """State of the last valid frame; its weight is 1 and every other frame's weight is 0."""

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Pool states (B, T, D) over mask (B, T); return (pooled (B, D), weights (B, T))."""
        _check_mask(states, mask)
        B, T, _ = states.shape
        positions = torch.arange(T, device=mask.device).expand(B, T)  # (B, T)
        last = positions.masked_fill(~mask, -1).argmax(dim=1)  # (B,)
        weights = nn.functional.one_hot(last, T).to(states.dtype)  # (B, T)
        pooled = torch.einsum("bt,btd->bd", weights, states)
        return pooled, weights


def _first_and_last_valid(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Return the positions (B,) of each clip's first and last valid frame in mask (B, T)."""
    B, T = mask.shape
    positions = torch.arange(T, device=mask.device).expand(B, T)  # (B, T)
    first = positions.masked_fill(~mask, T).argmin(dim=1)  # (B,)
    last = positions.masked_fill(~mask, -1).argmax(dim=1)  # (B,)
    return first, last


class TemporalBidirectionalLastPooling(nn.Module):
    """Last-state pooling for a bidirectional LSTM whose states (B, T, 2D) contain both directions.

    The pooled state joins the forward half (first D entries) at the last valid frame with the
    backward half (last D entries) at the first valid frame, so each direction contributes the
    state that has read the whole clip. For a packed sequence these are the ``h_n`` of
    :class:`torch.nn.LSTM`. The first and last valid frames get weight 0.5 each (1 when they are
    the same frame) and every other frame gets 0.
    """

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Pool states (B, T, 2D) over mask (B, T) into (pooled (B, 2D), weights (B, T))."""
        _check_mask(states, mask)
        B, T, two_d = states.shape
        if two_d % 2 != 0:
            raise ValueError(
                f"states of a bidirectional LSTM must have an even size, got {two_d}"
            )
        D = two_d // 2
        first, last = _first_and_last_valid(mask)  # (B,), (B,)
        clips = torch.arange(B, device=states.device)
        forward_state = states[clips, last, :D]  # (B, D)
        backward_state = states[clips, first, D:]  # (B, D)
        pooled = torch.cat([forward_state, backward_state], dim=1)  # (B, 2D)
        weights = 0.5 * (
            nn.functional.one_hot(last, T) + nn.functional.one_hot(first, T)
        ).to(states.dtype)  # (B, T)
        return pooled, weights


class AttentionGatedLSTM(nn.Module):
    """LSTM whose state update is gated by a per-frame sigmoid of the frame's feature.

    For every frame t, ``g_t = sigmoid(w . x_t + b)``, ``(h~_t, c~_t) = LSTMCell(x_t, (h, c))``
    and ``h_t = g_t h~_t + (1 - g_t) h_{t-1}``, ``c_t = g_t c~_t + (1 - g_t) c_{t-1}``, from
    zero initial states. Padded frames get ``g_t = 0``, so they leave the state unchanged
    wherever they sit, and the final state is the state after the last valid frame.

    Initialisation: ``w ~ N(0, init_std^2)`` and ``b = logit(initial_gate)``, so every gate starts
    near ``initial_gate`` and the model starts close to a plain LSTM.

    Args:
        input_size: F, size of each frame's feature.
        hidden_size: D, LSTM state size.
        initial_gate: Gate value at initialisation, in (0, 1).
        init_std: Standard deviation of the gate's initial weights.

    Raises:
        ValueError: If a size is not positive, ``initial_gate`` is outside (0, 1) or
            ``init_std`` is negative.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        initial_gate: float = 0.9,
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        _check_positive(input_size=input_size, hidden_size=hidden_size)
        if not 0.0 < initial_gate < 1.0:
            raise ValueError(f"initial_gate must be in (0, 1), got {initial_gate!r}")
        if init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {init_std!r}")
        self.cell = nn.LSTMCell(input_size, hidden_size)
        self.gate = nn.Linear(input_size, 1)
        nn.init.normal_(self.gate.weight, std=init_std)
        nn.init.constant_(self.gate.bias, math.log(initial_gate / (1.0 - initial_gate)))

    def forward(self, features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Run the gated recurrence over features (B, T, F) with mask (B, T).

        Returns:
            The state after each clip's last valid frame (B, D), and the gates normalised to
            sum to 1 over each clip's valid frames (B, T), exactly 0 on padded frames.

        Raises:
            ValueError: If the mask has the wrong shape or dtype, or a clip has no valid frame.
        """
        _check_mask(features, mask)
        B, T, _ = features.shape
        gate_logits = self.gate(features).squeeze(2)  # (B, T)
        gates = torch.sigmoid(gate_logits).masked_fill(~mask, 0.0)  # (B, T)

        h = features.new_zeros(B, self.cell.hidden_size)  # (B, D)
        c = features.new_zeros(B, self.cell.hidden_size)  # (B, D)
        for t in range(T):
            h_update, c_update = self.cell(features[:, t], (h, c))  # (B, D), (B, D)
            g = gates[:, t].unsqueeze(1)  # (B, 1)
            h = g * h_update + (1 - g) * h
            c = g * c_update + (1 - g) * c

        # g_t / sum of g over valid frames, computed as a softmax of log g_t so that it stays
        # finite when every gate of a clip underflows to 0.
        log_gates = nn.functional.logsigmoid(gate_logits).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(log_gates, dim=1)  # (B, T)
        return h, weights

    def extra_repr(self) -> str:
        return f"input_size={self.cell.input_size}, hidden_size={self.cell.hidden_size}"
