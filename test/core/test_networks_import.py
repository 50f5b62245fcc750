"""Loading a checkpoint imports networks, never training, optimizer, environment or ROS code.

The policy node loads checkpoints next to the robot: one checkpoint of every network type
in ``NETWORK_TYPES`` is loaded in a fresh interpreter, and ``sys.modules`` is checked after.
"""

import ast
import json
from pathlib import Path
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms.lqr import pendulum_lqr
from ilrl_ros.core.checkpoint import save_checkpoint
from ilrl_ros.core.data import Normalizer
from ilrl_ros.core.networks import (
    ActorCritic,
    DeterministicActor,
    make_policy,
    MemoryActorCritic,
    MemoryPolicy,
    MixtureDensityPolicy,
    MLPPolicy,
    MPCPolicy,
    NETWORK_TYPES,
    QPolicy,
    SquashedGaussianActor,
)
from ilrl_ros.core.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
NETWORKS = REPO / 'ilrl_ros' / 'core' / 'networks'

# What a loaded checkpoint must not pull in: the simulators' API, our training code, ROS.
FORBIDDEN = ('gymnasium', 'ilrl_ros.core.algorithms', 'ilrl_ros.core.rl',
             'ilrl_ros.core.envs', 'ilrl_ros.core.experts', 'ilrl_ros.core.training',
             'ilrl_ros.core.rollouts', 'ilrl_ros.core.train_log', 'rclpy')
# Imports that mark a module as training or environment code when one of ours makes them.
TRAINING_IMPORTS = ('gymnasium', 'torch.optim', 'rclpy')


def one_of_each_type() -> dict:
    """{type: (network, task)}, a small network of every type in NETWORK_TYPES."""
    torch.manual_seed(0)
    pendulum, camera = load_spec('pendulum'), load_spec('track_follow_camera')
    mlp = MLPPolicy(3, 1, hidden=(16, 16), head='gaussian')
    mlp.set_normalization(Normalizer(mean=np.array([0.1, 0.2, 0.3]),
                                     std=np.array([1.0, 2.0, 3.0])),
                          Normalizer(mean=np.array([0.5]), std=np.array([1.5])))
    q = QPolicy(3, 5, act_dim=1, hidden=(16,), normalize_obs=True,
                action_table=np.linspace(-2.0, 2.0, 5)[:, None])
    q.set_obs_normalization([0.1, 0.1, 0.1], [2.0, 2.0, 2.0])
    mpc = MPCPolicy(3, 1, ensemble_size=2, hidden=(16, 16),
                    planner={'horizon': 5, 'num_candidates': 20, 'iterations': 2},
                    low=[-2.0], high=[2.0])
    networks = {
        'mlp': (mlp, pendulum),
        'conv': (make_policy(camera, camera.observation.size, camera.action.size,
                             hidden=(16,)), camera),
        'actor_critic': (ActorCritic(3, 1, hidden=(16, 16), low=[-2.0], high=[2.0]),
                         pendulum),
        'q_network': (q, pendulum),
        'deterministic_actor': (DeterministicActor(3, 1, [-2.0], [2.0], hidden=(16, 16)),
                                pendulum),
        'squashed_gaussian_actor': (SquashedGaussianActor(3, 1, [-2.0], [2.0],
                                                          hidden=(16, 16)), pendulum),
        'linear_feedback': (pendulum_lqr(pendulum).policy, pendulum),
        'mpc': (mpc, pendulum),
        'mdn': (MixtureDensityPolicy(3, 1, hidden=(16,), components=2), pendulum),
        'memory_mlp': (MemoryPolicy(3, 1, hidden=(16,), memory='gru', memory_size=8),
                       pendulum),
        'memory_actor_critic': (MemoryActorCritic(3, 1, hidden=(16,), memory='stack',
                                                  history=3, action_low=[-2.0],
                                                  action_high=[2.0]), pendulum),
    }
    for kind, (network, _) in networks.items():
        assert network.description()['type'] == kind
    return networks


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('networks')
    out = {}
    for kind, (network, spec) in one_of_each_type().items():
        network.eval()
        out[kind] = str(save_checkpoint(folder / kind, network, algorithm=kind, spec=spec,
                                        config={}, provenance={'test': True}))
    return out


def test_every_network_type_is_covered_and_lives_in_the_networks_package():
    assert set(one_of_each_type()) == set(NETWORK_TYPES)
    for kind, network_class in NETWORK_TYPES.items():
        assert isinstance(network_class, type), kind
        assert network_class.__module__.startswith('ilrl_ros.core.networks.'), \
            f'{kind}: {network_class.__module__}'


def test_loading_every_network_type_imports_no_training_environment_or_ros_code(checkpoints):
    code = textwrap.dedent("""
        import ast, json, sys
        from ilrl_ros.core.checkpoint import load_checkpoint
        repo, paths = sys.argv[1], json.loads(sys.argv[2])
        forbidden, training_imports = json.loads(sys.argv[3]), tuple(json.loads(sys.argv[4]))
        import ilrl_ros
        assert ilrl_ros.__file__.startswith(repo), ilrl_ros.__file__
        types = {}
        for kind, path in paths.items():
            network = load_checkpoint(path).network
            types[kind] = type(network).__module__ + '.' + type(network).__name__
        loaded = sorted(name for name, module in sys.modules.items() if module is not None)
        bad = [name for name in loaded
               if any(name == f or name.startswith(f + '.') for f in forbidden)]
        # Any module of ours that imports training or environment code, by its source.
        for name in loaded:
            if not name.startswith('ilrl_ros'):
                continue
            source = open(sys.modules[name].__file__).read()
            for node in ast.walk(ast.parse(source)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \\
                    [f'{node.module}.{a.name}' for a in node.names] \\
                    if isinstance(node, ast.ImportFrom) and node.module else []
                bad += [f'{name} imports {n}' for n in names
                        if any(n == t or n.startswith(t + '.') for t in training_imports)]
        print(json.dumps({'types': types, 'bad': bad,
                          'ours': [n for n in loaded if n.startswith('ilrl_ros')]}))
    """)
    result = subprocess.run(
        [sys.executable, '-c', code, str(REPO), json.dumps(checkpoints),
         json.dumps(FORBIDDEN), json.dumps(TRAINING_IMPORTS)],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report['types']) == set(NETWORK_TYPES)
    for kind, name in report['types'].items():
        assert name.startswith('ilrl_ros.core.networks.'), (kind, name)
    assert report['bad'] == [], (report['bad'], report['ours'])


def test_the_networks_package_imports_no_training_environment_or_ros_code():
    for path in sorted(NETWORKS.glob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f'{node.module}.{alias.name}' for alias in node.names]
            else:
                continue
            for name in names:
                assert not any(name == f or name.startswith(f + '.')
                               for f in FORBIDDEN + TRAINING_IMPORTS), \
                    f'{path.relative_to(REPO)} imports {name}'
