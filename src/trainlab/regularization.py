"""Regularization terms and targets: norm penalties, max-norm, label smoothing, distillation.

Everything here is a pure function of tensors or an in-place update of a model's weights;
the Trainer decides when to call it (``[regularize]``, ``[train] label_smoothing``, ``[distill]``).
Dropout variants live in :mod:`trainlab.nn.dropout`, augmentation in :mod:`trainlab.data.augment`.

Which parameters are penalized
------------------------------
By default only *weights* are: a parameter is left out when it is a bias (its name, or the
part after the last dot, starts with ``bias`` — ``bias``, ``bias_ih_l0``), when it belongs to a
normalization module (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, LocalResponseNorm, or
any class whose name ends in ``Norm`` and that owns no wrapped layer), when it is a weight-norm
gain (``weight_g``, ``g`` of ``trainlab.nn.WeightNorm``, or ``original0`` of
``torch.nn.utils.parametrizations.weight_norm``), or,
as a fallback that catches any other gain or offset, when it has fewer than two dimensions.
The notes give the reason (003 §正则化: "通常只对权重做惩罚而不对偏置做惩罚" — a bias controls a
single variable and adds little variance; 002: "一般不考虑bias"). ``include_bias_and_norm=True``
penalizes every parameter.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "distillation_loss",
    "l1_proximal_step_",
    "label_smoothing_targets",
    "max_norm_",
    "penalty",
    "project_lp_ball",
    "project_lp_ball_",
    "regularized_parameters",
    "smoothed_cross_entropy",
    "soft_threshold",
]

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, SyncBatchNorm
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)
_WEIGHT_NORM_GAINS = ("weight_g",)


def _is_norm_module(module: nn.Module) -> bool:
    if isinstance(module, _NORM_TYPES):
        return True
    # trainlab's own norms (LocalResponseNorm of the notes, ...) by name; a wrapper such as
    # WeightNorm(layer) holds the wrapped layer as a child and is judged per parameter instead.
    return type(module).__name__.endswith("Norm") and not any(True for _ in module.children())


def _is_weight_norm_gain(module: nn.Module, leaf: str) -> bool:
    if leaf in _WEIGHT_NORM_GAINS:
        return True
    if leaf == "g" and type(module).__name__ == "WeightNorm":  # trainlab.nn.WeightNorm (g, v)
        return True
    # torch.nn.utils.parametrizations.weight_norm stores g as original0, v as original1
    return leaf == "original0" and any(type(m).__name__ == "_WeightNorm" for m in module.children())


def _is_bias_or_norm(module: nn.Module, leaf: str, param: Tensor) -> bool:
    return leaf.startswith("bias") or _is_norm_module(module) or _is_weight_norm_gain(module, leaf) or param.dim() < 2


def _owned_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, nn.Parameter]]:
    """(full name, owning module, leaf name, parameter) for every parameter, each once."""
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for leaf, param in module.named_parameters(recurse=False):
            if id(param) in seen:  # tied weights are penalized once
                continue
            seen.add(id(param))
            yield (f"{module_name}.{leaf}" if module_name else leaf), module, leaf, param


def regularized_parameters(model: nn.Module, include_bias_and_norm: bool = False) -> list[tuple[str, nn.Parameter]]:
    """The ``(name, parameter)`` pairs that :func:`penalty` and :func:`max_norm_` act on.

    The rule is in the module docstring: weights only unless ``include_bias_and_norm``.
    Frozen parameters (``requires_grad=False``) are left out.
    """
    return [
        (name, p)
        for name, module, leaf, p in _owned_parameters(model)
        if p.requires_grad and (include_bias_and_norm or not _is_bias_or_norm(module, leaf, p))
    ]


def _check_nonnegative(name: str, value: float) -> None:
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def penalty(model: nn.Module, l1: float = 0.0, l2: float = 0.0, include_bias_and_norm: bool = False) -> Tensor:
    r"""Elastic-net penalty ``l1 * sum|w| + (l2 / 2) * sum w**2`` over the regularized weights.

    A scalar to add to the (batch-mean) loss. Source: notes 000 §7.7.1 (``λ ℓ_p(θ)``, elastic
    net = both), 002 §正则化 (``L' = L + ½ λ ||θ||²``, gradient ``∇L + λθ``), 003 §参数范数惩罚
    (``α||w||_1`` with gradient ``α sign(w)``; ``Ω = ½||w||²``); Zou & Hastie (2005) for the
    elastic net.

    L2 carries the ½, so its gradient is exactly ``l2 * w``. Hence ``penalty(model, l2=λ)``
    added to the loss gives the *same updates* as ``torch.optim.SGD(..., weight_decay=λ)`` (any
    momentum or Nesterov) or ``torch.optim.Adam(..., weight_decay=λ)``: both add
    ``weight_decay * w`` to the gradient.
    The notes' decoupled form ``θ ← (1 − β) θ − α g`` (000 §7.7.2; AdamW's
    ``weight_decay``) equals it for plain SGD without momentum when ``β = lr · λ``; with momentum
    or with adaptive optimizers (Adam, RMSprop, AdaGrad) the two differ, because the L2
    gradient is rescaled by the per-parameter step size while decoupled decay is not
    (Loshchilov & Hutter 2019).

    Conventions elsewhere: Keras ``regularizers.L2(l)`` is ``l * sum w**2`` (no ½: Keras
    ``l`` = our ``l2 / 2``); notes 001 write ``(1/m) (λ/2) Σ W²`` next to a cross-entropy that is
    already averaged, so their λ equals ``m * l2`` for a batch of m samples.

    Example::

        loss = F.cross_entropy(model(x), y) + penalty(model, l1=1e-5, l2=1e-4)
    """
    _check_nonnegative("l1", l1)
    _check_nonnegative("l2", l2)
    params = [p for _, p in regularized_parameters(model, include_bias_and_norm)]
    total = torch.zeros((), device=params[0].device if params else None)
    if not params or (l1 == 0 and l2 == 0):
        return total
    if l1:
        total = total + l1 * sum(p.abs().sum() for p in params)
    if l2:
        total = total + 0.5 * l2 * sum(p.pow(2).sum() for p in params)
    return total


def soft_threshold(w: Tensor, threshold: float | Tensor) -> Tensor:
    r"""``sign(w) * max(|w| - threshold, 0)``: the proximal operator of ``threshold * |w|``.

    Notes 003 §L1参数正则化: with a diagonal Hessian H the L1-regularized quadratic is
    minimized by ``w_i = sign(w*_i) max(|w*_i| − α / H_ii, 0)``, i.e. this with
    ``threshold = α / H_ii`` applied to the unregularized optimum ``w*``.
    """
    return torch.sign(w) * torch.clamp(w.abs() - threshold, min=0)


@torch.no_grad()
def l1_proximal_step_(model: nn.Module, threshold: float, include_bias_and_norm: bool = False) -> None:
    """Soft-threshold the regularized weights in place (proximal gradient / ISTA step).

    Call after ``optimizer.step()`` on the *unpenalized* loss with ``threshold = lr * l1``
    (plain SGD): the pair is one proximal-gradient step on ``loss + l1 * sum|w|`` and, unlike
    the subgradient ``l1 * sign(w)`` of :func:`penalty`, it sets weights *exactly* to zero
    (Beck & Teboulle 2009; the notes' 003 soft-threshold formula).
    """
    _check_nonnegative("threshold", threshold)
    for _, p in regularized_parameters(model, include_bias_and_norm):
        p.copy_(soft_threshold(p, threshold))


def _output_dim(module: nn.Module, leaf: str) -> int:
    # ConvTranspose weights are (in, out / groups, *kernel): output units run along dim 1
    return 1 if leaf == "weight" and isinstance(module, nn.modules.conv._ConvTransposeNd) else 0


@torch.no_grad()
def max_norm_(model: nn.Module, max_norm: float, include_bias_and_norm: bool = False) -> None:
    r"""Rescale each output unit's incoming weight vector whose L2 norm exceeds ``max_norm``.

    ``w_i ← w_i * min(1, c / ||w_i||_2)`` after every optimizer step (Srivastava et al. 2014
    §5.1, "max-norm regularization", typical c in [3, 4] with dropout). A row is everything
    feeding output unit i: ``weight[i]`` of Linear/Conv (``weight[:, i]`` of ConvTranspose),
    a row of ``weight_ih``/``weight_hh`` of an RNN, an embedding vector. With
    ``include_bias_and_norm=True`` the unit's bias joins its row (the paper treats the bias as a
    weight from a constant input) and 1-D parameters without a weight (gains) are clamped per
    element. torch's ``Embedding(max_norm=)`` does the same for embeddings only, lazily.

    A weight-normalized layer's row norm is its gain g, not ``||v||``: rescaling v (what the
    default does) leaves the function unchanged, so bound such layers with
    ``include_bias_and_norm=True``, which clamps each ``|g_i|`` to ``max_norm``.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    selected = {id(p) for _, p in regularized_parameters(model, include_bias_and_norm)}
    for module in model.modules():
        own = {k: p for k, p in module.named_parameters(recurse=False) if id(p) in selected}
        joined: set[str] = set()  # biases already rescaled with their weight's rows
        for leaf, w in own.items():
            if leaf.startswith("bias"):
                continue
            dim = _output_dim(module, leaf)
            bias_leaf = "bias" + leaf[len("weight") :] if leaf.startswith("weight") else ""
            bias = own.get(bias_leaf)
            if bias is not None and bias.dim() == 1 and w.dim() >= 1 and bias.shape[0] == w.shape[dim]:
                joined.add(bias_leaf)
            else:
                bias = None
            _renorm_rows_(w, dim, bias, max_norm)
        for leaf, b in own.items():
            if leaf.startswith("bias") and leaf not in joined:
                _renorm_rows_(b, 0, None, max_norm)


