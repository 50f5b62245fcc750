"""--device: the resolver, every trainer's setting, CPU runs equal to the default, clear refusals.

What needs a GPU (every trainer on CUDA, its checkpoint CPU tensors equal in shape to a CPU
run's) is at the end, skipped where torch sees none.
"""

import dataclasses
import json

import numpy as np
import pytest
from safetensors.numpy import load_file
import torch

from ilrl_ros.cli import main
from ilrl_ros.core.algorithms.adversarial_irl import AdversarialConfig
from ilrl_ros.core.algorithms.awr import AWRConfig
from ilrl_ros.core.algorithms.bc import BCConfig, train as train_bc
from ilrl_ros.core.algorithms.dagger import DAggerConfig
from ilrl_ros.core.algorithms.dart import DARTConfig
from ilrl_ros.core.algorithms.maxent_irl import ColouredGridConfig, MaxEntIRLConfig
from ilrl_ros.core.algorithms.rwr import RWRConfig
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.device import available_devices, resolve_device
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.training import ALGORITHMS, make_config, train_rl

CUDA = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not CUDA, reason='needs a CUDA GPU (awaits a GPU machine)')
no_gpu = pytest.mark.skipif(CUDA, reason='this machine has a CUDA GPU')

# Tiny runs: a few hundred gradient steps of small networks, well under a second each.
BC_TINY = {'steps': 60, 'batch_size': 32, 'hidden': (16, 16), 'log_every': 30}
SAC_TINY = {'learning_starts': 50, 'batch_size': 16, 'hidden': (16, 16), 'log_every': 100,
            'buffer_size': 1000}


