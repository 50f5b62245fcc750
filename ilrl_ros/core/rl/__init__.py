"""Pieces the reinforcement learning algorithms share, one concern a module.

The algorithms (``ilrl_ros.core.algorithms.*``) are one file each on top of these; none
imports another for shared code.

- ``configs``: ``RLConfig``, the base of every RL config (presets, torch settings,
  validation), and ``config_dict``.
- ``torch_settings``: ``torch_settings`` (threads, matmul precision, denormals) and
  ``seed_everything``.
- ``buffers``: the replay buffer (``ReplayBuffer``, ``TransitionBatch``) and the on-policy
  rollout (``RolloutCollector``, ``Rollout``, ``RewardScaler``).
- ``gae``: reward-to-go and generalised advantage estimation.
- ``losses``: the TD target, the critics' loss, the value loss, explained variance.
- ``optim``: ``adam``, ``Optimizer``, ``clip_grad_norm``, ``schedule``, ``polyak_update``.
- ``critics``: ``CriticEnsemble``, the Q(s, a) critics of DDPG, TD3 and SAC.
- ``vec_env``: ``make_vec_env`` and ``final_observations``.
- ``spaces``: ``box_dims`` and ``actor_critic_for_spaces``.
- ``progress``: ``Progress`` and ``EpisodeReturns``.
- ``evaluation``: ``evaluate_policy``, the one evaluation loop, and its ``Evaluation``.
- ``results``: ``RLResult``, what every RL ``train`` returns.
- ``tabular``: the Bellman backup of value and policy iteration.

Import from the module (``from ilrl_ros.core.rl.gae import gae``): this package imports
none of them, so that what needs one piece loads only that one.
"""
