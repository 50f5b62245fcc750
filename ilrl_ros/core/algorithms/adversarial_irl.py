"""Adversarial imitation from demonstrations: GAIL and AIRL, with SAC as the inner RL.

GAIL: Ho & Ermon, "Generative Adversarial Imitation Learning", NeurIPS 2016
(https://arxiv.org/abs/1606.03476). A discriminator D(s, a) learns to tell the expert's
state-action pairs from the policy's; the policy is trained with RL on a reward that is high
where D takes it for the expert.

AIRL: Fu, Luo & Levine, "Learning Robust Rewards with Adversarial Inverse Reinforcement
Learning", ICLR 2018 (https://arxiv.org/abs/1710.11248). The discriminator has the form
D = exp f / (exp f + pi(a|s)), so its logit is f - log pi(a|s), with
f(s, a, s') = g(s) + gamma h(s') - h(s): a state-only reward g(s) and a shaping potential h.
With deterministic dynamics g recovers the expert's reward up to a constant, so it can be
re-optimised where the expert never went (``ilrl train sac`` cannot use it, ``train_reward``
here can).

The inner RL is SAC, off-policy, as in Kostrikov et al., "Discriminator-Actor-Critic",
ICLR 2019 (https://arxiv.org/abs/1809.02925): the replay buffer holds the policy's
transitions with no reward, the discriminator is trained on expert minibatches against
replay minibatches, and each SAC minibatch gets its reward from the current discriminator
when it is sampled. DAC's absorbing states are not modelled: a terminal transition stops
bootstrapping as in plain SAC (the pendulum never terminates; on tasks that do, GAIL's
reward 'positive', -log(1 - D) > 0, favours staying alive).

What the policy is paid:
- GAIL 'logit': log D - log(1 - D), the discriminator's logit (AIRL's form of GAIL's
  reward; the imitation library's default); 'positive': -log(1 - D) (Ho & Ermon's cost
  log D with the sign of the policy's side flipped, as DAC).
- AIRL: f(s, a, s'). The discriminator's logit is f - log pi; SAC adds -alpha log pi itself
  (its entropy term), so with alpha = 1 the policy maximises exactly the logit's expectation
  (the imitation library pays its AIRL policy f the same way).
"""

from dataclasses import dataclass, field, replace
import logging
import math
from typing import ClassVar, Optional

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ilrl_ros.core.algorithms.sac import SACConfig, SACLearner
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.networks.actors import squashed_gaussian_log_prob
from ilrl_ros.core.networks.mlp import mlp
from ilrl_ros.core.rl.buffers import TransitionBatch
from ilrl_ros.core.rl.configs import config_dict
from ilrl_ros.core.rl.progress import EpisodeReturns, Progress
from ilrl_ros.core.rl.results import RLResult
from ilrl_ros.core.rl.spaces import box_dims, to_unit_box
from ilrl_ros.core.rl.torch_settings import seed_everything, torch_settings
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

METHODS = ('gail', 'airl')
GAIL_REWARDS = ('logit', 'positive')
# Expert actions at the bounds are pulled this far inside (-1, 1) before atanh, so their
# log-density under the squashed Gaussian stays finite.
ACTION_EDGE = 1e-4


