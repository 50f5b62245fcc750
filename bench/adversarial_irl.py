"""GAIL and AIRL against behavior cloning on the pendulum, and AIRL's reward re-optimised.

Part 1 (the target): from ``--demos`` expert episodes (the scripted swing-up expert, start
states drawn as Pendulum-v1 draws them), train BC, GAIL and AIRL (SAC inside, reward from
the discriminator, never the task's) for each seed, and score the deterministic policies on
the same ``--eval-episodes`` start states (seeds 10000 + k) as the expert and a uniformly
random policy. The normalised score is (return - random) / (expert - random); the target is
at least 0.9 for GAIL and AIRL from at most 10 demonstration episodes.

Part 2 (transfer, ``--transfer``): demonstrations start hanging down (|theta| >= 3/4 pi,
|theta_dot| <= 1) and GAIL and AIRL train from those starts; the policies are then scored
from start states the expert never used (near upright, spinning: |theta| <= pi/2,
4 <= |theta_dot| <= 8), and AIRL's learned state-only reward g(s) is re-optimised with SAC
from those new starts (``LearnedReward``: the task's reward is never used). BC from the
same demonstrations, the expert and random from the new starts are the references.

Results: ``--out`` (default bench/results/adversarial_irl.json) holds every run and episode;
the tables are printed (``--report FILE`` reprints them from a saved JSON). Runs go to
``--workers`` processes (one torch thread each). Nothing is asserted.

Examples::

    PYTHONPATH=. python bench/adversarial_irl.py                      # part 1, 3 seeds
    PYTHONPATH=. python bench/adversarial_irl.py --transfer --seeds 0 --workers 2
    PYTHONPATH=. python bench/adversarial_irl.py --seeds 0 --steps 3000 --eval-episodes 3
    PYTHONPATH=. python bench/adversarial_irl.py --report bench/results/adversarial_irl.json
"""

import argparse
from concurrent.futures import ProcessPoolExecutor
import json
import math
from pathlib import Path
import sys
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Demonstration and transfer start ranges: (|theta| range, |theta_dot| range).
HANGING = ((0.75 * math.pi, math.pi), (0.0, 1.0))
SPINNING_UP = ((0.0, 0.5 * math.pi), (4.0, 8.0))


class StartRange:
    """The pendulum env with start states drawn from |theta| and |theta_dot| ranges.

    Signs at random; every other attribute is the wrapped env's.
    """

    def __init__(self, env, ranges):
        self.env, self.ranges = env, ranges
        self._rng = np.random.default_rng(0)

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        (a0, a1), (v0, v1) = self.ranges
        theta = self._rng.choice([-1.0, 1.0]) * self._rng.uniform(a0, a1)
        speed = self._rng.choice([-1.0, 1.0]) * self._rng.uniform(v0, v1)
        return self.env.reset(seed=seed, options={'state': (theta, speed)})

    def step(self, action):
        return self.env.step(action)

    def close(self):
        self.env.close()


def make_env(ranges=None):
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env as make_task_env
    env = make_task_env(load_spec('pendulum'))
    return StartRange(env, ranges) if ranges else env


def _returns(evaluation) -> list:
    return [float(r) for r in evaluation.returns]


def references(ranges, episodes: int) -> dict:
    """The expert's and a uniformly random policy's returns from seeds 10000 + k."""
    from ilrl_ros.core.rl.evaluation import evaluate_policy
    from ilrl_ros.core.rollouts import rollout
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_expert
    spec = load_spec('pendulum')
    expert = rollout(make_env(ranges), make_expert(spec), episodes=episodes, seed=10_000)
    rng = np.random.default_rng(123)
    random = evaluate_policy(lambda: make_env(ranges),
                             lambda obs: rng.uniform(-2.0, 2.0, 1).astype(np.float32),
                             episodes=episodes, seed=10_000)
    return {'expert': [float(e.episode_return) for e in expert.episodes],
            'random': _returns(random)}


def demonstrations(episodes: int, ranges=None):
    from ilrl_ros.core.rollouts import rollout
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_expert
    return rollout(make_env(ranges), make_expert(load_spec('pendulum')), episodes=episodes,
                   seed=0).data