def demonstrations(n=200, episodes=5, seed=0) -> Demonstrations:
    spec = load_spec('track_follow')
    rng = np.random.default_rng(seed)
    states = rng.uniform(-1.0, 1.0, size=(n, spec.observation.size)).astype(np.float32)
    actions = np.stack([states[:, 0] - 0.5 * states[:, 1], 0.3 * states[:, 2]], axis=1)
    return Demonstrations(observations=states, actions=actions.astype(np.float32),
                          episode=np.repeat(np.arange(episodes), n // episodes),
                          stamp_ns=np.arange(n, dtype=np.int64) * 100_000_000,
                          reward=np.full(n, np.nan),
                          spec_json=spec.to_json())


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


# ---------------------------------------------------------------- the resolver

def test_resolver_names_and_auto():
    assert resolve_device('cpu') == torch.device('cpu')
    assert resolve_device(' CPU ') == torch.device('cpu')
    assert resolve_device(torch.device('cpu')) == torch.device('cpu')
    assert resolve_device('auto').type == ('cuda' if CUDA else 'cpu')
    assert available_devices()[0] == 'cpu'
    assert len(available_devices()) == 1 + (torch.cuda.device_count() if CUDA else 0)
    for bad in ('gpu', 'cuda:', 'cuda:x', '', 'mps', 3, None):
        with pytest.raises(ValueError, match=r'--device\) must be auto, cpu, cuda or cuda:N'):
            resolve_device(bad)


@no_gpu
def test_cuda_without_a_gpu_is_refused_naming_the_flag_and_what_is_there():
    for name in ('cuda', 'cuda:0', 'cuda:3'):
        with pytest.raises(ValueError, match=r"device \(--device\) 'cuda.*' asks for CUDA, "
                                             r'but this PyTorch .* sees no CUDA GPU; '
                                             r'available: cpu \(use --device cpu or auto\)'):
            resolve_device(name)


@needs_gpu
def test_a_gpu_that_is_not_there_is_refused():
    with pytest.raises(ValueError, match=r'names GPU 99, but this machine has'):
        resolve_device('cuda:99')


# ---------------------------------------------------------------- every trainer's setting

def test_every_trainer_config_has_a_checked_device_setting():
    configs = [make_config(name) for name in ALGORITHMS if name != 'lqr']  # lqr: no training
    configs += [BCConfig(), MaxEntIRLConfig()]
    for config in configs:
        assert config.device == 'cpu', type(config).__name__
        with pytest.raises(ValueError, match=rf'{type(config).__name__}\.device must be auto, '
                                             r"cpu, cuda or cuda:N, got 'gpu'"):
            dataclasses.replace(config, device='gpu')
    # The imitation configs train a BCConfig (``bc``); GAIL / AIRL train SAC's (``sac``).
    for config_class in (RWRConfig, AWRConfig, DAggerConfig, DARTConfig):
        assert config_class().bc.device == 'cpu'
    assert AdversarialConfig(sac={'device': 'auto'}).sac.device == 'auto'
    # 'cuda' is a valid setting to write down on any machine; it is checked when training.
    assert BCConfig(device='cuda:1').device == 'cuda:1'


def test_bad_device_flag_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        main(['train', 'sac', '--task', 'pendulum', '--device', 'gpu'])
    assert "argument --device: expected auto, cpu, cuda or cuda:N; got 'gpu'" in \
        capsys.readouterr().err


# ---------------------------------------------------------------- CPU runs equal the default

def test_bc_on_cpu_and_auto_equals_the_default():
    data = demonstrations()
    default = train_bc(data, BCConfig(**BC_TINY)).policy
    same_weights(default, train_bc(data, BCConfig(**BC_TINY, device='cpu')).policy)
    if not CUDA:
        same_weights(default, train_bc(data, BCConfig(**BC_TINY, device='auto')).policy)
    # With a memory (bc_memory.py) and the mixture head too.
    gru = {**BC_TINY, 'memory': 'gru', 'memory_size': 8, 'chunk': 8, 'steps': 10}
    same_weights(train_bc(data, BCConfig(**gru)).policy,
                 train_bc(data, BCConfig(**gru, device='cpu')).policy)
    mdn = {**BC_TINY, 'head': 'mdn', 'steps': 10}
    same_weights(train_bc(data, BCConfig(**mdn)).policy,
                 train_bc(data, BCConfig(**mdn, device='cpu')).policy)


def test_sac_on_cpu_and_auto_equals_the_default():
    def run(**device):
        return train_rl('sac', task='pendulum', steps=150, eval_episodes=0,
                        overrides={**SAC_TINY, **device}).policy
    default = run()
    assert next(default.parameters()).device.type == 'cpu'
    same_weights(default, run(device='cpu'))
    if not CUDA:
        same_weights(default, run(device='auto'))


@no_gpu
def test_training_on_cuda_without_a_gpu_fails_clearly(tmp_path, capsys):
    with pytest.raises(ValueError, match=r'asks for CUDA, but this PyTorch'):
        train_rl('sac', task='pendulum', steps=60, eval_episodes=0,
                 overrides={**SAC_TINY, 'device': 'cuda'})
    with pytest.raises(ValueError, match=r'asks for CUDA'):
        train_bc(demonstrations(), BCConfig(**BC_TINY, device='cuda'))
    data = demonstrations().save(tmp_path / 'demos.npz')
    assert main(['train', 'bc', '--data', str(data), '-o', str(tmp_path / 'bc'),
                 '--device', 'cuda']) == 2
    err = capsys.readouterr().err
    assert "device (--device) 'cuda' asks for CUDA" in err and 'available: cpu' in err
    assert not (tmp_path / 'bc').exists()


def test_cli_device_flag_writes_the_same_checkpoint(tmp_path):
    data = demonstrations().save(tmp_path / 'demos.npz')
    flags = ['--steps', '40', '--batch-size', '32', '--hidden', '16,16', '--log-every', '20']
    written = {}
    for name, device in (('default', []), ('cpu', ['--device', 'cpu']),
                         ('auto', ['--device', 'auto'])):
        out = tmp_path / name
        assert main(['train', 'bc', '--data', str(data), '-o', str(out), *flags,
                     *device]) == 0
        written[name] = load_file(out / 'weights.safetensors')
        config = json.loads((out / 'manifest.json').read_text())['config']
        assert config['device'] == (device[1] if device else 'cpu')
    names = ['cpu'] + ([] if CUDA else ['auto'])
    for name in names:
        assert written[name].keys() == written['default'].keys()
        for key, value in written['default'].items():
            np.testing.assert_array_equal(written[name][key], value)


# ---------------------------------------------------------------- checkpoints

def test_saved_tensors_are_cpu_and_contiguous(tmp_path):
    """A transposed (non-contiguous) weight is saved contiguous and loads equal on the CPU.

    The device half (a CUDA-trained network saved as CPU tensors) is
    ``test_every_trainer_on_cuda_saves_cpu_checkpoints`` below, on a GPU machine.
    """
    data = demonstrations()
    policy = train_bc(data, BCConfig(**BC_TINY)).policy
    layer = next(m for m in policy.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        layer.weight = torch.nn.Parameter(layer.weight.detach().t().contiguous().t())
    assert not layer.weight.is_contiguous()
    path = save_checkpoint(tmp_path / 'ckpt', policy, algorithm='bc', spec=data.spec,
                           config={}, provenance={})
    loaded = load_checkpoint(path, data.spec).network
    for name, tensor in loaded.state_dict().items():
        assert tensor.device.type == 'cpu' and tensor.is_contiguous(), name
        assert torch.equal(tensor, policy.state_dict()[name]), name


# ---------------------------------------------------------------- on a GPU

GPU_RUNS = {
    'reinforce': {'num_envs': 2, 'episodes_per_env': 1, 'hidden': (16, 16)},
    'a2c': {'num_envs': 2, 'num_steps': 8, 'hidden': (16, 16)},
    'ppo': {'num_envs': 2, 'num_steps': 16, 'batch_size': 8, 'epochs': 2, 'hidden': (16, 16)},
    'recurrent_ppo': {'num_envs': 2, 'num_steps': 16, 'seq_len': 8, 'batch_size': 16, 'epochs': 1,
                      'hidden': (16, 16)},
    'dqn': {'learning_starts': 50, 'batch_size': 16, 'hidden': (16, 16), 'buffer_size': 500},
    'ddpg': {'learning_starts': 50, 'batch_size': 16, 'hidden': (16, 16),
             'buffer_size': 500},
    'td3': {'learning_starts': 50, 'batch_size': 16, 'hidden': (16, 16), 'buffer_size': 500},
    'sac': SAC_TINY,
    'mbrl': {'total_steps': 150, 'random_steps': 50, 'steps_per_iteration': 50,
             'num_envs': 2, 'first_fit_steps': 10, 'fit_steps': 5, 'hidden': (16, 16),
             'ensemble_size': 2},
}


@needs_gpu
@pytest.mark.parametrize('algorithm', sorted(GPU_RUNS))
def test_every_trainer_on_cuda_saves_cpu_checkpoints(algorithm, tmp_path):
    steps = 150
    run = train_rl(algorithm, task='pendulum', steps=steps, eval_episodes=1,
                   overrides={**GPU_RUNS[algorithm], 'device': 'cuda'})
    cpu = train_rl(algorithm, task='pendulum', steps=steps, eval_episodes=0,
                   overrides=GPU_RUNS[algorithm]).policy
    assert all(p.device.type == 'cpu' for p in run.policy.parameters())
    path = save_checkpoint(tmp_path / algorithm, run.policy, algorithm=algorithm,
                           spec=run.spec, config=run.config, provenance={})
    saved = load_file(path / 'weights.safetensors')
    assert saved.keys() == cpu.state_dict().keys()
    for name, value in cpu.state_dict().items():
        assert saved[name].shape == tuple(value.shape), name
    # The same seed starts from the same weights on both devices (built on the CPU, moved).
    assert run.config['device'] == 'cuda'


@needs_gpu
def test_imitation_trainers_on_cuda(tmp_path):
    data = demonstrations()
    for kwargs in ({}, {'memory': 'gru', 'memory_size': 8, 'chunk': 8},
                   {'memory': 'stack', 'history': 3, 'chunk': 8}, {'head': 'mdn'}):
        policy = train_bc(data, BCConfig(**{**BC_TINY, **kwargs}, device='cuda')).policy
        assert all(t.device.type == 'cpu' for t in policy.state_dict().values())
        path = save_checkpoint(tmp_path / str(len(kwargs)) / 'ckpt', policy, algorithm='bc',
                               spec=data.spec, config={}, provenance={})
        loaded = load_checkpoint(path, data.spec)
        assert np.all(np.isfinite(loaded.act(np.zeros(data.spec.observation.size,
                                                      np.float32))))


def _other_trainers(device: str, tmp_path) -> None:
    """GAIL / AIRL (their SAC's device), AWR (its BC's) and MaxEnt IRL, on ``device``."""
    from ilrl_ros.core.algorithms import awr, maxent_irl
    from ilrl_ros.core.algorithms.adversarial_irl import imitate_on_task
    from ilrl_ros.core.rollouts import rollout
    from ilrl_ros.core.tasks import make_env, make_expert
    spec = load_spec('pendulum')
    data = rollout(make_env(spec), make_expert(spec), episodes=1, max_episode_steps=60).data
    for method in ('gail', 'airl'):
        config = AdversarialConfig(total_steps=100, disc_batch_size=16, log_every=50,
                                   sac={**SAC_TINY, 'device': device})
        result, _, _ = imitate_on_task(method, data, 'pendulum', config, eval_episodes=0)
        for network in (result.policy, result.discriminator):
            assert all(t.device.type == 'cpu' for t in network.state_dict().values())
    result = awr.train(data, AWRConfig(value_steps=20, value_rounds=2,
                                       bc=BCConfig(**BC_TINY, device=device)))
    assert all(t.device.type == 'cpu' for t in result.policy.state_dict().values())
    problem = maxent_irl.make_coloured_grid(ColouredGridConfig(size=4, colours=3,
                                                               seed=2)).problem
    mu = maxent_irl.feature_expectations(
        problem, maxent_irl.soft_value_iteration(problem, np.array([0.7, -1.2, 0.3])).policy)
    found = maxent_irl.maxent_irl(problem, mu, MaxEntIRLConfig(device=device))
    assert found.converged and found.theta == pytest.approx([0.7, -1.2, 0.3], abs=1e-3)


def test_other_trainers_take_a_device_on_the_cpu(tmp_path):
    _other_trainers('cpu', tmp_path)


@needs_gpu
def test_other_trainers_on_cuda(tmp_path):
    _other_trainers('cuda', tmp_path)