LP_NORMS = (1.0, 2.0, float("inf"))  # the balls with an exact projection here


def project_lp_ball(v: Tensor, p: float, radius: float) -> Tensor:
    r"""The Euclidean projection of the vector ``v`` onto the ball ``{u : ||u||_p <= radius}``.

    ``argmin_u ||u − v||_2 s.t. ||u||_p ≤ c`` — the step that makes projected gradient
    descent solve the notes' constrained form (000 §7.7.1: ``min_θ (1/N) Σ L(y, f(x; θ))
    s.t. ℓ_p(θ) ≤ 1``; c in general). Exact for:

    - p = 2: ``v · min(1, c / ||v||_2)`` (a rescaling, as max-norm does per unit);
    - p = ∞: ``clamp(v, −c, c)`` elementwise;
    - p = 1: soft thresholding ``sign(v) max(|v| − τ, 0)`` with the τ ≥ 0 that puts the
      result on the ball's surface, found by sorting |v| (Duchi, Shalev-Shwartz, Singer &
      Chandra 2008, Fig. 1): with μ = |v| sorted descending, ρ = max{j : μ_j − (Σ_{i≤j} μ_i − c)/j > 0},
      τ = (Σ_{i≤ρ} μ_i − c)/ρ. Like the L1 penalty, it sets small weights exactly to zero.

    A ``v`` already inside the ball is returned unchanged.
    """
    if p not in LP_NORMS:
        raise ValueError(f"p must be one of 1, 2, inf (the balls with an exact projection), got {p!r}")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    if p == float("inf"):
        return v.clamp(-radius, radius)
    norm = torch.linalg.vector_norm(v, ord=p)
    if norm <= radius:
        return v
    if p == 2.0:
        return v * (radius / norm)
    mu = v.abs().flatten().sort(descending=True).values
    cumulative = mu.cumsum(0)
    j = torch.arange(1, mu.numel() + 1, dtype=mu.dtype, device=mu.device)
    rho = int(torch.nonzero(mu - (cumulative - radius) / j > 0).max()) + 1
    tau = (cumulative[rho - 1] - radius) / rho
    return soft_threshold(v, tau)