def run_one(job: dict) -> dict:
    """One training run (a worker process): BC, GAIL, AIRL (+ its reward re-optimised)."""
    import torch
    torch.set_num_threads(1)
    from ilrl_ros.core.algorithms import adversarial_irl as airl_module
    from ilrl_ros.core.algorithms.bc import BCConfig, train as train_bc
    from ilrl_ros.core.algorithms.sac import SACConfig, train as train_sac
    from ilrl_ros.core.rl.evaluation import evaluate_policy
    method, seed, part = job['method'], job['seed'], job['part']
    train_ranges = HANGING if part == 'transfer' else None
    eval_ranges = SPINNING_UP if part == 'transfer' else None
    data = demonstrations(job['demos'], train_ranges)
    started = time.monotonic()
    out = {'method': method, 'seed': seed, 'part': part, 'demos': job['demos']}
    if method == 'bc':
        policy = train_bc(data, BCConfig(seed=seed)).policy
    else:
        config = airl_module.AdversarialConfig(
            total_steps=job['steps'], seed=seed, sac=SACConfig(**job['sac']), **job['adv'])
        result = airl_module.train(method, data, lambda: make_env(train_ranges), config)
        policy = result.policy
        out['train_return_last10'] = result.log.series('rollout/ep_return')[1][-10:]
    out['train_seconds'] = time.monotonic() - started
    out['returns'] = _returns(evaluate_policy(lambda: make_env(eval_ranges), policy,
                                              episodes=job['eval_episodes'], seed=10_000))
    if part == 'transfer' and method == 'airl':
        # Re-optimise g(s) with SAC from the new start states; the task's reward is unused.
        started = time.monotonic()
        reward_net = result.discriminator

        def learned_env():
            return airl_module.LearnedReward(make_env(eval_ranges), reward_net)
        sac = train_sac(learned_env, SACConfig(**{**job['sac'], 'total_steps': job['steps'],
                                                  'seed': seed}))
        out['reoptimised_seconds'] = time.monotonic() - started
        out['reoptimised_returns'] = _returns(evaluate_policy(
            lambda: make_env(eval_ranges), sac.policy, episodes=job['eval_episodes'],
            seed=10_000))
    return out


def score(returns, ref) -> float:
    expert, random = np.mean(ref['expert']), np.mean(ref['random'])
    return float((np.mean(returns) - random) / (expert - random))


def table(results: dict, part: str) -> str:
    ref = results['references'][part]
    rows = [('expert (scripted)', [ref['expert']], None), ('random', [ref['random']], None)]
    runs = [r for r in results['runs'] if r['part'] == part]
    names = {'bc': 'BC', 'gail': 'GAIL', 'airl': 'AIRL'}
    for method in ('bc', 'gail', 'airl'):
        mine = sorted((r for r in runs if r['method'] == method), key=lambda r: r['seed'])
        if mine:
            rows.append((f'{names[method]}' + (' (policy as trained)' if part == 'transfer'
                                               and method != 'bc' else ''),
                         [r['returns'] for r in mine], mine))
    mine = [r for r in runs if 'reoptimised_returns' in r]
    if mine:
        rows.append(('AIRL g(s) re-optimised by SAC', [r['reoptimised_returns'] for r in mine],
                     mine))
    lines = ['| policy | seeds | return (mean over seeds) | per seed | normalised score | '
             'per seed | train s/run |', '|---|---|---|---|---|---|---|']
    for name, per_seed, runs_ in rows:
        means = [float(np.mean(r)) for r in per_seed]
        scores = [score(r, ref) for r in per_seed]
        seconds = '' if runs_ is None else f'{np.mean([r["train_seconds"] for r in runs_]):.0f}'
        if runs_ is not None and name.startswith('AIRL g'):
            seconds = f'{np.mean([r["reoptimised_seconds"] for r in runs_]):.0f}'
        lines.append(f'| {name} | {len(per_seed) if runs_ else "-"} | {np.mean(means):.1f} | '
                     + ', '.join(f'{m:.0f}' for m in means) + f' | {np.mean(scores):.2f} | '
                     + ', '.join(f'{s:.2f}' for s in scores) + f' | {seconds} |')
    return '\n'.join(lines)