@dataclass
class AdversarialConfig:
    """GAIL / AIRL settings: the discriminator's, and SAC's underneath (``sac``)."""

    positive_fields: ClassVar[tuple] = ('total_steps', 'disc_batch_size', 'disc_every',
                                        'disc_updates', 'log_every')

    total_steps: int = 10_000
    """Environment steps of the policy (SAC's total_steps)."""
    disc_hidden: tuple = (64, 64)
    """Hidden layer widths of the discriminator (GAIL's D; AIRL's g and h each)."""
    disc_lr: float = 3e-4
    """Adam learning rate of the discriminator."""
    disc_batch_size: int = 256
    """Expert and policy transitions per discriminator step (this many of each)."""
    disc_every: int = 2
    """Environment steps between discriminator training rounds (on the pendulum AIRL learnt
    faster with 2 than with 1, at a third less time a step)."""
    disc_updates: int = 1
    """Discriminator gradient steps per round."""
    grad_penalty: float = 10.0
    """Weight of the gradient penalty (||grad D|| - 1)^2 on expert-policy interpolates (DAC,
    after WGAN-GP); 0 turns it off."""
    gail_reward: str = 'logit'
    """GAIL's reward: 'logit' (log D - log(1 - D)) or 'positive' (-log(1 - D))."""
    airl_state_only: bool = True
    """AIRL: the reward term g depends on the state only (g(s), transferable); false: g(s, a)."""
    airl_behavior_log_prob: bool = True
    """AIRL: a replayed policy sample's log pi is the density it was drawn with (stored when
    acting; the uniform warm-up's too); false: the current policy's, as on-policy AIRL."""
    demo_episodes: int = 0
    """Use the first this many demonstration episodes (0: all of them)."""
    seed: int = 0
    """Seed of the networks, exploration and replay sampling, and the env's first reset."""
    log_every: int = 1000
    """Environment steps between ``train/...`` scalars."""
    sac: SACConfig = field(default_factory=lambda: _sac_defaults())
    """The inner RL (SAC; its total_steps, seed and log_every are the ones above)."""

    def __post_init__(self):
        for name in self.positive_fields:
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f'AdversarialConfig.{name} must be a positive integer, got '
                                 f'{value!r}')
        if not (self.disc_lr > 0 and math.isfinite(self.disc_lr)):
            raise ValueError(f'AdversarialConfig.disc_lr must be positive, got '
                             f'{self.disc_lr!r}')
        if not (self.grad_penalty >= 0 and math.isfinite(self.grad_penalty)):
            raise ValueError(f'AdversarialConfig.grad_penalty must be >= 0, got '
                             f'{self.grad_penalty!r}')
        if self.gail_reward not in GAIL_REWARDS:
            raise ValueError(f'AdversarialConfig.gail_reward {self.gail_reward!r} is not one '
                             f'of {", ".join(GAIL_REWARDS)}')
        if not (isinstance(self.demo_episodes, int) and self.demo_episodes >= 0):
            raise ValueError(f'AdversarialConfig.demo_episodes must be an integer >= 0, got '
                             f'{self.demo_episodes!r}')
        if isinstance(self.sac, dict):
            self.sac = replace(_sac_defaults(), **self.sac)
        self.sac = replace(self.sac, total_steps=self.total_steps, seed=self.seed,
                           log_every=self.log_every)


def _sac_defaults() -> SACConfig:
    """SAC's settings under GAIL / AIRL.

    The zoo's pendulum learning rate, 1000 uniform warm-up steps, and 64x64 networks (on the
    pendulum GAIL scored the same with 256x256 at four times the update time).
    """
    return SACConfig(lr=1e-3, learning_starts=1000, hidden=(64, 64))


# ---------------------------------------------------------------- losses

