"""Soft actor-critic (SAC) with automatic entropy tuning, for continuous actions.

Haarnoja, Zhou, Abbeel & Levine, "Soft Actor-Critic: Off-Policy Maximum Entropy Deep
Reinforcement Learning with a Stochastic Actor", ICML 2018; the learned temperature and the
form without a state-value network from Haarnoja et al., "Soft Actor-Critic Algorithms and
Applications", arXiv:1812.05905. The actor is a Gaussian squashed by tanh into [-1, 1]
(its log-density corrected for the squashing, appendix C), scaled to the task's bounds; its
deterministic action, the one the robot runs, is tanh of the mean.

Each gradient step computes the critics' loss (against the soft target), the actor's loss
(through the critics, their weights frozen for it) and the temperature's loss from one
minibatch and one sample a ~ pi(.|s), then takes one backward pass and one Adam step for
all three, as the authors' implementation (github.com/haarnoja/sac: one session run of
all training ops) does. Stable-Baselines3 and Spinning Up instead step the critics first
and then the actor against the updated critics; one pass is ~0.4 ms a step cheaper here.
"""

import copy
from dataclasses import dataclass
import logging
import math
from typing import ClassVar

import numpy as np
import torch

from ilrl_ros.core.device import resolve_device
from ilrl_ros.core.networks import SquashedGaussianActor
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


# rl-baselines3-zoo hyperparams/sac.yml (checked against commit 22e3ff2, April 2026): only
# the learning rate differs from the defaults. Our 'pendulum' task is Pendulum-v1.
SAC_PRESETS = {
    'Pendulum-v1': dict(total_steps=20_000, lr=1e-3),
}
SAC_PRESETS['pendulum'] = SAC_PRESETS['Pendulum-v1']


@dataclass
class SACConfig(RLConfig):
    """SAC settings (defaults: Stable-Baselines3's; ``for_env`` gives the zoo's tuned ones)."""

    presets: ClassVar[dict] = SAC_PRESETS
    positive_fields: ClassVar[tuple] = ('total_steps', 'buffer_size', 'batch_size',
                                        'train_freq', 'gradient_steps',
                                        'target_update_interval', 'n_critics', 'log_every')
    fraction_fields: ClassVar[tuple] = ('gamma', 'tau')

    total_steps: int = 20_000
    """Environment steps."""
    lr: float = 3e-4
    """Adam learning rate of the actor, the critics and the temperature."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity (transitions)."""
    learning_starts: int = 100
    """Uniformly random steps before learning starts."""
    batch_size: int = 256
    """Transitions per gradient step."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 1
    """Environment steps between training rounds."""
    gradient_steps: int = 1
    """Gradient steps per training round."""
    target_update_interval: int = 1
    """Gradient steps between target critic updates."""
    ent_coef: float = None
    """Fixed entropy coefficient alpha; None learns it (automatic entropy tuning)."""
    init_ent_coef: float = 1.0
    """Alpha at the start when it is learned."""
    target_entropy: float = None
    """Entropy the learned alpha aims for; None: -act_dim."""
    n_critics: int = 2
    """Critics whose minimum is used (2: clipped double Q)."""
    hidden: tuple = (256, 256)
    """Hidden layer widths of the actor and of each critic."""
    activation: str = 'relu'
    """Activation between hidden layers: relu, tanh or elu."""
    seed: int = 0
    """Seed for initialisation, exploration, replay sampling and the env's first reset."""
    log_every: int = 1000
    """Environment steps between ``train/...`` scalars."""


# ---------------------------------------------------------------- losses

def sac_target(rewards: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor,
               next_log_prob: torch.Tensor, alpha, gamma: float) -> torch.Tensor:
    """Soft TD target r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a'|s'))."""
    soft_value = next_q.min(dim=0).values - alpha * next_log_prob
    return td_target(rewards, terminated, soft_value, gamma)


def sac_actor_loss(q_pi: torch.Tensor, log_prob: torch.Tensor, alpha) -> torch.Tensor:
    """E[alpha log pi(a|s) - min_i Q_i(s, a)], a ~ pi(.|s) reparameterised; q_pi [n, B]."""
    return (alpha * log_prob - q_pi.min(dim=0).values).mean()


def sac_alpha_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor,
                   target_entropy: float) -> torch.Tensor:
    """Temperature loss -E[log alpha (log pi(a|s) + target entropy)].

    Its gradient raises alpha while the policy's entropy (-log pi) is below the target and
    lowers it above.
    """
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


# ---------------------------------------------------------------- learner

