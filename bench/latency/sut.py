"""The systems under test: their checkpoint, the bare floor's plan, their command lines."""

from pathlib import Path
import sys

BARE = Path(__file__).resolve().parent / 'bare.py'


def make_checkpoint(spec, folder: Path, hidden: list, seed: int) -> Path:
    """Write an MLP checkpoint with random weights for the task (latency needs no training)."""
    import torch
    from ilrl_ros.core.checkpoint import save_checkpoint
    from ilrl_ros.core.networks import MLPPolicy

    torch.manual_seed(seed)
    policy = MLPPolicy(spec.observation.size, spec.action.size, hidden=tuple(hidden))
    return save_checkpoint(folder / 'checkpoint', policy, algorithm='random_init', spec=spec,
                           config={'hidden': hidden, 'seed': seed},
                           provenance={'made_by': 'bench/loop_latency.py'})


def bare_plan(spec, checkpoint: Path) -> dict:
    """What the bare floor needs to know, as plain JSON (it cannot import ilrl_ros)."""
    from ilrl_ros.core.checkpoint import load_checkpoint, WEIGHTS

    loaded = load_checkpoint(checkpoint, expected_spec=spec)
    network = loaded.manifest['network']
    if network.get('type') != 'mlp' or network.get('head') != 'deterministic':
        raise SystemExit(f'checkpoint {checkpoint}: the bare floor rebuilds deterministic MLPs '
                         f'only; this one is {network}')
    obs = spec.observation
    return {
        'weights': str(Path(checkpoint) / WEIGHTS),
        'network': network,
        'sources': [{'name': n, 'topic': spec.sources[n].topic,
                     'message_type': spec.sources[n].message_type} for n in obs.sources],
        'fields': [{'source': f.source, 'kind': f.kind, 'bins': f.bins,
                    'max_range': f.max_range, 'components': list(f.components),
                    'joints': list(f.joints), 'scale': f.scale.tolist(),
                    'offset': f.offset.tolist()} for f in obs.fields],
        'sync_tolerance_ns': int(obs.sync_tolerance_s * 1e9),
        'action': {'type': spec.action.type, 'stamped': spec.action.stamped,
                   'topic': spec.action.topic, 'fields': list(spec.action.fields),
                   'message_type': spec.action.message_type,
                   'low': spec.action.low.tolist(), 'high': spec.action.high.tolist()},
    }


def sut_command(system: str, task: str, checkpoint: Path, plan_path: Path,
                mode: str = 'event', rate_hz: float = 0.0) -> list:
    """The command line of a SUT process."""
    if system in ('bare', 'echo'):
        return [sys.executable, str(BARE), '--plan', str(plan_path)] + (
            ['--echo'] if system == 'echo' else [])
    command = [sys.executable, '-m', 'ilrl_ros.nodes.policy', '--ros-args',
               '-p', f'task:={task}', '-p', f'checkpoint:={checkpoint}', '-p', f'mode:={mode}']
    if mode == 'timer':
        command += ['-p', f'control_rate_hz:={rate_hz:.1f}']
    return command


class Sut:
    """Builds the command lines of the SUT processes; holds the work folder."""

    def __init__(self, task: str, checkpoint: Path, plan_path: Path, work: Path):
        self.task, self.checkpoint, self.plan_path, self.work = task, checkpoint, plan_path, work

    def __call__(self, system: str, mode: str = 'event', rate_hz: float = 0.0) -> list:
        return sut_command(system, self.task, self.checkpoint, self.plan_path, mode, rate_hz)