@torch.no_grad()
def project_lp_ball_(model: nn.Module, p: float, radius: float, include_bias_and_norm: bool = False) -> None:
    """Project the model's regularized weights, as one vector θ, onto ``ℓ_p(θ) ≤ radius`` in place.

    Called after every optimizer step (``[regularize] norm_bound = c``, ``norm_bound_p = p``)
    it turns the training into projected (stochastic) gradient descent on the constrained
    problem of the notes (000 §7.7.1), the hard-constraint form of the ``λ ℓ_p(θ)`` penalty.
    Unlike :func:`max_norm_`, which bounds each unit's incoming weights separately, this
    bounds the norm of all of them together. See :func:`project_lp_ball`.
    """
    params = [w for _, w in regularized_parameters(model, include_bias_and_norm)]
    if not params:
        return
    flat = torch.cat([w.flatten() for w in params])
    projected = project_lp_ball(flat, p, radius)
    if projected is flat:
        return
    offset = 0
    for w in params:
        w.copy_(projected[offset : offset + w.numel()].view_as(w))
        offset += w.numel()


def _renorm_rows_(w: Tensor, dim: int, bias: Tensor | None, max_norm: float) -> None:
    if w.dim() == 0:
        w.clamp_(-max_norm, max_norm)
        return
    rows = w.movedim(dim, 0).reshape(w.shape[dim], -1)
    sq = rows.pow(2).sum(1)
    if bias is not None:
        sq = sq + bias.pow(2)
    # rows with norm <= max_norm get scale 1; clamp_min avoids 0/0 for an all-zero row
    scale = torch.clamp(max_norm / sq.sqrt().clamp_min(torch.finfo(sq.dtype).tiny), max=1.0)
    shape = [1] * w.dim()
    shape[dim] = -1
    w.mul_(scale.view(shape))
    if bias is not None:
        bias.mul_(scale)


