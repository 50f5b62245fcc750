"""Train any of the core's reinforcement learning algorithms on a task or a gymnasium env.

One table names each algorithm's module and config; ``train_rl`` builds the environment
(our task from its spec, or a gymnasium id such as ``CartPole-v1``), picks the config
preset for it, trains, evaluates, and returns the policy network a checkpoint stores.
``ilrl train <algo>`` and the benchmarks call it.
"""

from dataclasses import dataclass, replace
import importlib
from typing import Optional

import gymnasium as gym
import numpy as np
import torch

from ilrl_ros.core.rl.evaluation import Evaluation, evaluate_policy
from ilrl_ros.core.rl.results import RLResult
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.spec import load_spec, TaskSpec
from ilrl_ros.core.tasks import make_env
from ilrl_ros.core.train_log import TrainingLog

# name -> (module, config class, what it needs)
ALGORITHMS = {
    'reinforce': ('reinforce', 'REINFORCEConfig'),
    'a2c': ('a2c', 'A2CConfig'),
    'ppo': ('ppo', 'PPOConfig'),
    'recurrent_ppo': ('ppo_recurrent', 'RecurrentPPOConfig'),
    'dqn': ('dqn', 'DQNConfig'),
    'ddpg': ('ddpg', 'DDPGConfig'),
    'td3': ('td3', 'TD3Config'),
    'sac': ('sac', 'SACConfig'),
    'mbrl': ('mbrl', 'MBRLConfig'),
    'lqr': ('lqr', 'LQRConfig'),
}
# Our tasks that equal a gymnasium environment, whose tuned presets then apply.
# pendulum_angle is Pendulum-v1 seen by its angle only: the same dynamics and reward, so the
# same settings.
PRESET_FOR_TASK = {'pendulum': 'Pendulum-v1', 'pendulum_angle': 'Pendulum-v1'}
# Model-based RL plans with a known reward of the observation; the table in mbrl.py.
MBRL_REWARD_FOR_TASK = {'pendulum': 'pendulum'}


@dataclass
class RLRun(RLResult):
    """A finished training run: ``RLResult``, which algorithm on which task, how it scored."""

    algorithm: str
    """The ``ALGORITHMS`` name."""
    spec: Optional[TaskSpec]
    """The task's spec (None for a gymnasium env id)."""
    evaluation: Optional[Evaluation]
    """The trained policy's evaluation episodes on the task (None when none were run)."""


def _module(algorithm: str):
    if algorithm not in ALGORITHMS:
        raise ValueError(f'algorithm {algorithm!r} is not known; known: '
                         f'{", ".join(sorted(ALGORITHMS))}')
    name, config_name = ALGORITHMS[algorithm]
    module = importlib.import_module(f'ilrl_ros.core.algorithms.{name}')
    return module, getattr(module, config_name)


def make_config(algorithm: str, preset: str = None, steps: int = None, seed: int = None,
                overrides: dict = None):
    """The algorithm's config: its preset for ``preset`` when it has one, then overrides."""
    _, config_class = _module(algorithm)
    fields = config_class.__dataclass_fields__
    unknown = sorted(set(overrides or {}) - set(fields))
    if unknown:
        raise ValueError(f'{algorithm} has no setting {", ".join(unknown)}; its settings: '
                         f'{", ".join(sorted(fields))}')
    chosen = {k: v for k, v in (('total_steps', steps), ('seed', seed)) if v is not None}
    overrides = {**{k: v for k, v in chosen.items() if k in fields}, **(overrides or {})}
    if preset and hasattr(config_class, 'for_env'):
        try:
            return config_class.for_env(preset, **overrides)
        except (KeyError, ValueError):
            pass
    return replace(config_class(), **overrides)


def train_rl(algorithm: str, task: str = None, env_id: str = None, steps: int = None,
             seed: int = 0, log_dir=None, progress=None, eval_episodes: int = 10,
             dqn_bins: int = 5, overrides: dict = None, action_delay_steps: int = 0,
             train_env=None) -> RLRun:
    """Train ``algorithm`` on our ``task`` (checkpointable) or a gymnasium ``env_id``.

    ``overrides`` sets config fields by name on top of the preset. ``action_delay_steps``
    applies each action that many control periods late, in training and in the evaluation
    (``make_env``; a task only), as a robot with that delay would. ``train_env`` (a task
    only) returns the one environment to train on instead of the simulator: a ``RosEnv``
    over the running graph, say (``ilrl train --ros``); the evaluation still runs in the
    task's simulator. Training runs on one
    torch thread: small networks gain nothing from more, and a busy machine makes extra
    threads spin.
    """
    with torch_settings(1):
        return _train_rl(algorithm, task, env_id, steps, seed, log_dir, progress,
                         eval_episodes, dqn_bins, overrides, action_delay_steps, train_env)


