"""CPU against CUDA: behavior cloning on the camera task and SAC on the pendulum, timed.

Three fixed amounts of work, each run once per device (``--devices``, default cpu and
cuda), the same seed, the same settings as ``ilrl train`` uses them except for the
``device``:

=========  ==============================================================================
bc_camera  ``--bc-steps`` gradient steps of behavior cloning (the conv policy of
           ``track_follow_camera``: a 32x24 image and odometry velocity; batch 256) on
           the scripted expert's demonstrations (``--bc-episodes`` episodes)
sac_update ``--sac-updates`` SAC gradient steps (256x256 actor and two critics, batch
           256) on a replay buffer of random pendulum transitions: sampling on the CPU,
           the minibatch copied to the device, one step
sac_train  ``ilrl train sac --task pendulum --steps --sac-steps`` (uniform warm-up for
           half the steps, at most 1000, then one update per step, acting on the training
           device every step)
=========  ==============================================================================

Each is timed after a short warm-up run on the same device (CUDA's context, kernels and
allocator start there), with ``torch.cuda.synchronize()`` before the clock stops; training
runs on one CPU thread, as ``ilrl train`` does. Printed: seconds per device and the CPU /
CUDA ratio (above 1: the GPU is faster); a device that is not there prints
``CUDA not available``. ``--out`` writes the figures as JSON. Nothing is asserted.

Examples::

    python bench/device.py
    python bench/device.py --out bench/results/device.json
    python bench/device.py --devices cuda --bc-steps 2000 --sac-updates 5000 --sac-steps 5000
"""

import argparse
import json
from pathlib import Path
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ilrl_ros.core.algorithms.bc import BCConfig, train as train_bc  # noqa: E402
from ilrl_ros.core.algorithms.sac import SACConfig, SACLearner  # noqa: E402
from ilrl_ros.core.device import resolve_device  # noqa: E402
from ilrl_ros.core.rl.torch_settings import torch_settings  # noqa: E402
from ilrl_ros.core.rollouts import rollout  # noqa: E402
from ilrl_ros.core.spec import load_spec  # noqa: E402
from ilrl_ros.core.tasks import make_env, make_expert  # noqa: E402
from ilrl_ros.core.training import train_rl  # noqa: E402


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed(device: torch.device, work) -> float:
    _synchronize(device)
    started = time.perf_counter()
    work()
    _synchronize(device)
    return time.perf_counter() - started


def bc_camera(device: torch.device, steps: int, episodes: int) -> float:
    """Seconds of ``steps`` BC gradient steps on camera demonstrations."""
    spec = load_spec('track_follow_camera')
    data = rollout(make_env(spec), make_expert(spec), episodes=episodes, seed=0,
                   max_episode_steps=400).data

    def run(n):
        train_bc(data, BCConfig(steps=n, log_every=max(1, n), seed=0, device=str(device)))
    run(5)  # warm-up
    return _timed(device, lambda: run(steps))


def sac_update(device: torch.device, updates: int) -> float:
    """Seconds of ``updates`` SAC gradient steps on random pendulum transitions."""
    spec = load_spec('pendulum')
    env = make_env(spec)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    learner = SACLearner(env.observation_space.shape[0], env.action_space.shape[0],
                         env.action_space.low, env.action_space.high,
                         SACConfig(lr=1e-3, device=str(device)))
    buffer = learner.make_buffer(10_000)
    obs, _ = env.reset(seed=0)
    for _ in range(5000):
        action = rng.uniform(-1.0, 1.0, learner.act_dim).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(learner.to_env(action))
        buffer.add(np.reshape(obs, (1, -1)), action[None], [reward],
                   np.reshape(next_obs, (1, -1)), [float(terminated)])
        obs = env.reset()[0] if terminated or truncated else next_obs

    def run(n):
        for _ in range(n):
            learner.update(buffer.sample(256, rng))
    run(20)  # warm-up
    return _timed(device, lambda: run(updates))


def sac_train(device: torch.device, steps: int) -> float:
    """Seconds of ``ilrl train sac --task pendulum --steps steps`` (no evaluation)."""
    def run(n):
        train_rl('sac', task='pendulum', steps=n, eval_episodes=0,
                 overrides={'learning_starts': min(1000, n // 2), 'device': str(device)})
    run(60)  # warm-up
    return _timed(device, lambda: run(steps))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--devices', nargs='+', default=['cpu', 'cuda'],
                        help='devices to time (default: cpu cuda)')
    parser.add_argument('--bc-steps', type=int, default=200,
                        help='BC gradient steps on the camera task (default: %(default)s)')
    parser.add_argument('--bc-episodes', type=int, default=2,
                        help='expert episodes of camera demonstrations (default: %(default)s)')
    parser.add_argument('--sac-updates', type=int, default=500,
                        help='SAC gradient steps on random transitions (default: %(default)s)')
    parser.add_argument('--sac-steps', type=int, default=1500,
                        help='environment steps of `ilrl train sac` (default: %(default)s)')
    parser.add_argument('--out', default=None, help='JSON file of the figures')
    args = parser.parse_args(argv)
    jobs = {'bc_camera': lambda d: bc_camera(d, args.bc_steps, args.bc_episodes),
            'sac_update': lambda d: sac_update(d, args.sac_updates),
            'sac_train': lambda d: sac_train(d, args.sac_steps)}
    work = {'bc_camera': f'{args.bc_steps} BC steps, batch 256',
            'sac_update': f'{args.sac_updates} SAC updates, batch 256',
            'sac_train': f'{args.sac_steps} env steps of ilrl train sac'}
    seconds = {name: {} for name in jobs}
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    print(f'torch {torch.__version__}, {platform.processor() or platform.machine()}, '
          f'CUDA {"available: " + gpu if gpu else "not available"}')
    with torch_settings(1):
        for name, job in jobs.items():
            for device_name in args.devices:
                try:
                    device = resolve_device(device_name)
                except ValueError:
                    print(f'{name} on {device_name}: CUDA not available')
                    seconds[name][device_name] = None
                    continue
                seconds[name][device_name] = round(job(device), 3)
                print(f'{name} on {device_name}: {seconds[name][device_name]:.2f} s '
                      f'({work[name]})', flush=True)
    print('\n| work | ' + ' | '.join(f'{d} s' for d in args.devices) + ' | cpu / cuda |')
    print('|---' * (len(args.devices) + 2) + '|')
    for name in jobs:
        cells = [f'{seconds[name][d]:.2f}' if seconds[name][d] is not None
                 else 'CUDA not available' for d in args.devices]
        cpu, cuda = seconds[name].get('cpu'), seconds[name].get('cuda')
        ratio = f'{cpu / cuda:.2f}' if cpu and cuda else 'n/a'
        print(f'| {name} ({work[name]}) | ' + ' | '.join(cells) + f' | {ratio} |')
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            'torch': torch.__version__, 'cuda': gpu, 'settings': vars(args),
            'seconds': seconds}, indent=2) + '\n')
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