def discriminator_loss(expert_logits: torch.Tensor,
                       policy_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy: the expert's samples labelled 1, the policy's 0.

    -E_expert[log D] - E_policy[log(1 - D)] with D = sigmoid(logit), each mean taken over
    its own samples; log sigmoid(x) = -softplus(-x) keeps it finite for any logit.
    """
    return F.softplus(-expert_logits).mean() + F.softplus(policy_logits).mean()


def gail_reward(logits: torch.Tensor, kind: str = 'logit') -> torch.Tensor:
    """GAIL's reward from D's logit: 'logit' log D - log(1 - D); 'positive' -log(1 - D)."""
    if kind == 'logit':
        return logits
    if kind == 'positive':
        return F.softplus(logits)
    raise ValueError(f'gail reward {kind!r} is not one of {", ".join(GAIL_REWARDS)}')


def airl_f(g: torch.Tensor, h: torch.Tensor, next_h: torch.Tensor,
           terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """f(s, a, s') = g + gamma (1 - terminated) h(s') - h(s): a terminal s' has potential 0."""
    return g + gamma * (1.0 - terminated) * next_h - h


def airl_logits(f: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
    """Logit of D = exp f / (exp f + pi(a|s)): f - log pi(a|s)."""
    return f - log_pi


def gradient_penalty(logit_fn, expert_inputs: tuple, policy_inputs: tuple,
                     mix: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x logit_fn(x)|| - 1)^2] at x = mix * expert + (1 - mix) * policy.

    ``mix`` [B] is one weight per row, shared by every input tensor of that row; the norm is
    over all inputs together. Gulrajani et al., "Improved Training of Wasserstein GANs",
    2017, as DAC uses it on its discriminator.
    """
    points = []
    for e, p in zip(expert_inputs, policy_inputs):
        w = mix.view(-1, *([1] * (e.dim() - 1)))
        points.append((w * e + (1.0 - w) * p).detach().requires_grad_(True))
    out = logit_fn(*points)
    # An input the function ignores (AIRL's state-only g ignores the action) has gradient 0.
    grads = torch.autograd.grad(out.sum(), points, create_graph=True, allow_unused=True)
    norm = torch.sqrt(sum((g.reshape(len(g), -1) ** 2).sum(dim=1) for g in grads
                          if g is not None) + 1e-12)
    return ((norm - 1.0) ** 2).mean()


def squashed_log_prob_of(actor, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Log pi(a|s) [B] of given actions in [-1, 1] under a ``SquashedGaussianActor``.

    Actions at the bounds (an expert's saturated torque) are pulled ``ACTION_EDGE`` inside.
    """
    mean, log_std = actor.distribution(obs)
    pre_tanh = torch.atanh(actions.clamp(-1.0 + ACTION_EDGE, 1.0 - ACTION_EDGE))
    return squashed_gaussian_log_prob(pre_tanh, mean, log_std)


# ---------------------------------------------------------------- discriminators

class _Standardize(nn.Module):
    """(x - mean) / std with the demonstrations' statistics, kept as buffers."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer('mean', torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer('std', torch.as_tensor(np.asarray(std, dtype=np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _obs_stats(obs_mean, obs_std, obs_dim):
    mean = np.zeros(obs_dim) if obs_mean is None else np.asarray(obs_mean, dtype=np.float64)
    std = np.ones(obs_dim) if obs_std is None else np.maximum(np.asarray(obs_std), 1e-3)
    return mean, std


class GAILDiscriminator(nn.Module):
    """D(s, a) as a logit [B]; actions in [-1, 1], observations standardised inside."""

    def __init__(self, obs_dim: int, act_dim: int, hidden=(64, 64), obs_mean=None,
                 obs_std=None):
        super().__init__()
        self.obs_norm = _Standardize(*_obs_stats(obs_mean, obs_std, obs_dim))
        self.net = mlp([obs_dim + act_dim, *hidden, 1], 'tanh')

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([self.obs_norm(obs), actions], dim=-1)).squeeze(-1)


class AIRLDiscriminator(nn.Module):
    """AIRL's f(s, a, s') = g(s) + gamma h(s') - h(s) (g(s, a) unless ``state_only``)."""

    def __init__(self, obs_dim: int, act_dim: int, gamma: float, hidden=(64, 64),
                 state_only: bool = True, obs_mean=None, obs_std=None):
        super().__init__()
        self.gamma, self.state_only = float(gamma), bool(state_only)
        self.obs_norm = _Standardize(*_obs_stats(obs_mean, obs_std, obs_dim))
        self.g = mlp([obs_dim + (0 if state_only else act_dim), *hidden, 1], 'tanh')
        self.h = mlp([obs_dim, *hidden, 1], 'tanh')

    def reward(self, obs: torch.Tensor, actions: torch.Tensor = None) -> torch.Tensor:
        """The learned reward g(s) (or g(s, a)) [B]: what transfers to new start states."""
        x = self.obs_norm(obs)
        if not self.state_only:
            x = torch.cat([x, actions], dim=-1)
        return self.g(x).squeeze(-1)

    def potential(self, obs: torch.Tensor) -> torch.Tensor:
        """The shaping potential h(s) [B]."""
        return self.h(self.obs_norm(obs)).squeeze(-1)

    def forward(self, obs, actions, next_obs, terminated) -> torch.Tensor:
        """f(s, a, s') [B]."""
        return airl_f(self.reward(obs, actions), self.potential(obs),
                      self.potential(next_obs), terminated, self.gamma)


# ---------------------------------------------------------------- demonstrations

@dataclass(frozen=True)
class ExpertTransitions:
    """The demonstrations as (s, a, s') pairs, actions in [-1, 1]; no row crosses an episode."""

    obs: torch.Tensor
    actions: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    episodes: int

    def __len__(self) -> int:
        return len(self.obs)

    def to(self, device) -> 'ExpertTransitions':
        """The same pairs on ``device``."""
        return replace(self, **{name: getattr(self, name).to(device) for name in
                                ('obs', 'actions', 'next_obs', 'terminated')})

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple:
        index = torch.from_numpy(rng.integers(0, len(self), size=batch_size)).to(
            self.obs.device)
        return (self.obs[index], self.actions[index], self.next_obs[index],
                self.terminated[index])


def expert_transitions(data: Demonstrations, obs_dim: int, low, high,
                       demo_episodes: int = 0) -> ExpertTransitions:
    """Pair each demonstration row with the next row of its episode (the last has none).

    Checks the dataset against the task: observation and action sizes, finite values, at
    least one episode of two rows; ``demo_episodes`` > 0 keeps the first that many episodes.
    """
    low = np.asarray(low, dtype=np.float32).reshape(-1)
    obs, actions = np.asarray(data.observations), np.asarray(data.actions)
    if obs.ndim != 2 or obs.shape[1] != obs_dim:
        raise ValueError(f'dataset observations have shape {obs.shape}; the task expects '
                         f'[rows, {obs_dim}]: was the dataset recorded for another task?')
    if actions.ndim != 2 or actions.shape[1] != low.size:
        raise ValueError(f'dataset actions have shape {actions.shape}; the task expects '
                         f'[rows, {low.size}]: was the dataset recorded for another task?')
    if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(actions))):
        raise ValueError('dataset observations and actions must be finite (found NaN or '
                         'inf)')
    episode = np.asarray(data.episode)
    if demo_episodes:
        kept = list(dict.fromkeys(episode.tolist()))[:demo_episodes]
        keep = np.isin(episode, kept)
        obs, actions, episode = obs[keep], actions[keep], episode[keep]
    pairs = np.flatnonzero(episode[:-1] == episode[1:])
    if len(pairs) == 0:
        raise ValueError('the dataset has no two consecutive rows of one episode: adversarial '
                         "imitation needs (s, a, s') transitions")
    unit = to_unit_box(actions[pairs], low, np.asarray(high, dtype=np.float32).reshape(-1))
    return ExpertTransitions(
        obs=torch.as_tensor(obs[pairs], dtype=torch.float32),
        actions=torch.as_tensor(unit), next_obs=torch.as_tensor(obs[pairs + 1],
                                                                dtype=torch.float32),
        terminated=torch.zeros(len(pairs)), episodes=len(np.unique(episode)))


