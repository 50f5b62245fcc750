"""Twin Delayed DDPG (TD3) for continuous actions.

Fujimoto, van Hoof & Meger, "Addressing Function Approximation Error in Actor-Critic
Methods", ICML 2018. Three changes to DDPG: the target is the minimum of twin critics, the
target action is smoothed with clipped Gaussian noise, and the actor (and the targets) are
updated only every ``policy_delay`` critic updates. DDPG is this loop with one critic, no
smoothing and no delay (``ddpg.py``).

Networks work in normalised actions in [-1, 1]; ``DeterministicActor.forward``
(``core/networks/actors.py``) scales them to the task's bounds. The twin critics are one
``CriticEnsemble`` (``core/rl/critics.py``): each layer of all critics is one batched
matrix product.
"""

import copy
from dataclasses import dataclass
import logging
from typing import ClassVar

import numpy as np
import torch

from ilrl_ros.core.device import resolve_device
from ilrl_ros.core.networks import DeterministicActor
from ilrl_ros.core.rl.box_actions import BoxActionLearner
from ilrl_ros.core.rl.buffers import TransitionBatch
from ilrl_ros.core.rl.configs import config_dict, RLConfig
from ilrl_ros.core.rl.critics import CriticEnsemble
from ilrl_ros.core.rl.losses import critic_loss, td_target
from ilrl_ros.core.rl.optim import adam, polyak_update
from ilrl_ros.core.rl.progress import EpisodeReturns, Progress
from ilrl_ros.core.rl.results import RLResult
from ilrl_ros.core.rl.spaces import box_dims
from ilrl_ros.core.rl.torch_settings import seed_everything, torch_settings
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)


# rl-baselines3-zoo hyperparams/td3.yml (checked against commit 22e3ff2, April 2026). Our
# 'pendulum' task is Pendulum-v1 step for step.
TD3_PRESETS = {
    'Pendulum-v1': dict(total_steps=20_000, gamma=0.98, buffer_size=200_000,
                        learning_starts=10_000, action_noise=0.1, gradient_steps=1,
                        train_freq=1, lr=1e-3, hidden=(400, 300)),
}
TD3_PRESETS['pendulum'] = TD3_PRESETS['Pendulum-v1']


