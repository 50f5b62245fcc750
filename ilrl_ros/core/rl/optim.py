"""How parameters move: optimizers, gradient clipping, schedules and target-network updates.

Two optimizers: ``adam`` (``torch.optim.Adam``, fused where it can be; the off-policy
algorithms) and ``Optimizer`` (torch's functional Adam and RMSprop without
``torch.optim.Optimizer``; the on-policy ones, whose runs are short enough for its import
cost to matter).
"""

import torch
from torch.optim.adam import adam as functional_adam
from torch.optim.rmsprop import rmsprop as functional_rmsprop


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with its fused kernel where this PyTorch has one for the device (one call a step)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


class Optimizer:
    """Adam or RMSprop over a list of parameters, through torch's functional updates.

    The same arithmetic as ``torch.optim.Adam`` / ``RMSprop`` (fused Adam where the build
    has it), without ``torch.optim.Optimizer``, whose first construction in a process
    imports TorchDynamo: seconds on a small CPU, a large part of a short training run.
    ``lr`` may be changed between steps.
    """

    def __init__(self, params, lr: float, kind: str = 'adam', eps: float = 1e-5,
                 betas=(0.9, 0.999), alpha: float = 0.99):
        if kind not in ('adam', 'rmsprop'):
            raise ValueError(f'optimizer {kind!r} is not known; expected adam or rmsprop')
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.kind, self.eps, self.betas, self.alpha = lr, kind, eps, betas, alpha
        self.first = [torch.zeros_like(p) for p in self.params]
        self.second = [torch.zeros_like(p) for p in self.params]
        # On each parameter's device: the fused kernel reads the step count there.
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device)
                      for p in self.params]
        self.fused = kind == 'adam' and hasattr(torch, '_fused_adam_')

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        params = [p for p in self.params if p.grad is not None]
        if len(params) != len(self.params):
            raise RuntimeError('every optimised parameter needs a gradient before step()')
        grads = [p.grad for p in params]
        if self.kind == 'adam':
            functional_adam(params, grads, self.first, self.second, [], self.steps,
                            fused=self.fused or None, foreach=None if self.fused else True,
                            amsgrad=False, beta1=self.betas[0], beta2=self.betas[1],
                            lr=self.lr, weight_decay=0.0, eps=self.eps, maximize=False)
        else:
            functional_rmsprop(params, grads, self.second, [], [], self.steps, foreach=True,
                               lr=self.lr, alpha=self.alpha, eps=self.eps, weight_decay=0.0,
                               momentum=0.0, centered=False)


def clip_grad_norm(params: list, max_norm: float) -> torch.Tensor:
    """Scale the gradients so that their global norm is at most ``max_norm``; the norm.

    What ``torch.nn.utils.clip_grad_norm_`` does, in four tensor operations instead of its
    general bookkeeping (a fifth of a small PPO step).
    """
    grads = [p.grad for p in params]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (max_norm / (norm + 1e-6)).clamp_(max=1.0))
    return norm


def schedule(start: float, kind: str, progress_remaining: float) -> float:
    """A hyperparameter at 'constant' or 'linear' (decays to 0, the zoo's ``lin_``) schedule."""
    if kind == 'constant':
        return start
    if kind == 'linear':
        return start * progress_remaining
    raise ValueError(f'schedule {kind!r} is not known; expected constant or linear')


def polyak_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    """Move target towards source: target <- (1 - tau) target + tau source."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1.0 - tau).add_(s, alpha=tau)