# ---------------------------------------------------------------- the adversary

class Adversary:
    """A discriminator, its optimiser and the reward it pays the policy (GAIL or AIRL)."""

    def __init__(self, method: str, obs_dim: int, act_dim: int, config: AdversarialConfig,
                 obs_mean=None, obs_std=None):
        if method not in METHODS:
            raise ValueError(f'method {method!r} is not one of {", ".join(METHODS)}')
        self.method, self.config = method, config
        if method == 'gail':
            self.net = GAILDiscriminator(obs_dim, act_dim, config.disc_hidden, obs_mean,
                                         obs_std)
        else:
            self.net = AIRLDiscriminator(obs_dim, act_dim, config.sac.gamma,
                                         config.disc_hidden, config.airl_state_only,
                                         obs_mean, obs_std)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.disc_lr)

    def _inputs(self, obs, actions, next_obs, terminated) -> tuple:
        return (obs, actions) if self.method == 'gail' else (obs, actions, next_obs,
                                                             terminated)

    def score(self, obs, actions, next_obs, terminated) -> torch.Tensor:
        """GAIL: D's logit; AIRL: f (its logit less log pi)."""
        return self.net(*self._inputs(obs, actions, next_obs, terminated))

    def logits(self, actor, obs, actions, next_obs, terminated,
               log_pi: torch.Tensor = None) -> torch.Tensor:
        """D's logit [B]; AIRL's needs log pi(a|s): ``log_pi``, else the actor's (no gradient)."""
        score = self.score(obs, actions, next_obs, terminated)
        if self.method == 'gail':
            return score
        if log_pi is None:
            with torch.no_grad():
                log_pi = squashed_log_prob_of(actor, obs, actions)
        return airl_logits(score, log_pi)

    def update(self, actor, expert: tuple, policy: tuple, rng: np.random.Generator,
               policy_log_pi: torch.Tensor = None) -> dict:
        """One Adam step on expert vs policy (s, a, s', terminated) batches; metrics.

        ``policy_log_pi``: AIRL's log pi of the policy batch (default: the actor's now).
        """
        expert_logits = self.logits(actor, *expert)
        policy_logits = self.logits(actor, *policy, log_pi=policy_log_pi)
        loss = discriminator_loss(expert_logits, policy_logits)
        metrics = {'disc_loss': float(loss.detach())}
        if self.config.grad_penalty > 0:
            mix = torch.from_numpy(rng.random(len(expert[0]), dtype=np.float32)).to(
                expert[0].device)
            if self.method == 'gail':
                penalty = gradient_penalty(self.net, expert[:2], policy[:2], mix)
            else:
                # Over (s, a, s'); the interpolates count as not terminal.
                zeros = torch.zeros_like(expert[3])
                penalty = gradient_penalty(lambda *x: self.net(*x, zeros), expert[:3],
                                           policy[:3], mix)
            loss = loss + self.config.grad_penalty * penalty
            metrics['grad_penalty'] = float(penalty.detach())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            metrics['disc_expert_acc'] = float((expert_logits > 0).float().mean())
            metrics['disc_policy_acc'] = float((policy_logits < 0).float().mean())
        return metrics

    @torch.no_grad()
    def reward(self, batch: TransitionBatch) -> torch.Tensor:
        """What SAC is paid for a replay minibatch, from the current discriminator."""
        score = self.score(batch.obs, batch.actions, batch.next_obs, batch.terminated)
        return gail_reward(score, self.config.gail_reward) if self.method == 'gail' \
            else score


