"""The machinery every trainlab optimizer shares: groups, lazy state, batching, tiles.

The notes (000 §7.2.5) observe that every rule of §7.2 has one shape,

    Δθ_t = −α_t / √(G_t + ε) ⊙ M_t,    G_t = ψ(g_1, ..., g_t),    M_t = φ(g_1, ..., g_t)

— "learning rate × gradient estimate ÷ accumulated square". So an optimizer here says only
how it updates its statistics M and G and then θ, written once over a *list* of tensors
with ``torch._foreach_*`` ops. :class:`MultiTensorOptimizer` does the rest once for all:

1. collects the parameters of a group that have a gradient (``grad is None`` is skipped) and
   creates their state lazily (a ``step`` counter, buffers on first use);
2. batches them by device and dtype, and increments ``step``;
3. offers the batch to a fused torch kernel when the subclass has one and the options match
   (``_fused``); otherwise
4. cuts the batch into *tiles* of about ``TILE_BYTES`` of parameters, prepares the gradient
   (sign for ``maximize``, the weight-decay term) and calls the subclass's ``_update`` on each.

Why tiles: on a CPU, one foreach op over all parameters streams every buffer through memory
once per op (an update is ~8 ops), while the per-tensor loop of torch keeps one tensor in
cache across its ops. A tile is small enough to stay in cache across the ops and large enough
that Python's per-op cost is paid once per many small tensors.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

Tensors = list[Tensor] | tuple[Tensor, ...]  # what torch._foreach_* take and return

# Parameters per tile. A tile's working set is ~4-6 buffers of this size (param, grad, two
# statistics, temporaries): 256 KiB keeps it in a 1-2 MiB per-core L2 cache.
TILE_BYTES = 256 * 1024


@dataclass
class ParamBatch:
    """Aligned lists: the parameters, their gradients, their state dicts and step counts."""

    params: list[Tensor]
    grads: list[Tensor]
    states: list[dict[str, Any]]
    steps: list[float]  # t of each parameter, this step included (empty if not counted)

    def buffer(self, name: str, fill: float = 0.0) -> list[Tensor]:
        """The state buffer ``name`` of each parameter, created as ``fill`` on first use."""
        out = []
        for p, state in zip(self.params, self.states):
            buf = state.get(name)
            if buf is None:
                buf = state[name] = torch.full_like(p, fill, memory_format=torch.preserve_format)
            out.append(buf)
        return out

    def step_tensors(self) -> list[Tensor]:
        return [state["step"] for state in self.states]

    def tiles(self, max_bytes: int) -> Iterator[ParamBatch]:
        """Consecutive runs of parameters holding about ``max_bytes`` each."""
        start, size = 0, 0
        for i, p in enumerate(self.params):
            size += p.numel() * p.element_size()
            if size >= max_bytes or i == len(self.params) - 1:
                yield self[start : i + 1]
                start, size = i + 1, 0

    def __getitem__(self, index: slice) -> ParamBatch:
        return ParamBatch(self.params[index], self.grads[index], self.states[index], self.steps[index])


def _no_dynamo_import(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of ``torch.optim.Optimizer`` without the import of ``torch._dynamo`` it costs.

    torch wraps ``add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` in
    ``torch._disable_dynamo``, whose first call imports ``torch._dynamo`` (2-4 s, the largest part
    of a short run's start-up). Until something has imported it (``torch.compile`` does), nothing
    is being traced, so the unwrapped method is the same call; after that, the wrapped one runs.
    """
    plain = getattr(method, "__wrapped__", method)

    @functools.wraps(plain)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return (method if "torch._dynamo" in sys.modules else plain)(self, *args, **kwargs)

    return call


