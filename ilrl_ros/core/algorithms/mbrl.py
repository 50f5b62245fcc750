"""Model-based RL: a learned dynamics ensemble and sampling MPC (random shooting or CEM).

Nagabandi et al., "Neural Network Dynamics for Model-Based Deep Reinforcement Learning with
Model-Free Fine-Tuning", ICRA 2018 (https://arxiv.org/abs/1708.02596): an MLP predicts the
normalised state change, trained on random-policy data and then on the MPC controller's own
rollouts, aggregated every iteration; random-shooting MPC executes the first action of the
best sampled sequence. Chua et al., "Deep Reinforcement Learning in a Handful of Trials
using Probabilistic Dynamics Models" (PETS), NeurIPS 2018 (https://arxiv.org/abs/1805.12114):
an ensemble of models, trajectory sampling through its members, and the cross-entropy
method with smoothed, warm-started action distributions.

The reward is a known function of (observation, action), named from ``REWARD_FUNCTIONS`` so
that a checkpoint can name it without carrying code. ``MPCPolicy`` plans in ``forward``, so
the policy node runs it like any other network; it, the ensemble and the planner are in
``core/networks/mpc.py``, and this file trains the ensemble.
"""

from dataclasses import dataclass, field
import logging
import math
import time

import numpy as np
import torch

from ilrl_ros.core.device import check_device_setting, resolve_device
from ilrl_ros.core.networks import DynamicsEnsemble, MPCPolicy, PlannerConfig
from ilrl_ros.core.networks.mpc import REWARD_FUNCTIONS
from ilrl_ros.core.rl.buffers import ReplayBuffer
from ilrl_ros.core.rl.configs import config_dict
from ilrl_ros.core.rl.evaluation import evaluate_policy
from ilrl_ros.core.rl.results import RLResult
from ilrl_ros.core.rl.torch_settings import seed_everything
from ilrl_ros.core.rl.vec_env import final_observations, make_vec_env
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)