@dataclass
class TD3Config(RLConfig):
    """TD3 settings (defaults: Stable-Baselines3's; ``for_env`` gives the zoo's tuned ones)."""

    presets: ClassVar[dict] = TD3_PRESETS
    positive_fields: ClassVar[tuple] = ('total_steps', 'buffer_size', 'batch_size',
                                        'train_freq', 'gradient_steps', 'policy_delay',
                                        'n_critics', 'log_every')
    fraction_fields: ClassVar[tuple] = ('gamma', 'tau')

    total_steps: int = 20_000
    """Environment steps."""
    lr: float = 1e-3
    """Adam learning rate of the actor and the critics."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity (transitions)."""
    learning_starts: int = 100
    """Uniformly random steps before learning starts."""
    batch_size: int = 256
    """Transitions per gradient step."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 1
    """Environment steps between training rounds."""
    gradient_steps: int = 1
    """Critic updates per training round."""
    action_noise: float = 0.1
    """Std of the Gaussian exploration noise, in normalised action units ([-1, 1]); 0.1 as
    in the TD3 paper (Stable-Baselines3 has no noise unless given some)."""
    policy_delay: int = 2
    """Critic updates per actor and target update."""
    target_policy_noise: float = 0.2
    """Std of the target policy smoothing noise (normalised units)."""
    target_noise_clip: float = 0.5
    """Clip of the target policy smoothing noise."""
    n_critics: int = 2
    """Critics whose minimum is the target (2: TD3's clipped double Q)."""
    hidden: tuple = (400, 300)
    """Hidden layer widths of the actor and of each critic."""
    activation: str = 'relu'
    """Activation between hidden layers: relu, tanh or elu."""
    seed: int = 0
    """Seed for initialisation, exploration, replay sampling and the env's first reset."""
    log_every: int = 1000
    """Environment steps between ``train/...`` scalars."""


# ---------------------------------------------------------------- losses and targets

def smoothed_target_actions(next_actions: torch.Tensor, noise: torch.Tensor,
                            noise_clip: float) -> torch.Tensor:
    """Target policy smoothing: clip(mu'(s') + clip(noise, -c, c), -1, 1)."""
    return (next_actions + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def min_q_target(rewards: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor,
                 gamma: float) -> torch.Tensor:
    """Clipped double-Q target: r + gamma (1 - terminated) min_i Q'_i(s', a'), next_q [n, B]."""
    return td_target(rewards, terminated, next_q.min(dim=0).values, gamma)


def td3_target(batch, target_actor: DeterministicActor, target_critics: CriticEnsemble,
               gamma: float, noise_std: float, noise_clip: float,
               noise: torch.Tensor = None) -> torch.Tensor:
    """TD3's critic target for a ``TransitionBatch`` (``noise``: fixed smoothing noise)."""
    with torch.no_grad():
        next_actions = target_actor.normalized(batch.next_obs)
        if noise is None:
            noise = torch.randn_like(next_actions) * noise_std
        next_actions = smoothed_target_actions(next_actions, noise, noise_clip)
        next_q = target_critics(batch.next_obs, next_actions)
        return min_q_target(batch.rewards, batch.terminated, next_q, gamma)


def deterministic_actor_loss(q_first_critic: torch.Tensor) -> torch.Tensor:
    """-E[Q_1(s, mu(s))]: the deterministic policy gradient through the first critic."""
    return -q_first_critic.mean()


# ---------------------------------------------------------------- learner

class TD3Learner(BoxActionLearner):
    """TD3's networks, optimisers and gradient step, apart from any environment loop.

    A ``Learner`` (``core/rl/learners.py`` has the contract): ``update`` takes one critic
    step on a ``TransitionBatch`` whose actions are normalised to [-1, 1] (``to_buffer``
    converts the robot's actions), and every ``policy_delay``-th one an actor step and the
    targets' Polyak step; ``act`` answers one observation in the task's units. The networks
    are initialised from torch's global generator: seed it first.
    """

    def __init__(self, obs_dim: int, act_dim: int, low, high, config: TD3Config = TD3Config()):
        self.config = config
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.low = np.asarray(low, dtype=np.float32).reshape(-1)
        self.high = np.asarray(high, dtype=np.float32).reshape(-1)
        # Built on the CPU from the global generator, then moved: the same start on any device.
        self.device = resolve_device(config.device)
        self.actor = DeterministicActor(obs_dim, act_dim, low, high, config.hidden,
                                        config.activation).to(self.device)
        self.critics = CriticEnsemble(obs_dim, act_dim, config.hidden, config.n_critics,
                                      config.activation).to(self.device)
        self.target_actor = copy.deepcopy(self.actor)
        self.target_critics = copy.deepcopy(self.critics)
        self.target_actor.requires_grad_(False)
        self.target_critics.requires_grad_(False)
        self.actor_optimizer = adam(self.actor.parameters(), config.lr)
        self.critic_optimizer = adam(self.critics.parameters(), config.lr)
        self.updates = 0  # critic steps taken
        self.env_steps = 0  # environment steps taken, as set_progress was last told

    @property
    def policy(self) -> DeterministicActor:
        """The actor: what a checkpoint stores and the robot runs."""
        return self.actor

    def choose(self, obs: np.ndarray, explore: bool = False,
               rng: np.random.Generator = None) -> np.ndarray:
        """The action for one observation in [-1, 1], as the buffer stores it.

        Exploring: uniform from ``rng`` during the ``learning_starts`` warm-up, then mu(s)
        plus Gaussian noise of std ``action_noise`` from ``rng``, clipped. Otherwise mu(s).
        """
        if explore and rng is None:
            raise ValueError('an exploring action needs rng, a NumPy generator')
        config = self.config
        if explore and self.env_steps < config.learning_starts:
            return rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
        with torch.inference_mode():
            mean = self.actor.normalized(torch.as_tensor(
                obs, dtype=torch.float32, device=self.device).view(1, -1)).cpu().numpy()[0]
        if not explore:
            return mean
        noise = rng.normal(0.0, config.action_noise, self.act_dim) if config.action_noise \
            else 0
        return np.clip(mean + noise, -1.0, 1.0).astype(np.float32)

    def update(self, batch: TransitionBatch) -> dict:
        """One critic step, and the delayed actor and target steps when due; metrics as floats.

        ``actor_loss`` is in the metrics only on the steps that moved the actor.
        """
        config, actor, critics = self.config, self.actor, self.critics
        batch = batch.to(self.device)  # sampled on the CPU (the buffer is NumPy)
        targets = td3_target(batch, self.target_actor, self.target_critics, config.gamma,
                             config.target_policy_noise, config.target_noise_clip)
        q = critics(batch.obs, batch.actions)
        loss = critic_loss(q, targets)
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        self.updates += 1
        metrics = {'critic_loss': float(loss.detach()), 'q_mean': float(q[0].detach().mean())}
        if self.updates % config.policy_delay == 0:
            q_pi = critics(batch.obs, actor.normalized(batch.obs), frozen=True,
                           first_only=True)[0]
            loss = deterministic_actor_loss(q_pi)
            self.actor_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.actor_optimizer.step()
            metrics['actor_loss'] = float(loss.detach())
            polyak_update(self.target_critics, critics, config.tau)
            polyak_update(self.target_actor, actor, config.tau)
        return metrics


# ---------------------------------------------------------------- training

def train(env_fn, config: TD3Config = TD3Config(), log: TrainingLog = None,
          progress=None) -> RLResult:
    """Train a ``DeterministicActor`` with TD3 on ``env_fn()`` (a Box action space)."""
    return train_deterministic(env_fn, config, log, progress)


def train_deterministic(env_fn, config: TD3Config, log: TrainingLog = None,
                        progress=None, report_config: dict = None) -> RLResult:
    """The TD3 loop; DDPG runs it with one critic, no smoothing and no delay."""
    log = log or TrainingLog()
    with torch_settings(config.torch_threads, config.matmul_precision, flush_denormal=True):
        result = _train(env_fn, config, log, progress)
    if report_config is not None:
        result.config = report_config
    return result


def _train(env_fn, config: TD3Config, log: TrainingLog, progress) -> RLResult:
    rng = seed_everything(config.seed)
    env = env_fn()
    learner = TD3Learner(*box_dims(env), config)
    buffer = learner.make_buffer()
    episodes = EpisodeReturns(log)
    tracker = Progress(config.total_steps, progress)
    # Summed as float32 tensors, as the metrics were before they left the learner.
    sums = {'critic_loss': torch.zeros(()), 'actor_loss': torch.zeros(()),
            'q_mean': torch.zeros(())}
    critic_updates = actor_updates = 0
    metrics = {}

    obs, _ = env.reset(seed=config.seed)
    for step in range(1, config.total_steps + 1):
        learner.set_progress(step - 1)
        action = learner.choose(obs, True, rng)
        next_obs, reward, terminated, truncated, _ = env.step(learner.to_env(action))
        buffer.add(np.reshape(obs, (1, -1)), action[None], [reward],
                   np.reshape(next_obs, (1, -1)), [float(terminated)])
        episodes.add(reward, terminated or truncated, step)
        obs = env.reset()[0] if terminated or truncated else next_obs

        if step > config.learning_starts and step % config.train_freq == 0:
            for _ in range(config.gradient_steps):
                update = learner.update(buffer.sample(config.batch_size, rng))
                for name, value in update.items():
                    sums[name] += value
                critic_updates += 1
                actor_updates += 'actor_loss' in update

        if step % config.log_every == 0 or step == config.total_steps:
            metrics = {'rollout/ep_return_mean': episodes.recent_mean(),
                       'train/steps_per_second': step / max(tracker.seconds, 1e-9)}
            if critic_updates:
                metrics['train/critic_loss'] = float(sums['critic_loss']) / critic_updates
                metrics['train/q_mean'] = float(sums['q_mean']) / critic_updates
            if actor_updates:
                metrics['train/actor_loss'] = float(sums['actor_loss']) / actor_updates
            for name, value in metrics.items():
                log.scalar(name, value, step)
            sums = {k: torch.zeros(()) for k in sums}
            critic_updates = actor_updates = 0
        if step % 100 == 0 or step == config.total_steps:
            tracker(step, metrics)
    env.close()
    learner.policy.cpu().eval()
    return RLResult(policy=learner.policy, log=log, config=config_dict(config),
                    seconds=tracker.seconds, env_steps=config.total_steps)