def _check_classes(y: Tensor, num_classes: int) -> None:
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"y must hold integer class indices, got dtype {y.dtype}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"y must lie in [0, {num_classes - 1}], got values in [{int(y.min())}, {int(y.max())}]")


_STYLES = ("notes", "uniform")


def label_smoothing_targets(
    y: Tensor, num_classes: int, eps: float, style: str = "notes", dtype: torch.dtype | None = None
) -> Tensor:
    r"""Soft targets of shape ``(*y.shape, num_classes)`` in ``dtype`` (default: torch's default
    float dtype; pass the logits' dtype, as :func:`smoothed_cross_entropy` does); every row sums to 1.

    - ``style="notes"`` (notes 000 §7.7.6): ``1 − ε`` on the true class and ``ε / (K − 1)`` on
      each of the K − 1 others.
    - ``style="uniform"`` (Szegedy et al. 2016 §7; ``torch.nn.functional.cross_entropy(...,
      label_smoothing=ε)``, Keras ``label_smoothing``): ``(1 − ε) one_hot + ε / K``, i.e.
      ``1 − ε + ε/K`` on the true class and ``ε / K`` elsewhere.

    The two agree after renaming ``ε_uniform = ε_notes * K / (K − 1)``. The notes call the
    smoothing "random noise"; it is deterministic (see docs/regularization.md, errata).
    """
    if style not in _STYLES:
        raise ValueError(f"style must be one of {_STYLES}, got {style!r}")
    if not 0 <= eps <= 1:
        raise ValueError(f"eps must be in [0, 1], got {eps!r}")
    _check_classes(y, num_classes)
    # Computed in the target dtype: float32 targets cast up to float64 would carry float32's
    # rounding of ε/(K − 1) into a float64 loss.
    one_hot = F.one_hot(y.long(), num_classes).to(dtype or torch.get_default_dtype())
    if style == "notes":
        off = eps / (num_classes - 1)
        return one_hot * (1 - eps - off) + off
    return one_hot * (1 - eps) + eps / num_classes


def smoothed_cross_entropy(logits: Tensor, y: Tensor, eps: float, style: str = "notes") -> Tensor:
    """Batch mean of ``-sum_k ỹ_k log softmax(logits)_k`` with ỹ from :func:`label_smoothing_targets`.

    ``style="uniform"`` equals ``F.cross_entropy(logits, y, label_smoothing=eps)``.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (batch, classes), got shape {tuple(logits.shape)}")
    targets = label_smoothing_targets(y, logits.shape[1], eps, style, dtype=logits.dtype)
    return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor | None,
    temperature: float,
    alpha: float,
) -> Tensor:
    r"""Knowledge distillation (Hinton, Vinyals & Dean 2015; notes 000 §7.7.6).

    ``alpha * T² * KL(p_T || q_T) + (1 − alpha) * CE(student_logits, targets)``, batch means,
    with ``p_T = softmax(teacher / T)`` the soft targets and ``q_T = softmax(student / T)``.
    **alpha weights the soft (teacher) term**; ``targets`` may be ``None`` only when
    ``alpha == 1``. The teacher is detached.

    The soft term's gradient w.r.t. a student logit is ``T (q_T,i − p_T,i)`` per sample: without
    the T² factor it would be ``(q − p) / T``, which for large T and zero-mean logits is about
    ``(z_i − v_i) / (K T²)`` (Hinton eq. 3 with K classes) — the T² keeps the soft term's weight
    relative to the hard one unchanged when T is tuned. Hinton write the soft term as the
    cross-entropy ``H(p_T, q_T)``; KL differs by the teacher entropy, a constant in the student,
    so gradients are identical and the loss is 0 when the student matches the teacher.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if student_logits.shape != teacher_logits.shape or student_logits.dim() != 2:
        raise ValueError(
            f"student_logits and teacher_logits must both be (batch, classes), got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    t = temperature
    log_q = F.log_softmax(student_logits / t, dim=1)
    log_p = F.log_softmax(teacher_logits.detach() / t, dim=1)
    soft = (log_p.exp() * (log_p - log_q)).sum(1).mean() * t * t
    if alpha == 1:
        return soft
    if targets is None:
        raise ValueError(f"targets are required when alpha < 1 (alpha={alpha})")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)
