"""The command line explains itself, nodes are where ROS looks, and the code is lint-clean."""

import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

from ilrl_ros.nodes import start
from ilrl_ros.nodes.start import NODES
from ilrl_testing import REPO

SUBCOMMANDS = [[], ['demo'], ['sim'], ['convert'], ['train'], ['train', 'bc'], ['train', 'rwr'],
               ['train', 'awr'], ['evaluate'], ['info'], ['collect'], ['dagger'], ['export'],
               ['import'], ['bag'], ['bag', 'reindex']]


def _ilrl(*args, check=True):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, '-m', 'ilrl_ros.cli', *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=check)


@pytest.mark.parametrize('words', SUBCOMMANDS, ids=lambda w: ' '.join(w) or 'ilrl')
def test_every_command_has_help(words):
    out = _ilrl(*words, '--help').stdout
    assert 'usage: ilrl' in out
    assert len(out.splitlines()) > 4


@pytest.mark.parametrize('node', NODES)
def test_every_node_module_is_runnable(node):
    module = __import__(f'ilrl_ros.nodes.{node}', fromlist=['main'])
    assert callable(module.main)
    assert module.__doc__ and len(module.__doc__.split()) > 10
    assert callable(getattr(start, node)), 'the console script enters through nodes/start.py'


def test_setup_installs_every_node_through_the_start_module():
    text = (REPO / 'setup.py').read_text()
    listed = re.search(r'^nodes = \[([^\]]*)\]', text, re.M).group(1)
    assert tuple(re.findall(r"'(\w+)'", listed)) == NODES
    assert 'nodes.start:{node}' in text


def test_bad_input_to_the_cli_is_a_sentence_not_a_traceback(tmp_path):
    result = _ilrl('convert', str(tmp_path / 'nothing'), '--task', 'track_follow', '-o',
                   str(tmp_path / 'out.npz'), check=False)
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr
    assert str(tmp_path / 'nothing') in result.stderr
    result = _ilrl('evaluate', '--checkpoint', str(tmp_path), check=False)
    assert result.returncode == 2 and 'manifest.json' in result.stderr


def test_train_and_evaluate_from_the_command_line(tmp_path):
    """A dataset from the simulator's expert, trained and evaluated through `ilrl`."""
    import numpy as np
    from ilrl_ros.core.data import Demonstrations
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env, make_expert

    spec = load_spec('pendulum')
    env, expert = make_env(spec), make_expert(spec)
    rows = []
    for episode in range(3):
        obs, _ = env.reset(seed=episode)
        for _ in range(200):
            action = expert.act(env.readings())
            rows.append((obs, action, episode))
            obs, *_ = env.step(action)
    data = Demonstrations(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                          np.array([r[2] for r in rows]), np.arange(len(rows)),
                          np.full(len(rows), np.nan), spec.to_json())
    data.save(tmp_path / 'data.npz')
    _ilrl('train', 'bc', '--data', str(tmp_path / 'data.npz'), '-o', str(tmp_path / 'ckpt'),
          '--steps', '300', '--hidden', '32,32', '--log-dir', str(tmp_path / 'logs'))
    assert (tmp_path / 'ckpt' / 'manifest.json').is_file()
    assert (tmp_path / 'logs' / 'curves.png').stat().st_size > 0
    out = _ilrl('evaluate', '--checkpoint', str(tmp_path / 'ckpt'), '--episodes', '2').stdout
    assert '| policy | episodes | success rate |' in out
    info = _ilrl('info', str(tmp_path / 'ckpt')).stdout
    assert '"algorithm": "bc"' in info


def test_pip_installs_put_node_launchers_where_ros2_run_looks():
    """`ros2 run ilrl_ros <node>` finds <prefix>/lib/ilrl_ros/<node> (ament convention)."""
    lib = Path(sys.prefix) / 'lib' / 'ilrl_ros'
    if not lib.is_dir():
        pytest.skip(f'ilrl_ros is not installed into {sys.prefix} (run `make test`)')
    for node in ['mock_robot', 'observation', 'policy', 'reward_monitor', 'episode_manager',
                 'demo_recorder', 'expert']:
        launcher = lib / node
        assert launcher.is_file() and os.access(launcher, os.X_OK), launcher
    marker = Path(sys.prefix) / 'share' / 'ament_index' / 'resource_index' / 'packages'
    assert (marker / 'ilrl_ros').is_file()
    result = subprocess.run([str(lib / 'policy'), '--ros-args', '-p', 'task:=no_such_task'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and 'no_such_task' in result.stdout + result.stderr
    # `ros2 run ilrl_ros ilrl ...` works the same after colcon and after pip.
    help_text = subprocess.run([str(lib / 'ilrl'), '--help'], capture_output=True, text=True,
                               timeout=60)
    assert help_text.returncode == 0 and 'convert' in help_text.stdout, help_text.stderr
    # The installed package, run from elsewhere, finds its bundled task specs.
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'AMENT_PREFIX_PATH')}
    found = subprocess.run([sys.executable, '-c', 'from ilrl_ros.core.spec import load_spec; '
                            'print(load_spec("track_follow").name)'], cwd='/', env=env,
                           capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == 'track_follow', found.stderr


def test_ruff_finds_nothing():
    ruff = shutil.which('ruff') or str(Path(sys.executable).parent / 'ruff')
    result = subprocess.run([ruff, 'check', '.'], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