def dynamics_loss(model: DynamicsEnsemble, inputs: torch.Tensor,
                  targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error of normalised deltas, averaged over members, samples and dims."""
    return ((model(inputs) - targets) ** 2).mean()


def fit_dynamics(model: DynamicsEnsemble, obs: np.ndarray, actions: np.ndarray,
                 next_obs: np.ndarray, steps: int, optimizer: torch.optim.Optimizer,
                 rng: np.random.Generator, batch_size: int = 256,
                 normalize: bool = True) -> float:
    """Gradient steps on (obs, action) -> next_obs; returns the mean loss of the last 10%.

    Every member draws its own minibatches (with replacement), which decorrelates the
    members like a bootstrap without holding E copies of the data. With ``normalize`` the
    statistics are refit to these transitions first.
    """
    if len(obs) < 2:
        raise ValueError(f'fitting dynamics needs at least 2 transitions, got {len(obs)}')
    if normalize:
        model.set_normalization(obs, actions, next_obs)
    device = model.input_mean.device
    with torch.no_grad():
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
        inputs = model.normalize(obs_t, torch.as_tensor(actions, dtype=torch.float32,
                                                        device=device))
        targets = (torch.as_tensor(next_obs, dtype=torch.float32, device=device) - obs_t
                   - model.delta_mean) \
            / model.delta_std
    losses = []
    for _ in range(steps):
        index = torch.from_numpy(rng.integers(0, len(obs),
                                              size=(model.ensemble_size, batch_size))
                                 ).to(device)
        loss = dynamics_loss(model, inputs[index], targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses[-max(1, steps // 10):])) if losses else float('nan')


def validation_loss(model: DynamicsEnsemble, obs, actions, next_obs) -> float:
    """Normalised one-step error of the whole ensemble (every member) on held-out data."""
    device = model.input_mean.device
    with torch.no_grad():
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
        inputs = model.normalize(obs_t, torch.as_tensor(actions, dtype=torch.float32,
                                                        device=device))
        targets = (torch.as_tensor(next_obs, dtype=torch.float32, device=device) - obs_t
                   - model.delta_mean) \
            / model.delta_std
        e = model.ensemble_size
        return dynamics_loss(model, inputs.expand(e, -1, -1), targets.expand(e, -1, -1)).item()


@dataclass
class MBRLConfig:
    """Model-based RL settings (Nagabandi et al. 2018 with a PETS-style ensemble and CEM)."""

    total_steps: int = 5000
    """Environment steps in all, random warm-up included."""
    random_steps: int = 1000
    """Warm-up steps with uniformly random actions before the first model is fit."""
    steps_per_iteration: int = 1000
    """MPC steps collected with each model before it is refit on all data so far."""
    num_envs: int = 5
    """Environments stepped together; the MPC plans for all of them in one batch."""
    ensemble_size: int = 5
    """Members of the dynamics ensemble."""
    hidden: tuple = (128, 128)
    """Hidden layer widths of every member."""
    activation: str = 'elu'
    """Activation between hidden layers: relu, tanh or elu."""
    lr: float = 1e-3
    """Adam learning rate of the dynamics model."""
    weight_decay: float = 1e-5
    """AdamW weight decay."""
    batch_size: int = 256
    """Transitions per member per gradient step."""
    first_fit_steps: int = 2000
    """Gradient steps of the first fit, on the random data."""
    fit_steps: int = 1000
    """Gradient steps of every later refit (the model keeps its weights between fits)."""
    val_fraction: float = 0.1
    """Fraction of transitions held out to report the model's one-step error."""
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    """The MPC used to collect data, and stored in the policy."""
    eval_episodes: int = 0
    """Episodes to evaluate the final policy on (0: none)."""
    seed: int = 0
    """Seed for the environments, initialisation, minibatches and planning noise."""
    device: str = 'cpu'
    """Where the dynamics ensemble trains and plans: 'cpu', 'cuda', 'cuda:N' or 'auto' (a
    GPU when there is one); the planning noise is drawn on the CPU either way, and the
    checkpoint holds CPU tensors."""

    def __post_init__(self):
        check_device_setting(type(self).__name__, self.device)


@dataclass
class MBRLResult(RLResult):
    """What ``train`` returns: an ``RLResult`` (its policy an ``MPCPolicy``) and figures."""

    model_val_loss: float
    """The ensemble's one-step error on the held-out transitions after the last fit."""
    plan_ms: float
    """Mean wall time of one planning call (a batch of ``num_envs`` observations)."""
    eval_return: float = float('nan')
    """Mean return of the ``eval_episodes`` evaluation episodes (nan without them)."""


def train(env_fn, config: MBRLConfig = MBRLConfig(), reward_fn: str = 'pendulum',
          log: TrainingLog = None, progress=None) -> MBRLResult:
    """Learn dynamics from interaction and control with MPC on them.

    ``env_fn()`` builds one environment; ``reward_fn`` names the known reward in
    ``REWARD_FUNCTIONS`` that the planner optimises (it should be the task's).
    ``progress(step, total, metrics)`` is called after every refit.
    """
    if not isinstance(reward_fn, str) or reward_fn not in REWARD_FUNCTIONS:
        raise ValueError(f'reward_fn must name one of {tuple(REWARD_FUNCTIONS)} (a checkpoint '
                         f'stores the name, never code); got {reward_fn!r}')
    if config.random_steps < config.num_envs or config.total_steps < config.random_steps:
        raise ValueError(f'need num_envs <= random_steps <= total_steps; got num_envs '
                         f'{config.num_envs}, random_steps {config.random_steps}, total_steps '
                         f'{config.total_steps}')
    log = log or TrainingLog()
    started = time.monotonic()
    rng = seed_everything(config.seed)
    envs = make_vec_env(env_fn, config.num_envs, config.seed)
    obs, _ = envs.reset(seed=config.seed)
    obs_dim = envs.single_observation_space.shape[0]
    low = np.asarray(envs.single_action_space.low, dtype=np.float32)
    high = np.asarray(envs.single_action_space.high, dtype=np.float32)
    policy = MPCPolicy(obs_dim, low.size, reward=reward_fn,
                       ensemble_size=config.ensemble_size, hidden=config.hidden,
                       activation=config.activation, planner=config.planner, low=low,
                       high=high)
    # Built on the CPU from the seeded generator, then moved: the same start on any device.
    device = resolve_device(config.device)
    policy.to(device)
    optimizer = torch.optim.AdamW(policy.ensemble.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    buffer = ReplayBuffer(obs_dim, (low.size,), capacity=config.total_steps + config.num_envs)
    held_out = []
    running = np.zeros(config.num_envs)
    env_steps = 0
    plan_seconds, plans = 0.0, 0

    def collect(steps, act):
        nonlocal obs, running, env_steps
        for _ in range(max(1, math.ceil(steps / config.num_envs))):
            actions = act(obs)
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            done = np.logical_or(terminated, truncated)
            buffer.add(obs, actions, rewards, final_observations(next_obs, infos, done),
                       terminated)
            held_out.extend(rng.random(config.num_envs) < config.val_fraction)
            running += rewards
            env_steps += config.num_envs
            for i in np.flatnonzero(done):
                log.scalar('rollout/episode_return', running[i], env_steps)
                running[i] = 0.0
            if done.any():
                policy.reset(np.flatnonzero(done))
            obs = next_obs

    def random_actions(_):
        return rng.uniform(low, high, size=(config.num_envs, low.size)).astype(np.float32)

    def mpc_actions(batch):
        nonlocal plan_seconds, plans
        tic = time.perf_counter()
        action = policy(torch.as_tensor(batch, dtype=torch.float32, device=device)).cpu().numpy()
        plan_seconds += time.perf_counter() - tic
        plans += 1
        return action

    collect(config.random_steps, random_actions)
    val_loss = float('nan')
    fit = 0
    while True:
        n = len(buffer)
        val = np.asarray(held_out[:n], dtype=bool)
        if val.all() or not val.any():
            val = np.zeros(n, dtype=bool)
        train_rows = ~val
        loss = fit_dynamics(policy.ensemble, buffer.obs[:n][train_rows],
                            buffer.actions[:n][train_rows], buffer.next_obs[:n][train_rows],
                            config.first_fit_steps if fit == 0 else config.fit_steps,
                            optimizer, rng, batch_size=config.batch_size)
        fit += 1
        metrics = {'train/model_loss': loss}
        if val.any():
            val_loss = validation_loss(policy.ensemble, buffer.obs[:n][val],
                                       buffer.actions[:n][val], buffer.next_obs[:n][val])
            metrics['eval/model_val_loss'] = val_loss
        for name, value in metrics.items():
            log.scalar(name, value, env_steps)
        if progress:
            progress(env_steps, config.total_steps, metrics)
        if env_steps >= config.total_steps:
            break
        policy.reset()
        seconds_before, plans_before = plan_seconds, plans
        collect(min(config.steps_per_iteration, config.total_steps - env_steps), mpc_actions)
        log.scalar('rollout/plan_ms', 1000.0 * (plan_seconds - seconds_before)
                   / max(1, plans - plans_before), env_steps)
    envs.close()
    policy.reset()
    policy.cpu().eval()
    result = MBRLResult(policy=policy, log=log, config=config_dict(config),
                        seconds=time.monotonic() - started, env_steps=env_steps,
                        model_val_loss=val_loss,
                        plan_ms=1000.0 * plan_seconds / plans if plans else float('nan'))
    if config.eval_episodes:
        policy.reset()
        evaluation = evaluate_policy(
            env_fn, lambda o: policy(torch.as_tensor(o, dtype=torch.float32)[None])[0].numpy(),
            episodes=config.eval_episodes)
        result.eval_return = evaluation.mean_return
        log.scalar('eval/return', evaluation.mean_return, env_steps)
        policy.reset()
    return result