class MultiTensorOptimizer(torch.optim.Optimizer):
    """Base of every trainlab optimizer; a subclass implements ``_check`` and ``_update``.

    Class attributes a subclass sets:
      ``_counts_steps``       keep a per-parameter ``step`` tensor (torch's state layout).
      ``_needs_step_values``  read the step counts into ``ParamBatch.steps`` (bias corrections).
    """

    _counts_steps: ClassVar[bool] = True
    _needs_step_values: ClassVar[bool] = False

    zero_grad = _no_dynamo_import(torch.optim.Optimizer.zero_grad)
    state_dict = _no_dynamo_import(torch.optim.Optimizer.state_dict)
    load_state_dict = _no_dynamo_import(torch.optim.Optimizer.load_state_dict)
    _torch_add_param_group = _no_dynamo_import(torch.optim.Optimizer.add_param_group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self._torch_add_param_group(param_group)  # fills in the defaults, then we check the result
        group = self.param_groups[-1]
        try:
            if any(p.is_complex() for p in group["params"]):
                raise ValueError("complex parameters are not supported; optimize torch.view_as_real(p) instead")
            self._check(group)
        except ValueError:
            self.param_groups.pop()  # a rejected group must not stay behind
            raise

    # --- what a subclass writes -------------------------------------------------------

    def _check(self, group: dict[str, Any]) -> None:
        """Raise ValueError naming any hyperparameter of ``group`` that is out of range."""
        raise NotImplementedError

    def _update(self, group: dict[str, Any], tile: ParamBatch) -> None:
        """Apply one step to ``tile`` (its ``grads`` already prepared) with foreach ops."""
        raise NotImplementedError

    def _fused(self, group: dict[str, Any], batch: ParamBatch) -> bool:
        """Step ``batch`` (raw grads) with one of torch's fused kernels; False if none applies."""
        return False

    def _fused_matches(self, group: dict[str, Any]) -> bool:
        """Whether torch's fused kernel computes exactly this group's rule (see ``fused=``)."""
        return False

    def _check_fused(self, group: dict[str, Any]) -> None:
        """``fused=None`` uses torch's kernel when the options match; True insists; False never."""
        fused = group["fused"]
        if fused is not None and not isinstance(fused, bool):
            raise ValueError(f"fused must be None, True or False, got {fused!r}")
        if fused and not self._fused_matches(group):
            raise ValueError(
                f"fused=True: torch's fused {type(self).__name__} kernel does not compute these options "
                "(eps_inside_sqrt=True has no fused kernel); use fused=None"
            )

    def _use_fused(self, group: dict[str, Any], batch: ParamBatch) -> bool:
        return group["fused"] is not False and self._fused_matches(group) and fused_supported(batch)

    def _decoupled_decay(self, group: dict[str, Any]) -> bool:
        """True: weight decay shrinks θ directly (AdamW); False: it is L2 added to the gradient."""
        return False

    # --- the shared step --------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            members = _is_member_group(group)
            for batch in self._batches(group):
                if self._counts_steps:
                    torch._foreach_add_(batch.step_tensors(), 1.0)
                if members:
                    self._step_members(group, batch)
                    continue
                if self._fused(group, batch):
                    continue
                if self._needs_step_values:
                    batch.steps = torch.stack(batch.step_tensors()).tolist()
                for tile in batch.tiles(TILE_BYTES):
                    tile.grads = self._prepare_grads(group, tile)
                    self._update(group, tile)
        return loss

    def _step_members(self, group: dict[str, Any], batch: ParamBatch) -> None:
        """A group with per-member ``[K]`` hyperparameters on stacked parameters
        (:mod:`trainlab.optim.members`): the same rule, member k with its own values."""
        from trainlab.optim.members import prepare_grad, rule_for

        rule = rule_for(self)
        for p, g, state in zip(batch.params, batch.grads, batch.states):
            t = float(state["step"]) if "step" in state else 0.0
            rule(group, p, prepare_grad(group, p, g, self._decoupled_decay(group)), state, t)

    def _batches(self, group: dict[str, Any]) -> Iterator[ParamBatch]:
        """The group's parameters with a gradient, one batch per (device, dtype)."""
        batches: dict[tuple[torch.device, torch.dtype], ParamBatch] = {}
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self.state[p]
            if self._counts_steps and "step" not in state:
                # float32 on the parameter's device: the layout torch's fused kernels read
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            batch = batches.setdefault((p.device, p.dtype), ParamBatch([], [], [], []))
            batch.params.append(p)
            batch.grads.append(grad)
            batch.states.append(state)
        return iter(batches.values())

    def _prepare_grads(self, group: dict[str, Any], tile: ParamBatch) -> list[Tensor]:
        """g for the update rule: negated for ``maximize``, plus λθ for L2 weight decay.

        The user's ``.grad`` is never modified. Decoupled decay (AdamW) is applied here too,
        as θ ← (1 − αλ)θ before the rule's own update, which is where torch applies it.
        """
        grads = tile.grads
        if group["maximize"]:
            grads = list(torch._foreach_neg(grads))
        decay = group.get("weight_decay", 0.0)
        if decay != 0:
            if self._decoupled_decay(group):
                torch._foreach_mul_(tile.params, 1.0 - group["lr"] * decay)
            elif group["maximize"]:  # grads is already a private copy
                torch._foreach_add_(grads, tile.params, alpha=decay)
            else:
                grads = list(torch._foreach_add(grads, tile.params, alpha=decay))
        return grads


def _is_member_group(group: dict[str, Any]) -> bool:
    """A tensor hyperparameter (one value per member) makes a group a population's."""
    return any(
        isinstance(v, Tensor) or (isinstance(v, tuple) and any(isinstance(x, Tensor) for x in v))
        for k, v in group.items()
        if k != "params"
    )


def fused_supported(batch: ParamBatch) -> bool:
    """torch's fused optimizer kernels exist for floating-point tensors on CPU and CUDA."""
    p = batch.params[0]
    return p.device.type in ("cpu", "cuda") and p.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def root_with_eps(
    stats: Tensors, eps: float, eps_inside_sqrt: bool, divisors: list[float] | None = None, *, in_place: bool = False
) -> Tensors:
    """The denominator of the unified rule, over a list: √(G/d) + ε, or √(G/d + ε) if inside.

    ``eps_inside_sqrt=False`` is torch's and the papers' placement (Kingma & Ba; Duchi et al.);
    ``True`` is the notes' −α/√(G + ε) (000 §7.2.3-§7.2.5). ``divisors`` d are per-tensor bias
    corrections (1 − β₂ᵗ); ``in_place`` overwrites ``stats`` when it is already a temporary.
    The op order is torch's, so the default placement reproduces torch's bits.
    """
    if eps_inside_sqrt:
        if divisors is None:
            out = _foreach("add", stats, eps, in_place=in_place)
        else:
            out = _foreach("div", stats, divisors, in_place=in_place)
            torch._foreach_add_(out, eps)
        torch._foreach_sqrt_(out)
        return out
    out = _foreach("sqrt", stats, in_place=in_place)
    if divisors is not None:
        torch._foreach_div_(out, [d**0.5 for d in divisors])
    torch._foreach_add_(out, eps)
    return out


def _foreach(op: str, tensors: Tensors, *args: Any, in_place: bool) -> Tensors:
    """``torch._foreach_<op>_`` on ``tensors`` (returned), or ``torch._foreach_<op>`` into new ones."""
    if in_place:
        getattr(torch, f"_foreach_{op}_")(tensors, *args)
        return tensors
    return getattr(torch, f"_foreach_{op}")(tensors, *args)
