"""Sampling MPC on a learned dynamics ensemble: what a model-based checkpoint runs.

``DynamicsEnsemble`` predicts the next observation; ``plan`` (random shooting or the
cross-entropy method, as in Nagabandi et al., ICRA 2018, and Chua et al. (PETS), NeurIPS
2018) searches action sequences scored with a known reward, named from
``REWARD_FUNCTIONS`` so that a checkpoint names it without carrying code. ``MPCPolicy``
plans in ``forward``, so the policy node runs it like any other network. Training the
ensemble is in ``core/algorithms/mbrl.py``.
"""

from dataclasses import asdict, dataclass
import math
import zlib

import numpy as np
import torch
from torch import nn

from ilrl_ros.core.data import Normalizer
from ilrl_ros.core.networks.mlp import ACTIVATIONS


def pendulum_reward(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1's reward of taking ``action`` in ``obs`` = [cos, sin, theta_dot], any batch.

    -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2) with theta = atan2(sin, cos) in [-pi, pi];
    atan2 ignores the radius, so a model's (cos, sin) need not stay on the unit circle.
    """
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    return -(theta ** 2 + 0.1 * obs[..., 2] ** 2 + 0.001 * action[..., 0] ** 2)


# Known rewards by name, with the observation and action sizes they read. Fixed in code:
# a checkpoint names a reward, it never supplies one.
REWARD_FUNCTIONS = {
    'pendulum': (pendulum_reward, 3, 1),
}
PLANNERS = ('cem', 'random_shooting')
PROPAGATIONS = ('each', 'random')


@dataclass
class PlannerConfig:
    """Sampling MPC settings; a ``MPCPolicy`` stores them in its description."""

    method: str = 'cem'
    """'cem' (cross-entropy method) or 'random_shooting' (uniform sequences, keep the best)."""
    horizon: int = 15
    """Planning horizon H in control steps."""
    num_candidates: int = 100
    """Action sequences N sampled per iteration (a multiple of the ensemble size)."""
    iterations: int = 4
    """CEM iterations per plan (random shooting samples once)."""
    elite_fraction: float = 0.1
    """CEM: fraction of the candidates, by return, that refit the distribution."""
    smoothing: float = 0.1
    """CEM: weight of the old mean/std in each refit (PETS' alpha); 0 replaces them."""
    init_std: float = 0.5
    """CEM: initial std as a fraction of the half range of the action bounds."""
    propagation: str = 'random'
    """'each': every candidate runs through every member, returns averaged (E x the work);
    'random': every candidate runs through one member for its whole horizon (PETS' TS-inf)."""
    seed: int = 0
    """Seed of the sampling noise; each plan reseeds from it and the observation's bytes."""


def check_planner(config: PlannerConfig, ensemble_size: int = 1) -> None:
    """Raise a ValueError naming the first planner setting that cannot work."""
    if config.method not in PLANNERS:
        raise ValueError(f'planner method {config.method!r} is not one of {PLANNERS}')
    if config.propagation not in PROPAGATIONS:
        raise ValueError(f'planner propagation {config.propagation!r} is not one of '
                         f'{PROPAGATIONS}')
    if config.horizon < 1 or config.iterations < 1 or config.num_candidates < 2:
        raise ValueError(f'planner needs horizon >= 1, iterations >= 1 and num_candidates >= 2;'
                         f' got {config.horizon}, {config.iterations} and '
                         f'{config.num_candidates}')
    if not 0.0 < config.elite_fraction <= 1.0 or not 0.0 <= config.smoothing < 1.0 \
            or config.init_std <= 0.0:
        raise ValueError(f'planner elite_fraction must be in (0, 1], smoothing in [0, 1) and '
                         f'init_std positive; got {config.elite_fraction}, {config.smoothing} '
                         f'and {config.init_std}')
    if config.num_candidates % ensemble_size:
        raise ValueError(f'planner num_candidates ({config.num_candidates}) must be a multiple '
                         f'of the ensemble size ({ensemble_size}) so that every member '
                         'propagates as many candidates')


def random_shooting(score, low: torch.Tensor, high: torch.Tensor, batch: int, horizon: int,
                    num_candidates: int, generator: torch.Generator) -> tuple:
    """Sample uniform action sequences within [low, high]; return the best of each batch row.

    ``score(actions [B, N, H, act_dim]) -> returns [B, N]``. Returns (best sequence
    [B, H, act_dim], its return [B]).
    """
    # Drawn from the CPU generator and moved: the same candidates on any device.
    u = torch.rand(batch, num_candidates, horizon, low.shape[-1], generator=generator
                   ).to(low.device)
    actions = low + u * (high - low)
    returns = score(actions)
    best = returns.argmax(dim=1)
    rows = torch.arange(batch, device=low.device)
    return actions[rows, best], returns[rows, best]


def cem(score, mean: torch.Tensor, std: torch.Tensor, low: torch.Tensor, high: torch.Tensor,
        num_candidates: int, iterations: int, elite_fraction: float, smoothing: float,
        generator: torch.Generator) -> tuple:
    """Cross-entropy method over action sequences (Rubinstein 1999; as used in PETS).

    Each iteration samples N sequences from N(mean, std) clipped to the bounds, keeps the
    best ``elite_fraction`` by ``score(actions [B, N, H, act_dim]) -> [B, N]`` and moves
    mean and std towards the elites' (``smoothing`` keeps that much of the old ones).
    Returns (mean [B, H, act_dim], the best sampled return of the last iteration [B]); the
    mean, not the best sample, is the plan: it averages out the luck of single samples.
    """
    n_elite = max(2, int(round(elite_fraction * num_candidates)))
    batch, horizon, act_dim = mean.shape
    top = None
    for _ in range(iterations):
        # Drawn from the CPU generator and moved: the same samples on any device.
        noise = torch.randn(batch, num_candidates, horizon, act_dim, generator=generator
                            ).to(mean.device)
        actions = torch.minimum(torch.maximum(mean.unsqueeze(1) + std.unsqueeze(1) * noise,
                                              low), high)
        returns = score(actions)
        top, index = returns.topk(n_elite, dim=1)
        elites = actions.gather(1, index[:, :, None, None].expand(-1, -1, horizon, act_dim))
        mean = smoothing * mean + (1.0 - smoothing) * elites.mean(dim=1)
        std = smoothing * std + (1.0 - smoothing) * elites.std(dim=1)
    return mean, top[:, 0]


def trajectory_returns(step, reward, obs: torch.Tensor, actions: torch.Tensor,
                       particles: int = 1) -> torch.Tensor:
    """Mean over ``particles`` of the H-step return of each candidate sequence from ``obs``.

    ``obs`` is [B, obs_dim] and ``actions`` [B, N, H, act_dim]. ``step(obs, action) ->
    next_obs`` and ``reward(obs, action) -> r`` take any leading shape; the state propagated
    is [particles, B, N, obs_dim] (an ensemble's step gives particle p to member p). The
    reward is summed over the states s_0 .. s_{H-1} in which the actions are taken, and is
    evaluated once on the whole stacked trajectory, not step by step.
    """
    batch, n, horizon, act_dim = actions.shape
    state = obs[None, :, None, :].expand(particles, batch, n, obs.shape[-1])
    states = [state]
    for t in range(horizon - 1):
        state = step(state, actions[:, :, t].expand(particles, batch, n, act_dim))
        states.append(state)
    rewards = reward(torch.stack(states, dim=-2), actions.expand(particles, *actions.shape))
    return rewards.sum(dim=-1).mean(dim=0)


def plan(obs: torch.Tensor, step, reward, low: torch.Tensor, high: torch.Tensor,
         config: PlannerConfig, generator: torch.Generator, warm_mean: torch.Tensor = None,
         particles: int = 1) -> torch.Tensor:
    """Sampling MPC: action sequences [B, H, act_dim] that maximise the H-step return.

    ``step`` and ``reward`` are as in ``trajectory_returns``: any dynamics model works, a
    learned ensemble or the true one. CEM starts from ``warm_mean`` when given (the previous
    plan, shifted), else from the middle of the bounds; random shooting ignores it.
    """
    batch, act_dim = obs.shape[0], low.shape[-1]

    def score(actions):
        return trajectory_returns(step, reward, obs, actions, particles)

    if config.method == 'random_shooting':
        sequence, _ = random_shooting(score, low, high, batch, config.horizon,
                                      config.num_candidates, generator)
        return sequence
    shape = (batch, config.horizon, act_dim)
    mean = (0.5 * (low + high)).expand(shape) if warm_mean is None else warm_mean
    std = (config.init_std * 0.5 * (high - low)).expand(shape)
    sequence, _ = cem(score, mean, std, low, high, config.num_candidates, config.iterations,
                      config.elite_fraction, config.smoothing, generator)
    return sequence


class DynamicsEnsemble(nn.Module):
    """E MLPs, each predicting the normalised change of the observation from (obs, action).

    The members' layers are stacked into [E, in, out] weights so that one batched matrix
    product runs all of them: planning is dominated by per-operation overhead on one core,
    and a loop over members would multiply it by E. Input and output normalisation are
    buffers, so a checkpoint carries them.
    """

    def __init__(self, obs_dim: int, act_dim: int, ensemble_size: int = 5,
                 hidden=(128, 128), activation: str = 'elu'):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation {activation!r} is not one of {tuple(ACTIVATIONS)}')
        if ensemble_size < 1:
            raise ValueError(f'ensemble_size must be at least 1, got {ensemble_size}')
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.ensemble_size = int(ensemble_size)
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        sizes = [self.obs_dim + self.act_dim, *self.hidden, self.obs_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            # nn.Linear's default initialisation, per member.
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(
                torch.empty(self.ensemble_size, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(
                torch.empty(self.ensemble_size, 1, fan_out).uniform_(-bound, bound)))
        self.nonlinearity = ACTIVATIONS[activation]()
        n_in = self.obs_dim + self.act_dim
        self.register_buffer('input_mean', torch.zeros(n_in))
        self.register_buffer('input_std', torch.ones(n_in))
        self.register_buffer('delta_mean', torch.zeros(self.obs_dim))
        self.register_buffer('delta_std', torch.ones(self.obs_dim))

    def set_normalization(self, obs: np.ndarray, actions: np.ndarray,
                          next_obs: np.ndarray) -> None:
        """Fit the input and target statistics to a set of transitions."""
        inputs = Normalizer.fit(np.concatenate([obs, actions], axis=1))
        delta = Normalizer.fit(np.asarray(next_obs) - np.asarray(obs), min_std=1e-6)
        for name, value in (('input_mean', inputs.mean), ('input_std', inputs.std),
                            ('delta_mean', delta.mean), ('delta_std', delta.std)):
            getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised inputs [E, M, obs_dim + act_dim] -> normalised deltas [E, M, obs_dim]."""
        h = inputs
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = self.nonlinearity(h)
        return h

    def normalize(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return (torch.cat([obs, actions], dim=-1) - self.input_mean) / self.input_std

    def step(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Predicted next observation; any leading shape whose size is a multiple of E.

        The rows are split into E equal contiguous groups, group e going to member e; with
        a leading dimension of E that is one member per index of it.
        """
        shape = obs.shape
        x = self.normalize(obs, actions).reshape(self.ensemble_size, -1, self.input_mean.shape[0])
        delta = self(x) * self.delta_std + self.delta_mean
        return obs + delta.reshape(shape)


    def predictor(self):
        """``step`` with the normalisation folded into the first and last layers' weights.

        Same function, fewer operations per call: planning calls it H x iterations times in
        sequence, and on one core each tensor operation costs microseconds of overhead.
        """
        n = self.obs_dim
        with torch.no_grad():
            w_first = self.weights[0] / self.input_std[:, None]
            shift = (self.input_mean / self.input_std) @ self.weights[0]
            b_first = self.biases[0] - shift[:, None]
            w_obs, w_act = w_first[:, :n].contiguous(), w_first[:, n:].contiguous()
            w_last = self.weights[-1] * self.delta_std
            b_last = self.biases[-1] * self.delta_std + self.delta_mean
            middle = list(zip(self.weights[1:-1], self.biases[1:-1]))
        e, f = self.ensemble_size, self.nonlinearity

        def step(obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
            x = obs.reshape(e, -1, n)
            h = f(torch.baddbmm(torch.baddbmm(b_first, x, w_obs),
                                actions.reshape(e, -1, self.act_dim), w_act))
            for w, b in middle:
                h = f(torch.baddbmm(b, h, w))
            return (x + torch.baddbmm(b_last, h, w_last)).reshape(obs.shape)

        return step


class MPCPolicy(nn.Module):
    """Sampling MPC on a learned dynamics ensemble; ``forward(obs)`` plans and acts.

    The ensemble's weights, its normalisation and the action bounds are tensors of the
    module; the planner settings, the network shape and the reward's name are in
    ``description()``. Each plan reseeds its noise from ``planner.seed`` and the
    observation's bytes, so an observation and the previous plan (the CEM warm start: the
    last mean shifted by one step) determine the action. ``reset()`` forgets that plan.
    """

    def __init__(self, obs_dim: int, act_dim: int, reward: str = 'pendulum',
                 ensemble_size: int = 5, hidden=(128, 128), activation: str = 'elu',
                 planner=None, low=None, high=None):
        super().__init__()
        if reward not in REWARD_FUNCTIONS:
            raise ValueError(f'reward {reward!r} is not one of {tuple(REWARD_FUNCTIONS)}')
        self.reward_name = reward
        self.reward_fn, reward_obs, reward_act = REWARD_FUNCTIONS[reward]
        if (reward_obs, reward_act) != (obs_dim, act_dim):
            raise ValueError(f'reward {reward!r} reads {reward_obs} observations and '
                             f'{reward_act} actions; the policy has {obs_dim} and {act_dim}')
        self.planner = planner if isinstance(planner, PlannerConfig) else \
            PlannerConfig(**(planner or {}))
        check_planner(self.planner, ensemble_size)
        self.ensemble = DynamicsEnsemble(obs_dim, act_dim, ensemble_size, hidden, activation)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        bound = torch.ones(self.act_dim)
        self.register_buffer('action_low', -bound if low is None else
                             torch.as_tensor(np.asarray(low, dtype=np.float32)).reshape(-1))
        self.register_buffer('action_high', bound.clone() if high is None else
                             torch.as_tensor(np.asarray(high, dtype=np.float32)).reshape(-1))
        self._warm_mean = None

    def reset(self, rows=None) -> None:
        """Forget the warm start: of every row (None) or of the given batch rows."""
        if rows is None or self._warm_mean is None:
            self._warm_mean = None
            return
        # Out of place: a plan made under torch.inference_mode may not be edited outside it.
        forget = torch.zeros(self._warm_mean.shape[0], 1, 1, dtype=torch.bool,
                             device=self._warm_mean.device)
        forget[torch.as_tensor(rows, dtype=torch.long, device=forget.device)] = True
        middle = 0.5 * (self.action_low + self.action_high)
        self._warm_mean = torch.where(forget, middle, self._warm_mean)

    def generator(self, obs: torch.Tensor) -> torch.Generator:
        digest = zlib.crc32(obs.detach().cpu().numpy().tobytes())
        return torch.Generator().manual_seed((self.planner.seed * 1_000_003 + digest) % 2 ** 63)

    def plan(self, obs: torch.Tensor) -> torch.Tensor:
        """The planned action sequences [B, H, act_dim] for observations [B, obs_dim]."""
        obs = obs.to(torch.float32)
        cfg = self.planner
        warm = self._warm_mean
        if warm is not None and warm.shape[0] != obs.shape[0]:
            warm = None
        particles = self.ensemble.ensemble_size if cfg.propagation == 'each' else 1
        sequence = plan(obs, self.ensemble.predictor(), self.reward_fn, self.action_low,
                        self.action_high, cfg, self.generator(obs), warm_mean=warm,
                        particles=particles)
        if cfg.method == 'cem':
            middle = 0.5 * (self.action_low + self.action_high)
            self._warm_mean = torch.cat(
                [sequence[:, 1:], middle.expand(obs.shape[0], 1, self.act_dim)], dim=1)
        return sequence

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.plan(obs)[:, 0].clone()

    def description(self) -> dict:
        e = self.ensemble
        return {'type': 'mpc', 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
                'reward': self.reward_name, 'ensemble_size': e.ensemble_size,
                'hidden': list(e.hidden), 'activation': e.activation,
                'planner': asdict(self.planner)}

    @classmethod
    def from_description(cls, description: dict) -> 'MPCPolicy':
        planner = description['planner']
        if not isinstance(planner, dict) or set(planner) - set(PlannerConfig.__annotations__):
            raise ValueError(f'the mpc planner settings {planner!r} are not a mapping of '
                             f'{", ".join(PlannerConfig.__annotations__)}')
        return cls(obs_dim=description['obs_dim'], act_dim=description['act_dim'],
                   reward=description['reward'], ensemble_size=description['ensemble_size'],
                   hidden=description['hidden'], activation=description['activation'],
                   planner=planner)
