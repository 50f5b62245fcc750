r"""Partial observability: memoryless policies against policies with memory.

On a pendulum whose velocity is hidden (task ``pendulum_angle``: cos and sin of the angle
only).

Behavior cloning from the swing-up expert's demonstrations (the expert sees the full state,
the learner only what the task observes; executed actions carry Gaussian noise, labels are
the clean expert action, as ``ilrl collect --noise-std``), and recurrent PPO
(``ilrl train recurrent_ppo``), each with three networks: no memory (``memory none`` for BC,
``stack`` of 1 for PPO: the same MLP), a stack of the last ``--history`` observations, and a
GRU. The full-state ``pendulum`` with the memoryless network is the reference. Every policy
is evaluated alone on ``--eval-episodes`` episodes from fixed seeds; its memory is cleared
as each starts. Prints one table per learner: mean return (and its spread over seeds) and
training time.

Examples::

    PYTHONPATH=. nice -n 10 .venv/bin/python bench/partial_observability.py
    PYTHONPATH=. nice -n 10 .venv/bin/python bench/partial_observability.py --skip-rl \\
        --seeds 0 1 2
    PYTHONPATH=. .venv/bin/python bench/partial_observability.py \\
        --report bench/results/partial_observability.json

Data flow: expert -> rollout(noise) -> Demonstrations -> bc.train(memory=...) -> evaluate;
task env -> ppo_recurrent.train(memory=...) -> evaluate.
"""

import argparse
import json
from pathlib import Path
import time

import numpy as np

OUT = Path(__file__).parent / 'results' / 'partial_observability.json'
TASKS = ('pendulum_angle', 'pendulum')


def _variants(history: int) -> list:
    return [('none', 'MLP, no memory', {'memory': 'none'}),
            ('stack', f'stack of {history}', {'memory': 'stack', 'history': history}),
            ('gru', 'GRU', {'memory': 'gru'})]


def run_bc(args) -> list:
    from ilrl_ros.core.algorithms.bc import BCConfig, train
    from ilrl_ros.core.experts.teacher import make_named_expert
    from ilrl_ros.core.rl.evaluation import evaluate_policy
    from ilrl_ros.core.rollouts import rollout
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env
    rows = []
    for task in TASKS:
        spec = load_spec(task)
        for seed in args.seeds:
            data = rollout(make_env(spec), make_named_expert(spec, 'scripted'),
                           episodes=args.bc_episodes, noise=[args.noise_std],
                           seed=1000 * seed).data
            for memory, label, settings in _variants(args.history):
                if task == 'pendulum' and memory != 'none':
                    continue
                config = BCConfig(steps=args.bc_steps, seed=seed, hidden=(64, 64),
                                  **settings)
                result = train(data, config)
                score = evaluate_policy(make_env(spec), result.policy,
                                        episodes=args.eval_episodes, seed=10_000 + seed)
                rows.append(_row('bc', task, memory, label, seed, score, result.seconds))
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _row(learner: str, task: str, memory: str, label: str, seed: int, score,
         seconds: float) -> dict:
    """One table row: the run's evaluation (mean return, success rate) and training time."""
    return {'learner': learner, 'task': task, 'memory': memory, 'label': label, 'seed': seed,
            'mean_return': score.mean_return,
            'success_rate': float(np.mean([e.success for e in score.episodes])),
            'train_s': seconds}