def _train_rl(algorithm, task, env_id, steps, seed, log_dir, progress, eval_episodes,
              dqn_bins, overrides, action_delay_steps=0, train_env=None) -> RLRun:
    if (task is None) == (env_id is None):
        raise ValueError('name exactly one of a task (e.g. pendulum) or a gymnasium env id')
    if action_delay_steps and env_id is not None:
        raise ValueError('action_delay_steps applies to a task only, not to a gymnasium env id')
    module, _ = _module(algorithm)
    spec = load_spec(task) if task else None
    preset = PRESET_FOR_TASK.get(spec.name) if spec else env_id
    if train_env is not None:
        if spec is None:
            raise ValueError('train_env needs a task (its spec is the contract with the graph)')
        if 'num_envs' in _module(algorithm)[1].__dataclass_fields__:
            # Over the graph there is one robot: one environment.
            overrides = {'num_envs': 1, **(overrides or {})}
    config = make_config(algorithm, preset, steps, seed, overrides)
    log = TrainingLog(log_dir)

    def base_env():
        return make_env(spec, action_delay_steps) if spec else gym.make(env_id)

    made = []

    def training_env():
        if train_env is None:
            return base_env()
        if made:
            raise ValueError(f'{algorithm} asks for a second training environment; over the '
                             'graph there is only the one robot')
        made.append(train_env())
        return made[0]

    env_fn = training_env
    if algorithm == 'dqn' and isinstance(base_env().action_space, gym.spaces.Box):
        # DQN needs discrete actions: a few torques per dimension stand for the Box.
        def env_fn():
            return module.DiscretizedActions(training_env(), bins=dqn_bins)
    if algorithm == 'lqr':
        if not spec or spec.name != 'pendulum':
            raise ValueError('lqr is designed here for the pendulum task only')
        result = module.pendulum_lqr(spec, config)
        seconds, env_steps = 0.0, 0
    elif algorithm == 'mbrl':
        reward = MBRL_REWARD_FOR_TASK.get(spec.name) if spec else None
        if reward is None:
            raise ValueError(f'mbrl needs a known reward function; it has one for '
                             f'{", ".join(MBRL_REWARD_FOR_TASK)} only')
        result = module.train(env_fn, config, reward, log=log, progress=progress)
        seconds, env_steps = result.seconds, result.env_steps
    else:
        result = module.train(env_fn, config, log=log, progress=progress)
        seconds, env_steps = result.seconds, result.env_steps
    policy = result.policy.eval()
    # Evaluated on the task itself: a network's forward gives the task's own action (a
    # discretised DQN's table maps back to torques), as the policy node will use it.
    evaluation = evaluate_policy(base_env, policy_actor(policy, base_env()),
                                 episodes=eval_episodes, seed=10_000 + seed) \
        if eval_episodes else None
    if evaluation:
        log.scalar('eval/mean_return', evaluation.mean_return, env_steps)
    log.close()
    config_dict = result.config if isinstance(result.config, dict) else vars(config)
    return RLRun(algorithm=algorithm, policy=policy, spec=spec, config=config_dict, log=log,
                 seconds=seconds, env_steps=env_steps, evaluation=evaluation)


def policy_actor(policy: torch.nn.Module, env: gym.Env):
    """``act(obs) -> action`` for an env: the network's deterministic action, env-shaped."""
    space = env.action_space
    # Where the network is (the trainers return it on the CPU; a learner's may be on a GPU).
    device = next(iter(policy.parameters()), torch.empty(0)).device

    def act(obs):
        with torch.inference_mode():
            out = policy(torch.as_tensor(np.asarray(obs, dtype=np.float32),
                                         device=device).unsqueeze(0))[0]
        out = out.cpu().numpy()
        if isinstance(space, gym.spaces.Discrete):
            return int(round(float(out[0])))
        return out.astype(space.dtype)
    if getattr(policy, 'recurrent', False):
        # evaluate_policy clears a memory between episodes through these.
        act.recurrent, act.reset = True, policy.reset
    return act
