"""Simulated robots and MDPs for the learning core: corridor robot, pendulum, gridworld.

Importing this package registers the lectures' 4x3 gridworld with gymnasium as
``ilrl/Gridworld4x3-v0`` (one-hot observations), so ``gym.make`` and ``ilrl train ... --env``
find it.
"""

import gymnasium as gym

if 'ilrl/Gridworld4x3-v0' not in gym.registry:
    gym.register(id='ilrl/Gridworld4x3-v0',
                 entry_point='ilrl_ros.core.envs.gridworld:make_gridworld_env')