def report(results: dict) -> None:
    settings = results['settings']
    for part, title in (('main', 'Pendulum-v1 starts'), ('transfer', 'transfer')):
        if part not in results['references']:
            continue
        if part == 'main':
            print(f'\n{title}: {settings["demos"]} demonstration episodes, '
                  f'{settings["steps"]} environment steps per GAIL/AIRL run (AIRL with '
                  f'g({"s" if settings.get("main_airl") == "state" else "s, a"})), '
                  f'{settings["eval_episodes"]} evaluation episodes (seeds 10000+k)')
        else:
            print(f'\n{title}: demonstrations and GAIL/AIRL training start hanging '
                  f'(|theta| >= 3/4 pi, |theta_dot| <= 1); evaluated from |theta| <= pi/2, '
                  f'4 <= |theta_dot| <= 8 (never demonstrated)')
        print(table(results, part))
        if part == 'main':
            ref = results['references'][part]
            for method in ('gail', 'airl'):
                runs = [r for r in results['runs'] if r['part'] == part
                        and r['method'] == method]
                if runs:
                    mean = float(np.mean([score(r['returns'], ref) for r in runs]))
                    print(f'target: {method.upper()} normalised score >= 0.90 from '
                          f'{settings["demos"]} demonstrations: {mean:.2f}, '
                          f'{"met" if mean >= 0.9 else "NOT met"}')
    print(f'\n(score = (return - random) / (expert - random); {settings["machine"]}, '
          f'{results.get("seconds", 0):.0f} s in all)')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__[__doc__.index('Examples::'):])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--demos', type=int, default=10, help='demonstration episodes')
    parser.add_argument('--steps', type=int, default=10_000,
                        help='environment steps per GAIL / AIRL / re-optimisation run')
    parser.add_argument('--eval-episodes', type=int, default=10)
    parser.add_argument('--hidden', default='64,64', help="SAC's hidden widths")
    parser.add_argument('--transfer', action='store_true', help='also run part 2')
    parser.add_argument('--main-airl', choices=('state', 'state-action'), default='state',
                        help="part 1's AIRL reward term: g(s) or g(s, a) (part 2 always g(s))")
    parser.add_argument('--no-main', action='store_true', help='skip part 1')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--out', default=str(ROOT / 'bench/results/adversarial_irl.json'))
    parser.add_argument('--report', default=None, help='reprint the tables of a saved JSON')
    args = parser.parse_args(argv)
    if args.report:
        report(json.loads(Path(args.report).read_text()))
        return 0
    sac = {'lr': 1e-3, 'learning_starts': 1000,
           'hidden': tuple(int(h) for h in args.hidden.split(','))}
    parts = ([] if args.no_main else ['main']) + (['transfer'] if args.transfer else [])
    jobs = []
    for part in parts:
        seeds = args.seeds if part == 'main' else args.seeds[:1]
        for seed in seeds:
            for method in ('airl', 'gail', 'bc'):
                adv = {'airl_state_only': part == 'transfer' or args.main_airl == 'state'}
                jobs.append({'method': method, 'seed': seed, 'part': part, 'demos': args.demos,
                             'steps': args.steps, 'eval_episodes': args.eval_episodes,
                             'sac': sac, 'adv': adv})
    started = time.monotonic()
    results = {'settings': {'demos': args.demos, 'steps': args.steps,
                            'main_airl': args.main_airl,
                            'eval_episodes': args.eval_episodes, 'sac': sac,
                            'seeds': args.seeds,
                            'machine': f'{len(__import__("os").sched_getaffinity(0))} CPU '
                                       f'cores, {args.workers} worker processes, one torch '
                                       'thread each'},
               'references': {}, 'runs': []}
    for part in parts:
        results['references'][part] = references(SPINNING_UP if part == 'transfer' else None,
                                                 args.eval_episodes)
    with ProcessPoolExecutor(args.workers) as pool:
        for out in pool.map(run_one, jobs):
            results['runs'].append(out)
            extra = (f', re-optimised {np.mean(out["reoptimised_returns"]):.1f}'
                     if 'reoptimised_returns' in out else '')
            print(f'{out["part"]} {out["method"]} seed {out["seed"]}: return '
                  f'{np.mean(out["returns"]):.1f}{extra} ({out["train_seconds"]:.0f} s)',
                  flush=True)
            # Saved after every run, so a stopped benchmark leaves what it measured.
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=1))
    results['seconds'] = time.monotonic() - started
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    report(results)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