# ---------------------------------------------------------------- training

@dataclass
class AdversarialResult(RLResult):
    """``RLResult`` and the trained discriminator (AIRL's holds the learned reward g)."""

    discriminator: Optional[nn.Module] = None
    """GAIL's D or AIRL's f = g + gamma h' - h, in eval mode."""
    method: str = 'gail'
    """'gail' or 'airl'."""
    demo_transitions: int = 0
    """Expert (s, a, s') pairs the discriminator saw."""
    demo_episodes: int = 0
    """Demonstration episodes they came from."""


def train(method: str, data: Demonstrations, env_fn, config: AdversarialConfig = None,
          log: TrainingLog = None, progress=None) -> AdversarialResult:
    """Imitate ``data`` on ``env_fn()`` with GAIL or AIRL (``method``); SAC trains the policy.

    The policy never sees the task's reward (it is only logged as ``rollout/ep_return``).
    """
    config = config or AdversarialConfig()
    if method not in METHODS:
        raise ValueError(f'method {method!r} is not one of {", ".join(METHODS)}')
    log = log or TrainingLog()
    with torch_settings(config.sac.torch_threads, config.sac.matmul_precision,
                        flush_denormal=True):
        return _train(method, data, env_fn, config, log, progress)


def _train(method, data, env_fn, config: AdversarialConfig, log, progress):
    rng = seed_everything(config.seed)
    env = env_fn()
    obs_dim, act_dim, low, high = box_dims(env)
    expert = expert_transitions(data, obs_dim, low, high, config.demo_episodes)
    learner = SACLearner(obs_dim, act_dim, low, high, config.sac)
    std = expert.obs.std(dim=0).numpy() if len(expert) > 1 else None
    adversary = Adversary(method, obs_dim, act_dim, config, expert.obs.mean(dim=0).numpy(),
                          std)
    # The discriminator trains where SAC does (config.sac.device); built on the CPU from the
    # seeded generator, then moved. Replay stays in NumPy; minibatches move as sampled.
    device = learner.device
    adversary.net.to(device)
    expert = expert.to(device)
    buffer = learner.make_buffer(min(config.sac.buffer_size, config.total_steps))
    # AIRL's D = exp f / (exp f + q(a|s)) wants the density q each replayed action was drawn
    # from: kept per buffer row (the buffer is a ring: row = (step - 1) mod capacity).
    keep_log_prob = method == 'airl' and config.airl_behavior_log_prob
    behavior_log_prob = np.zeros(buffer.capacity, np.float32)
    uniform_log_prob = -act_dim * math.log(2.0)
    episodes = EpisodeReturns(log)
    tracker = Progress(config.total_steps, progress)
    sums, counts, metrics = {}, {}, {}
    sac = config.sac

    def add(values: dict):
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
            counts[name] = counts.get(name, 0) + 1

    obs, _ = env.reset(seed=config.seed)
    for step in range(1, config.total_steps + 1):
        learner.set_progress(step - 1)
        action = learner.choose(obs, True, rng)
        if keep_log_prob:
            behavior_log_prob[(step - 1) % buffer.capacity] = _behavior_log_prob(
                learner, obs, action, uniform_log_prob)
        next_obs, reward, terminated, truncated, _ = env.step(learner.to_env(action))
        # The task's reward is kept for the log only; SAC is paid by the discriminator.
        buffer.add(np.reshape(obs, (1, -1)), action[None], [0.0],
                   np.reshape(next_obs, (1, -1)), [float(terminated)])
        episodes.add(reward, terminated or truncated, step)
        obs = env.reset()[0] if terminated or truncated else next_obs

        if step > sac.learning_starts:
            if step % config.disc_every == 0:
                for _ in range(config.disc_updates):
                    rows = rng.integers(0, buffer.size, size=config.disc_batch_size)
                    policy = tuple(torch.from_numpy(a[rows]).to(device) for a in (
                        buffer.obs, buffer.actions, buffer.next_obs, buffer.terminated))
                    add(adversary.update(
                        learner.actor, expert.sample(config.disc_batch_size, rng), policy,
                        rng, torch.from_numpy(behavior_log_prob[rows]).to(device)
                        if keep_log_prob else None))
            if step % sac.train_freq == 0:
                for _ in range(sac.gradient_steps):
                    batch = buffer.sample(sac.batch_size, rng).to(device)
                    paid = adversary.reward(batch)
                    add({'reward': float(paid.mean())})
                    add(learner.update(replace(batch, rewards=paid)))

        if step % config.log_every == 0 or step == config.total_steps:
            metrics = {'rollout/ep_return_mean': episodes.recent_mean(),
                       'train/steps_per_second': step / max(tracker.seconds, 1e-9)}
            metrics.update({f'train/{k}': sums[k] / counts[k] for k in sums})
            for name, value in metrics.items():
                log.scalar(name, value, step)
            sums, counts = {}, {}
        if step % 100 == 0 or step == config.total_steps:
            tracker(step, metrics)
    env.close()
    learner.policy.cpu().eval()
    adversary.net.cpu().eval()
    return AdversarialResult(policy=learner.policy, log=log, config=_config_json(config),
                             seconds=tracker.seconds, env_steps=config.total_steps,
                             discriminator=adversary.net, method=method,
                             demo_transitions=len(expert), demo_episodes=expert.episodes)