class SACLearner(BoxActionLearner):
    """SAC's networks, optimiser and gradient step, apart from any environment loop.

    A ``Learner`` (``core/rl/learners.py`` has the contract): ``update`` takes one gradient
    step on a ``TransitionBatch`` whose actions are normalised to [-1, 1] (``to_buffer``
    converts the robot's actions); ``act`` answers one observation in the task's units.
    The networks are initialised from torch's global generator: seed it first.
    """

    def __init__(self, obs_dim: int, act_dim: int, low, high, config: SACConfig = SACConfig()):
        self.config = config
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.low = np.asarray(low, dtype=np.float32).reshape(-1)
        self.high = np.asarray(high, dtype=np.float32).reshape(-1)
        # Built on the CPU from the global generator, then moved: the same start on any device.
        self.device = resolve_device(config.device)
        self.actor = SquashedGaussianActor(obs_dim, act_dim, low, high, config.hidden,
                                           config.activation).to(self.device)
        self.critics = CriticEnsemble(obs_dim, act_dim, config.hidden, config.n_critics,
                                      config.activation).to(self.device)
        self.target_critics = copy.deepcopy(self.critics)
        self.target_critics.requires_grad_(False)
        self.learn_alpha = config.ent_coef is None
        self.log_alpha = torch.tensor([math.log(config.init_ent_coef if self.learn_alpha
                                                else config.ent_coef)],
                                      device=self.device, requires_grad=self.learn_alpha)
        # One Adam over the actor, the critics and log alpha, stepped once per gradient step
        # (see the module docstring): Adam treats each parameter on its own.
        params = [*self.actor.parameters(), *self.critics.parameters(),
                  *([self.log_alpha] if self.learn_alpha else [])]
        self.optimizer = adam(params, config.lr)
        self.target_entropy = -float(act_dim) if config.target_entropy is None \
            else float(config.target_entropy)
        self.updates = 0  # gradient steps taken
        self.env_steps = 0  # environment steps taken, as set_progress was last told

    @property
    def policy(self) -> SquashedGaussianActor:
        """The actor: what a checkpoint stores and the robot runs."""
        return self.actor

    def choose(self, obs: np.ndarray, explore: bool = False,
               rng: np.random.Generator = None) -> np.ndarray:
        """The action for one observation in [-1, 1], as the buffer stores it.

        Exploring: uniform from ``rng`` during the ``learning_starts`` warm-up, then a sample
        of the squashed Gaussian (drawn from torch's generator). Otherwise tanh of the mean.
        """
        if explore and rng is None:
            raise ValueError('an exploring action needs rng, a NumPy generator')
        if explore and self.env_steps < self.config.learning_starts:
            return rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
        with torch.inference_mode():
            obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device).view(1, -1)
            action = self.actor.explore(obs) if explore else self.actor.normalized(obs)
        return action.cpu().numpy()[0]

    def update(self, batch: TransitionBatch) -> dict:
        """One gradient step of the critics, the actor and alpha; their metrics as floats."""
        config, actor, critics = self.config, self.actor, self.critics
        batch = batch.to(self.device)  # sampled on the CPU (the buffer is NumPy)
        actions_pi, log_prob = actor.sample(batch.obs)
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            next_actions, next_log_prob = actor.sample(batch.next_obs)
            next_q = self.target_critics(batch.next_obs, next_actions)
            targets = sac_target(batch.rewards, batch.terminated, next_q, next_log_prob,
                                 alpha, config.gamma)
        q = critics(batch.obs, batch.actions)
        q_loss = 0.5 * critic_loss(q, targets)
        # Frozen: the actor's loss moves only the actor; the critic loss only the critics
        # (its inputs carry no gradient), so one backward serves all three.
        pi_loss = sac_actor_loss(critics(batch.obs, actions_pi, frozen=True), log_prob, alpha)
        loss = q_loss + pi_loss
        metrics = {}
        if self.learn_alpha:
            alpha_loss = sac_alpha_loss(self.log_alpha, log_prob, self.target_entropy)
            loss = loss + alpha_loss
            metrics['alpha_loss'] = float(alpha_loss.detach())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        metrics.update(critic_loss=float(q_loss.detach()), q=float(q.detach().mean()),
                       actor_loss=float(pi_loss.detach()), alpha=float(alpha[0]),
                       entropy=float(-log_prob.detach().mean()))
        self.updates += 1
        if self.updates % config.target_update_interval == 0:
            polyak_update(self.target_critics, critics, config.tau)
        return metrics


# ---------------------------------------------------------------- training

def train(env_fn, config: SACConfig = SACConfig(), log: TrainingLog = None,
          progress=None) -> RLResult:
    """Train a ``SquashedGaussianActor`` with SAC on ``env_fn()`` (a Box action space)."""
    log = log or TrainingLog()
    with torch_settings(config.torch_threads, config.matmul_precision, flush_denormal=True):
        return _train(env_fn, config, log, progress)


def _train(env_fn, config: SACConfig, log: TrainingLog, progress) -> RLResult:
    rng = seed_everything(config.seed)
    env = env_fn()
    learner = SACLearner(*box_dims(env), config)
    buffer = learner.make_buffer()
    episodes = EpisodeReturns(log)
    tracker = Progress(config.total_steps, progress)
    names = ('critic_loss', 'actor_loss', 'alpha', 'alpha_loss', 'entropy', 'q')
    # Summed as float32 tensors, as the metrics were before they left the learner.
    sums = {name: torch.zeros(()) for name in names}
    updates = 0
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
                for name, value in learner.update(buffer.sample(config.batch_size, rng)).items():
                    sums[name] += value
                updates += 1

        if step % config.log_every == 0 or step == config.total_steps:
            metrics = {'rollout/ep_return_mean': episodes.recent_mean(),
                       'train/steps_per_second': step / max(tracker.seconds, 1e-9)}
            if updates:
                for name in names:
                    if name != 'alpha_loss' or learner.learn_alpha:
                        metrics[f'train/{name}'] = float(sums[name]) / updates
            for name, value in metrics.items():
                log.scalar(name, value, step)
            sums = {name: torch.zeros(()) for name in names}
            updates = 0
        if step % 100 == 0 or step == config.total_steps:
            tracker(step, metrics)
    env.close()
    learner.policy.cpu().eval()
    return RLResult(policy=learner.policy, log=log, config=config_dict(config),
                    seconds=tracker.seconds, env_steps=config.total_steps)
