"""Policies with memory, for tasks whose one observation does not say the state.

Two memories behind one interface (``MemoryCore``): ``stack``, the last ``history``
observations side by side (Mnih et al., "Human-level control through deep reinforcement
learning", Nature 2015, stacked four frames), and ``gru``, a gated recurrent unit (Cho et al.,
arXiv:1406.1078, 2014) whose hidden state summarises the episode so far. Both carry a state
from step to step that an episode start clears: the stack's earlier observations, the GRU's
hidden vector. ``MemoryPolicy`` (behavior cloning) and ``MemoryActorCritic`` (recurrent PPO,
``algorithms/ppo_recurrent.py``) put an MLP on the memory's features.

A deployed network keeps its state between ``forward`` calls (one row per call, the policy
node's tick) until ``reset()``; training runs whole chunks of episodes through
``sequence(...)`` without touching that state. The stack's first step of an episode is padded
with copies of its first observation (as if the robot had stood still before it), so an
implied velocity starts at zero; the GRU starts from a zero hidden state. With ``history`` 1
the stack is no memory at all: the memoryless MLP of the same size.
"""

import math

import torch
from torch import nn

from ilrl_ros.core.networks.actor_critic import gaussian_log_prob
from ilrl_ros.core.networks.mlp import _PolicyHead, ACTIVATIONS, mlp

MEMORY_KINDS = ('stack', 'gru')
MAX_HISTORY = 64
"""Observations a stack may hold."""
MAX_MEMORY_SIZE = 4096
"""Units of a GRU's hidden state."""


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f'... ({len(text)} characters)'