def _behavior_log_prob(learner: SACLearner, obs, action, uniform_log_prob: float) -> float:
    """Log q(a|s) of the action just chosen: the uniform warm-up's, or the actor's."""
    if learner.env_steps < learner.config.learning_starts:
        return uniform_log_prob
    with torch.no_grad():
        return float(squashed_log_prob_of(
            learner.actor, torch.as_tensor(np.asarray(obs, np.float32),
                                           device=learner.device).view(1, -1),
            torch.as_tensor(action, device=learner.device).view(1, -1))[0])


def _config_json(config: AdversarialConfig) -> dict:
    out = config_dict(config)
    out['sac'] = config_dict(config.sac)
    return out


class LearnedReward:
    """A gymnasium wrapper-like env that pays AIRL's learned g(s') instead of the task's reward.

    g(s') for the step (s, a, s') rather than g(s): the same discounted sum up to the constant
    g(s_0) and a factor 1/gamma, so the same optimal policy, but the step that reaches a good
    state is paid at once. The task's reward stays in ``info['task_reward']``.
    """

    def __init__(self, env, discriminator: AIRLDiscriminator):
        if not isinstance(discriminator, AIRLDiscriminator) or not discriminator.state_only:
            raise ValueError('re-optimising a learned reward needs a state-only AIRL '
                             'discriminator (airl_state_only true)')
        self.env, self.discriminator = env, discriminator
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.spec = getattr(env, 'spec', None)

    def reset(self, **kwargs):
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        with torch.no_grad():
            learned = float(self.discriminator.reward(
                torch.as_tensor(np.asarray(obs, dtype=np.float32)).view(1, -1))[0])
        return obs, learned, terminated, truncated, {**info, 'task_reward': reward}

    def close(self):
        self.env.close()