def run_rl(args) -> list:
    from ilrl_ros.core.training import train_rl
    rows = []
    for task in TASKS:
        for seed in args.seeds:
            for memory, label, settings in _variants(args.history):
                if task == 'pendulum' and memory != 'none':
                    continue
                overrides = dict(settings)
                if memory == 'none':
                    overrides = {'memory': 'stack', 'history': 1}
                run = train_rl('recurrent_ppo', task=task, steps=args.rl_steps, seed=seed,
                               eval_episodes=args.eval_episodes, overrides=overrides)
                score = run.evaluation
                rows.append(_row('recurrent_ppo', task, memory, label, seed, score,
                                 run.seconds))
                print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list, learner: str) -> str:
    """A Markdown table of one learner's rows: mean over seeds (min to max)."""
    lines = ['| task | policy | mean return | (min, max over seeds) | success | train s |',
             '|---|---|---|---|---|---|']
    keys = []
    for row in rows:
        key = (row['task'], row['memory'], row['label'])
        if row['learner'] == learner and key not in keys:
            keys.append(key)
    for task, memory, label in keys:
        mine = [r for r in rows if r['learner'] == learner and r['task'] == task
                and r['memory'] == memory]
        returns = [r['mean_return'] for r in mine]
        lines.append(f'| {task} | {label} | {np.mean(returns):.1f} | ({min(returns):.1f}, '
                     f'{max(returns):.1f}) | '
                     f'{np.mean([r["success_rate"] for r in mine]):.0%} | '
                     f'{np.mean([r["train_s"] for r in mine]):.0f} |')
    return '\n'.join(lines)


def report(saved: list) -> None:
    """Print the tables of one or more saved runs, their rows together."""
    rows = [row for results in saved for row in results['rows']]

    def settings(learner):
        mine = [r for r in saved if any(row['learner'] == learner for row in r['rows'])]
        seeds = sorted({row['seed'] for r in mine for row in r['rows']
                        if row['learner'] == learner})
        return (mine[0]['args'], seeds) if mine else (None, seeds)

    a, seeds = settings('bc')
    if a:
        print(f'\nBehavior cloning: {a["bc_episodes"]} expert episodes (noise std '
              f'{a["noise_std"]}), {a["bc_steps"]} gradient steps, seeds {seeds}; '
              f'{a["eval_episodes"]} evaluation episodes per seed')
        print(table(rows, 'bc'))
    a, seeds = settings('recurrent_ppo')
    if a:
        print(f'\nRecurrent PPO: {a["rl_steps"]} environment steps, seeds {seeds}; '
              f'{a["eval_episodes"]} evaluation episodes per seed')
        print(table(rows, 'recurrent_ppo'))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='example:\n  PYTHONPATH=. nice -n 10 .venv/bin/python '
               'bench/partial_observability.py --skip-rl')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='seeds (default: 0)')
    parser.add_argument('--history', type=int, default=3,
                        help='observations in the stack (default: %(default)s)')
    parser.add_argument('--bc-episodes', type=int, default=20,
                        help='expert episodes per seed (default: %(default)s)')
    parser.add_argument('--noise-std', type=float, default=0.5,
                        help="std of the noise on the expert's executed torque "
                        '(default: %(default)s)')
    parser.add_argument('--bc-steps', type=int, default=3000,
                        help='BC gradient steps (default: %(default)s)')
    parser.add_argument('--rl-steps', type=int, default=40_000,
                        help='PPO environment steps (default: %(default)s)')
    parser.add_argument('--eval-episodes', type=int, default=10,
                        help='evaluation episodes per policy (default: %(default)s)')
    parser.add_argument('--skip-rl', action='store_true', help='behavior cloning only')
    parser.add_argument('--skip-bc', action='store_true', help='recurrent PPO only')
    parser.add_argument('--out', type=Path, default=OUT,
                        help='JSON of every row (default: %(default)s)')
    parser.add_argument('--report', type=Path, nargs='+', default=None,
                        help='reprint the tables of saved JSONs (their rows together) and run '
                        'nothing')
    args = parser.parse_args(argv)
    if args.report:
        report([json.loads(path.read_text()) for path in args.report])
        return 0
    import torch
    torch.set_num_threads(1)  # small networks gain nothing from more; a busy CPU loses
    started = time.monotonic()
    rows = ([] if args.skip_bc else run_bc(args)) + ([] if args.skip_rl else run_rl(args))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    results = {'args': settings, 'rows': rows, 'seconds': time.monotonic() - started}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + '\n')
    report([results])
    print(f'\n{time.monotonic() - started:.0f} s; wrote {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