def check_memory(memory, history, memory_size) -> tuple:
    """Validate a memory's settings; (memory, history, memory_size) or a ValueError naming one.

    ``memory``: 'stack' or 'gru'; ``history``: observations a stack holds, 1 to
    ``MAX_HISTORY`` (a GRU ignores it); ``memory_size``: a GRU's hidden units, 1 to
    ``MAX_MEMORY_SIZE`` (a stack ignores it, but it must still be a valid number).
    """
    if not isinstance(memory, str) or memory not in MEMORY_KINDS:
        raise ValueError(f'memory must be one of {", ".join(MEMORY_KINDS)}, got '
                         f'{_shown(memory)}')
    for name, value, high in (('history', history, MAX_HISTORY),
                              ('memory_size', memory_size, MAX_MEMORY_SIZE)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ValueError(f'{name} must be a whole number from 1 to {high}, got '
                             f'{_shown(value)}')
    return memory, history, memory_size


def memory_values(description: dict) -> int:
    """An upper bound on the numbers a description's memory adds to its MLP-only estimate.

    The stack widens the MLP's input by (history - 1) observations, the GRU by its hidden
    state, and the GRU has 3 (inputs + hidden + 2) hidden weights per core; the networks here
    have up to two cores (actor and critic) and two stacks.
    """
    if 'memory' not in description:
        return 0
    _, history, size = check_memory(description['memory'], description.get('history', 1),
                                    description.get('memory_size', 1))
    obs_dim = description['obs_dim']
    hidden = description.get('hidden') or []
    widest = max([description['act_dim'], *hidden])
    if description['memory'] == 'stack':
        extra_inputs, core = (history - 1) * obs_dim, 0
    else:
        extra_inputs, core = size, 3 * (obs_dim + size + 2) * size
    return 2 * (extra_inputs * widest + core)


class MemoryCore(nn.Module):
    """Features of an observation and what came before it in the episode, with a state.

    ``state`` is a [B, state_size] tensor; ``fresh`` a [B] (or [B, T]) bool that marks the
    first step of an episode, where the state is cleared before the step.
    """

    def __init__(self, obs_dim: int, memory: str, history: int = 1, memory_size: int = 64):
        super().__init__()
        self.memory, self.history, self.memory_size = check_memory(memory, history,
                                                                   memory_size)
        self.obs_dim = int(obs_dim)
        if memory == 'gru':
            self.gru = nn.GRU(self.obs_dim, self.memory_size, batch_first=True)
            self.state_size = self.memory_size
            self.out_dim = self.obs_dim + self.memory_size
        else:
            self.state_size = (self.history - 1) * self.obs_dim
            self.out_dim = self.history * self.obs_dim

    def initial_state(self, batch: int, device=None) -> torch.Tensor:
        # A stack holds no parameters to tell its device: the network that owns it does.
        return torch.zeros(batch, self.state_size, device=device)

    def step(self, x: torch.Tensor, state: torch.Tensor, fresh: torch.Tensor) -> tuple:
        """(features [B, out_dim], next state) of observations ``x`` [B, obs_dim]."""
        fresh = fresh.reshape(-1, 1)
        if self.memory == 'gru':
            h = torch.where(fresh, torch.zeros_like(state), state)
            h = self.gru(x.unsqueeze(1), h.unsqueeze(0))[0][:, 0]
            return torch.cat([x, h], dim=-1), h
        # Oldest first; an episode's first step sees its own observation history - 1 times.
        state = torch.where(fresh, x.repeat(1, self.history - 1), state)
        window = torch.cat([state, x], dim=-1)
        return window, window[:, self.obs_dim:]

    def sequence(self, x: torch.Tensor, state: torch.Tensor, fresh: torch.Tensor) -> tuple:
        """(features [B, T, out_dim], state after the last step) of ``x`` [B, T, obs_dim]."""
        if self.memory == 'gru':
            # One fused GRU call per stretch without an episode start inside: the same
            # numbers as step by step, an order of magnitude faster to train.
            starts = [0, *(t for t in range(1, x.shape[1]) if bool(fresh[:, t].any())),
                      x.shape[1]]
            h, out = state, []
            for a, b in zip(starts[:-1], starts[1:]):
                h = torch.where(fresh[:, a].reshape(-1, 1), torch.zeros_like(h), h)
                part, h = self.gru(x[:, a:b], h.unsqueeze(0).contiguous())
                h = h[0]
                out.append(part)
            return torch.cat([x, torch.cat(out, dim=1)], dim=-1), h
        # The stack's windows in one gather: position p of [state's observations, x] at
        # each window slot, moved up to the last episode start at or before the step.
        batch, steps, k = x.shape[0], x.shape[1], self.history
        if k == 1:
            return x, state
        padded = torch.cat([state.reshape(batch, k - 1, self.obs_dim), x], dim=1)
        t = torch.arange(steps, device=x.device)
        start = torch.cummax(torch.where(fresh, t + k - 1, torch.zeros_like(t)), dim=1).values
        slots = (t + k - 1).reshape(1, steps, 1) + torch.arange(1 - k, 1, device=x.device
                                                                ).reshape(1, 1, k)
        index = torch.maximum(slots, start.unsqueeze(-1)).reshape(batch, steps * k, 1)
        windows = torch.gather(padded, 1, index.expand(-1, -1, self.obs_dim))
        windows = windows.reshape(batch, steps, k * self.obs_dim)
        return windows, windows[:, -1, self.obs_dim:]


class _Stateful:
    """The deployed network's memory: kept between ``forward`` calls, cleared by ``reset``."""

    recurrent = True

    def reset(self) -> None:
        """Forget the episode so far (call it when an episode starts)."""
        self._state = None

    def _carried(self, batch: int) -> tuple:
        # A new episode, or rows of another count than the last call (a probe batch): fresh.
        state = getattr(self, '_state', None)
        device = next(self.parameters()).device
        if state is None or state.shape[0] != batch:
            return self.core_state(batch), torch.ones(batch, dtype=torch.bool, device=device)
        return state, torch.zeros(batch, dtype=torch.bool, device=device)


class MemoryPolicy(_Stateful, _PolicyHead):
    """pi(a | o_1..o_t), the behavior cloning network with memory.

    Normalise o, a memory (stack or GRU), an MLP, a deterministic or diagonal-Gaussian head.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), activation='relu',
                 head='deterministic', memory='gru', history=1, memory_size=64):
        super().__init__(obs_dim, act_dim, hidden, activation, head)
        self.core = MemoryCore(self.obs_dim, memory, history, memory_size)
        self._build_mlp(self.core.out_dim)
        self._state = None

    def core_state(self, batch: int) -> torch.Tensor:
        return self.core.initial_state(batch, self.obs_mean.device)

    def _heads(self, h: torch.Tensor) -> tuple:
        mean = self.mean_head(h)
        if self.head == 'gaussian':
            return mean, self.log_std_head(h).clamp(-5.0, 2.0)
        return mean, None

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """One step of the deployed policy: its state moves on (see ``reset``)."""
        state, fresh = self._carried(obs.shape[0])
        features, state = self.core.step((obs - self.obs_mean) / self.obs_std, state, fresh)
        self._state = state.detach()
        return self.body(features)

    def sequence_distribution(self, obs: torch.Tensor, fresh: torch.Tensor,
                              state: torch.Tensor = None) -> tuple:
        """(mean, log_std or None, state) in normalised action units for ``obs`` [B, T, D].

        ``fresh`` [B, T] marks episode starts; ``state`` None: every row starts fresh.
        """
        if state is None:
            state = self.core.initial_state(obs.shape[0], obs.device)
        features, state = self.core.sequence((obs - self.obs_mean) / self.obs_std, state,
                                             fresh)
        mean, log_std = self._heads(self.body(features))
        return mean, log_std, state

    def description(self) -> dict:
        return {'type': 'memory_mlp', 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
                'hidden': list(self.hidden), 'activation': self.activation, 'head': self.head,
                'memory': self.core.memory, 'history': self.core.history,
                'memory_size': self.core.memory_size}

    @classmethod
    def from_description(cls, d: dict) -> 'MemoryPolicy':
        return cls(obs_dim=d['obs_dim'], act_dim=d['act_dim'], hidden=d['hidden'],
                   activation=d['activation'], head=d['head'], memory=d['memory'],
                   history=d['history'], memory_size=d['memory_size'])


class MemoryActorCritic(_Stateful, nn.Module):
    """A Gaussian actor and a critic, each on its own memory of the same kind (recurrent PPO).

    As Stable-Baselines3-contrib's RecurrentPPO by default: separate actor and critic memories,
    a state-independent log std. Box actions; ``forward`` is the mean action clipped to the
    bounds. No observation normalisation (the pendulum's observations are of order 1).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden=(64, 64), activation='tanh',
                 memory='gru', history=1, memory_size=64, log_std_init=0.0,
                 action_low=None, action_high=None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation {activation!r} is not one of {tuple(ACTIVATIONS)}')
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        self.actor_core = MemoryCore(self.obs_dim, memory, history, memory_size)
        self.critic_core = MemoryCore(self.obs_dim, memory, history, memory_size)
        self.actor = mlp([self.actor_core.out_dim, *self.hidden, self.act_dim], activation)
        self.critic = mlp([self.critic_core.out_dim, *self.hidden, 1], activation)
        self.log_std = nn.Parameter(torch.full((self.act_dim,), float(log_std_init)))
        low = torch.full((self.act_dim,), -math.inf) if action_low is None \
            else torch.as_tensor(action_low, dtype=torch.float32).reshape(self.act_dim)
        high = torch.full((self.act_dim,), math.inf) if action_high is None \
            else torch.as_tensor(action_high, dtype=torch.float32).reshape(self.act_dim)
        self.register_buffer('action_low', low.clone())
        self.register_buffer('action_high', high.clone())
        for layer in [*self.actor, *self.critic]:
            if isinstance(layer, nn.Linear):
                nn.init.orthogonal_(layer.weight, math.sqrt(2.0))
                nn.init.zeros_(layer.bias)
        nn.init.orthogonal_(self.actor[-1].weight, 0.01)
        nn.init.orthogonal_(self.critic[-1].weight, 1.0)
        self._state = None

    @property
    def memory(self) -> str:
        return self.actor_core.memory

    def core_state(self, batch: int) -> torch.Tensor:
        """Actor's and critic's states side by side: [B, 2 state_size]."""
        return torch.zeros(batch, 2 * self.actor_core.state_size, device=self.action_low.device)

    def _split(self, state: torch.Tensor) -> tuple:
        return state[:, :self.actor_core.state_size], state[:, self.actor_core.state_size:]

    def step(self, obs: torch.Tensor, state: torch.Tensor, fresh: torch.Tensor) -> tuple:
        """(mean action [B, A], value [B], next state) for one step of ``obs`` [B, D]."""
        actor_state, critic_state = self._split(state)
        fa, actor_state = self.actor_core.step(obs, actor_state, fresh)
        fc, critic_state = self.critic_core.step(obs, critic_state, fresh)
        return (self.actor(fa), self.critic(fc).squeeze(-1),
                torch.cat([actor_state, critic_state], dim=-1))

    def sequence(self, obs: torch.Tensor, state: torch.Tensor, fresh: torch.Tensor) -> tuple:
        """(mean [B, T, A], value [B, T]) for ``obs`` [B, T, D] from ``state``."""
        actor_state, critic_state = self._split(state)
        fa, _ = self.actor_core.sequence(obs, actor_state, fresh)
        fc, _ = self.critic_core.sequence(obs, critic_state, fresh)
        return self.actor(fa), self.critic(fc).squeeze(-1)

    def log_prob_entropy(self, mean: torch.Tensor, actions: torch.Tensor) -> tuple:
        """(log pi(a), entropy), summed over action dimensions."""
        log_std = self.log_std.expand_as(mean)
        entropy = (0.5 + 0.5 * math.log(2.0 * math.pi) + log_std).sum(dim=-1)
        return gaussian_log_prob(actions, mean, log_std), entropy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action (the mean, clipped) of one step; the state moves on."""
        state, fresh = self._carried(obs.shape[0])
        mean, _, state = self.step(obs, state, fresh)
        self._state = state.detach()
        return torch.max(torch.min(mean, self.action_high), self.action_low)

    def description(self) -> dict:
        return {'type': 'memory_actor_critic', 'obs_dim': self.obs_dim,
                'act_dim': self.act_dim, 'hidden': list(self.hidden),
                'activation': self.activation, 'memory': self.actor_core.memory,
                'history': self.actor_core.history, 'memory_size': self.actor_core.memory_size}

    @classmethod
    def from_description(cls, d: dict) -> 'MemoryActorCritic':
        # The bounds and the log std are tensors of the checkpoint, loaded after this.
        return cls(obs_dim=d['obs_dim'], act_dim=d['act_dim'], hidden=d['hidden'],
                   activation=d['activation'], memory=d['memory'], history=d['history'],
                   memory_size=d['memory_size'])