# ---------------------------------------------------------------- on a task

def imitate_on_task(method: str, data: Demonstrations, task=None,
                    config: AdversarialConfig = None, log_dir=None, eval_episodes: int = 10,
                    progress=None, env_fn=None) -> tuple:
    """GAIL / AIRL on ``task`` (a name, a spec YAML, or None: the dataset's own task).

    Trains in the task's simulator (``env_fn`` makes another environment, e.g. one with other
    start states), evaluates the deterministic policy on the task over ``eval_episodes``
    episodes from seeds 10000 + seed + k, and returns (result, evaluation, spec).
    """
    from ilrl_ros.core.rl.evaluation import evaluate_policy
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env
    config = config or AdversarialConfig()
    recorded = data.spec
    spec = load_spec(task) if task else recorded
    if recorded.name != spec.name:
        raise ValueError(f'the dataset was recorded for task {recorded.name!r}, not '
                         f'{spec.name!r}: record demonstrations of {spec.name!r} (ilrl '
                         f'collect, ilrl convert) or train on --task {recorded.name}')
    if data.observations.ndim != 2 or data.observations.shape[1] != spec.observation.size:
        raise ValueError(f'dataset observations have shape {data.observations.shape}; task '
                         f'{spec.name!r} expects [rows, {spec.observation.size}]')
    if data.actions.ndim != 2 or data.actions.shape[1] != spec.action.size:
        raise ValueError(f'dataset actions have shape {data.actions.shape}; task '
                         f'{spec.name!r} expects [rows, {spec.action.size}]')
    log = TrainingLog(log_dir)
    try:
        result = train(method, data, env_fn or (lambda: make_env(spec)), config, log,
                       progress)
        evaluation = evaluate_policy(lambda: make_env(spec), result.policy,
                                     episodes=eval_episodes, seed=10_000 + config.seed) \
            if eval_episodes else None
        if evaluation:
            log.scalar('eval/mean_return', evaluation.mean_return, result.env_steps)
            log.scalar('eval/success_rate', evaluation.success_rate, result.env_steps)
    finally:
        log.close()
    return result, evaluation, spec
