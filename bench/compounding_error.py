"""Compounding error on track_follow: BC, DART and DAgger against the number of expert labels.

Behavior cloning trains on the expert's states only; the learner's small mistakes take it to
states the expert never showed it, and errors compound (Ross & Bagnell 2010: O(T^2 eps) for
BC against O(T eps) for DAgger). This script measures it on the ``track_follow`` robot for
three policies: ``lidar`` (task ``track_follow``: 36 lidar sectors and odometry),
``lidar8`` (the same with 8 sectors of 45 degrees, a coarse range ring) and ``camera``
(``track_follow_camera``: a 32x24 forward camera image and odometry, a conv policy):

- success rate (laps completed without touching a wall) and mean distance from the
  centerline, against the number of expert-labelled samples, for BC (expert
  demonstrations), DART (the expert drives with noise injected into its executed action,
  labels clean, the noise re-estimated each round from the learner's error and scaled to
  trace ``--dart-alpha``; Laskey et al. 2017) and DAgger (after a first round of expert
  driving, the learner drives and the expert labels every visited state, rounds aggregate;
  Ross et al. 2011), every seed;
- error growth against the horizon T, for the policies trained on ``--horizon-budget``
  labels: J(T), the cost summed over the first T steps, where a step costs the learner's
  squared disagreement with the expert (actions scaled to [-1, 1], capped at 1) and every
  step after a crash costs 1; and the share of episodes crashed by step T;
- the learner's per-step error eps on the expert's state distribution (the expert drives the
  evaluation starts, the same per-step cost of the learner's action against its label), and
  the growth of J(T) against T, fitted as J(T) = c T^k over T = 10 .. one lap with a 95%
  bootstrap interval over the evaluation laps (``ilrl_ros.core.scoring.growth_exponent``),
  for BC and DAgger at every budget: Ross, Gordon & Bagnell 2011 bound J by T^2 eps for BC
  (k up to 2: mistakes take it where the expert never went) and by T eps for DAgger (k = 1);
  J(T) at T = 50, 100, 200, 400, 700 and J(700) / (700 eps) are printed beside them;
- AWR against BC on one mixed dataset: clean expert driving plus expert driving with heavy
  executed-action noise (lower return), labelled with what was executed, with the rewards.

All three methods run the same rounds: round i collects ``budget_i - budget_(i-1)`` labels
from the same start states (``rollouts.collection_seed``); BC is DAgger with the expert
driving every round (beta = 1), so the only difference between BC and DAgger is who drives.
The policy trained after the round that reaches a budget is the one scored at that budget,
on the same evaluation starts (seeds 10000 + k) for every method. Every fit is
deterministic-head BC with one torch thread.

The robot is the bundled task's, noiseless unless ``--sim-params`` (merged into the task
spec's ``robot.params``, e.g. ``{"actuation_noise_std": [0.01, 0.3]}`` for wheel slip)
says otherwise. Noise in the demonstrations works like DART: the expert's recoveries end up
in the data, and BC stops failing.

Outputs in ``--out``: ``results.json`` (every run, every episode with its per-step cost and
lateral distance), ``results.md`` (tables), ``success_vs_labels.png``,
``lateral_vs_labels.png``, ``error_vs_horizon.png``; the tables and the target lines are
also printed. ``--replot`` merges the results.json of several runs (e.g. one per sensor run
in parallel) into one set of tables and plots. Nothing is asserted. The targets: DAgger
reaches at least 95% lap success with no more labels than BC needs for 50%; AWR beats BC on
the mix.

Examples::

    python bench/compounding_error.py                      # all sensors, 3 seeds (long)
    python bench/compounding_error.py --sensors lidar8 --seeds 0 --budgets 200 500 --quick
    python bench/compounding_error.py --sensors camera --out out/camera &
    python bench/compounding_error.py --sensors lidar lidar8 --out out/lidar
    python bench/compounding_error.py --replot out/*/results.json --out out/all
"""

import argparse
import copy
import json
import os
from pathlib import Path
import sys
import time

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ilrl_ros.core.algorithms import awr, dagger, dart  # noqa: E402
from ilrl_ros.core.algorithms.bc import BCConfig, train as train_bc  # noqa: E402
from ilrl_ros.core.rl.evaluation import as_learner  # noqa: E402
from ilrl_ros.core.rl.torch_settings import torch_settings  # noqa: E402
from ilrl_ros.core.rollouts import aggregate, rollout  # noqa: E402
from ilrl_ros.core.scoring import growth_exponent  # noqa: E402
from ilrl_ros.core.spec import parse_spec, resolve_spec_path  # noqa: E402
from ilrl_ros.core.tasks import make_env, make_expert  # noqa: E402

# sensor -> (task, lidar sectors in the observation: 0 keeps the task's own).
SENSORS = {'lidar': ('track_follow', 0), 'lidar8': ('track_follow', 8),
           'camera': ('track_follow_camera', 0)}
METHODS = ('bc', 'dart', 'dagger')
EVAL_SEED = 10_000
# One lap is ~683 control steps at 10 Hz; the horizon plot covers one lap.
HORIZON = 700
# Horizons J(T) is printed at, and the shortest one the growth fit uses.
MARKED = (50, 100, 200, 400, 700)
FIT_FROM = 10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0] + ' Prints tables and writes PNG plots.',
        epilog='See the module docstring for what is measured and how.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--sensors', nargs='+', choices=tuple(SENSORS), default=list(SENSORS),
                        help='lidar: task track_follow (36 lidar sectors); lidar8: the same '
                             'with 8 sectors of 45 degrees; camera: task track_follow_camera.')
    parser.add_argument('--budgets', nargs='+', type=int,
                        default=[200, 500, 1000, 2000, 5000],
                        help='Numbers of expert-labelled samples to score every method at.')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2],
                        help='Seeds: collection starts, noise, network initialisation.')
    parser.add_argument('--eval-episodes', type=int, default=10,
                        help='Evaluation laps per trained policy (same starts for all).')
    parser.add_argument('--bc-steps', type=int, default=1500,
                        help='Gradient steps of every behavior-cloning fit (lidar).')
    parser.add_argument('--camera-bc-steps', type=int, default=1000,
                        help='Gradient steps of every fit of a camera policy.')
    parser.add_argument('--horizon-budget', type=int, default=0,
                        help='Label budget whose policies are compared against the horizon '
                             '(0: the second budget, the first where DAgger has driven).')
    parser.add_argument('--mix-labels', type=int, default=4000,
                        help='AWR vs BC: expert labels in the mix; as many again come from '
                             'the noisy expert.')
    parser.add_argument('--mix-noise', type=float, nargs=2, default=[0.1, 1.5],
                        metavar=('V_STD', 'W_STD'),
                        help="Noise std added to the noisy expert's executed linear and "
                             'angular velocity in the AWR mix (its labels are what it executed).')
    parser.add_argument('--awr-beta', type=float, default=1.0,
                        help='AWR temperature, in units of return (Peng et al. 2019 use 1.0 '
                             'with normalised advantages; ours are raw).')
    parser.add_argument('--camera-batch-size', type=int, default=128,
                        help='Minibatch of every fit of a camera policy (lidar: 256).')
    parser.add_argument('--dart-alpha', type=float, default=0.1,
                        help='DART: scale each noise estimate to this trace (action units '
                             'squared); the raw estimate is a training-set error, ~0 here.')
    parser.add_argument('--sim-params', type=json.loads, default={},
                        help="JSON merged into the tasks' robot.params (the robot's "
                             'disturbances).')
    parser.add_argument('--out', type=Path, default=Path('bench_out/compounding_error'),
                        help='Folder for results.json, results.md and the plots.')
    parser.add_argument('--replot', nargs='+', type=Path, metavar='RESULTS_JSON',
                        help='Run nothing: merge these results.json files of earlier runs and '
                             'write the tables and plots to --out.')
    parser.add_argument('--quick', action='store_true',
                        help='Smoke run: 3 evaluation laps, 300 gradient steps.')
    args = parser.parse_args(argv)
    if sorted(set(args.budgets)) != args.budgets or args.budgets[0] < 100:
        parser.error('--budgets must be increasing, distinct and at least 100')
    if args.quick:
        args.eval_episodes, args.bc_steps, args.camera_bc_steps = 3, 300, 300
    args.horizon_budget = args.horizon_budget or args.budgets[min(1, len(args.budgets) - 1)]
    if args.horizon_budget not in args.budgets:
        parser.error('--horizon-budget must be one of --budgets')
    return args


def task_spec(sensor: str, sim_params: dict):
    """The sensor's bundled task, ``sim_params`` merged into its robot.params."""
    task, bins = SENSORS[sensor]
    with open(resolve_spec_path(task)) as stream:
        data = yaml.safe_load(stream)
    data = copy.deepcopy(data)
    data['robot'].setdefault('params', {}).update(sim_params)
    for field in data['observation']['fields']:
        if bins and 'bins' in field:
            field['bins'] = bins
    return parse_spec(data, origin=f'{sensor} ({task}) with {json.dumps(sim_params)}')


def increments(budgets: list) -> tuple:
    """Round sizes whose running totals are the budgets: [1k, 2k, 5k] -> (1k, 1k, 3k)."""
    return tuple(int(b - a) for a, b in zip([0, *budgets[:-1]], budgets))


def step_cost(actions: np.ndarray, labels: np.ndarray, spec) -> np.ndarray:
    """Per-step cost: mean squared disagreement with the label, actions scaled to [-1, 1].

    Capped at 1, what a step after a crash costs.
    """
    half_range = (spec.action.high - spec.action.low) / 2.0
    return np.minimum(1.0, np.mean(((actions - labels) / half_range) ** 2, axis=-1))


def expert_states(env, expert, episodes: int):
    """The expert's own laps from the evaluation starts: observations and its labels."""
    return rollout(env, expert, None, episodes=episodes, seed=EVAL_SEED).data


def expert_state_error(policy, states, spec) -> float:
    """eps: the learner's mean per-step cost on the states the expert visits."""
    learner = as_learner(policy)
    actions = np.stack([spec.action.clip(learner.act(obs)) for obs in states.observations])
    return float(np.mean(step_cost(actions, states.actions.astype(np.float64), spec)))


def trace_episodes(env, expert, policy, episodes: int) -> dict:
    """Run the policy alone; per episode its outcome and per step |lateral| and cost."""
    learner = as_learner(policy)
    spec = env.spec
    out = []
    for k in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + k)
        laterals, costs, done, info = [], [], False, {}
        while not done:
            label = np.asarray(expert.act(env.current_readings()), dtype=np.float64)
            action = spec.action.clip(learner.act(obs))
            costs.append(float(step_cost(action, label, spec)))
            obs, _, terminated, truncated, info = env.step(action)
            laterals.append(abs(float(info['lateral'])))
            done = terminated or truncated
        out.append({'outcome': str(info.get('outcome')), 'steps': len(costs),
                    'success': info.get('outcome') == 'success',
                    'mean_abs_lateral': float(np.mean(laterals)),
                    'lateral': laterals, 'cost': costs})
    return out


def score(episodes: list) -> dict:
    return {'success_rate': float(np.mean([e['success'] for e in episodes])),
            'mean_abs_lateral': float(np.mean([e['mean_abs_lateral'] for e in episodes])),
            'crashes': int(sum(e['outcome'] == 'failure' for e in episodes))}


def cost_matrix(episodes: list, horizon: int) -> tuple:
    """Per-step costs, (episodes, horizon), and whether each episode had crashed by each step.

    A step after a crash costs 1, a step after a finished lap 0.
    """
    cost = np.ones((len(episodes), horizon))
    crashed = np.zeros((len(episodes), horizon), dtype=bool)
    for i, e in enumerate(episodes):
        n = min(len(e['cost']), horizon)
        cost[i, :n] = e['cost'][:n]
        if e['outcome'] == 'failure':
            crashed[i, len(e['cost']) - 1:] = True
        elif e['success'] or e['outcome'] == 'timeout':
            cost[i, n:] = 0.0  # finished the lap: nothing more to get wrong
    return cost, crashed


def horizon_curves(episodes: list, horizon: int) -> dict:
    """J(T) (cumulative cost, 1 per step after a crash) and P(crashed by T), T = 1..horizon."""
    cost, crashed = cost_matrix(episodes, horizon)
    return {'J': np.cumsum(cost, axis=1).mean(axis=0).tolist(),
            'crashed': crashed.mean(axis=0).tolist()}


def growth(episodes: list) -> dict:
    """J(T) at the MARKED horizons and the fitted exponent of J(T) = c T^k with its interval.

    The exponent is None where J is 0 somewhere: a policy that never disagrees.
    """
    cost, _ = cost_matrix(episodes, HORIZON)
    summed = np.cumsum(cost, axis=1).mean(axis=0)
    row = {'J': {t: float(summed[t - 1]) for t in MARKED}}
    try:
        fit = growth_exponent(cost, t_min=FIT_FROM)
    except ValueError:
        return {**row, 'exponent': None, 'exponent_low': None, 'exponent_high': None}
    return {**row, 'exponent': fit.exponent, 'exponent_low': fit.low,
            'exponent_high': fit.high}


def run_sensor(sensor: str, seed: int, args, log) -> dict:
    spec = task_spec(sensor, args.sim_params)
    camera = bool(spec.observation.image_layout())
    steps = args.camera_bc_steps if camera else args.bc_steps
    bc_config = BCConfig(head='deterministic', steps=steps, val_fraction=0.0, seed=seed,
                         batch_size=args.camera_batch_size if camera else 256,
                         log_every=max(1, steps))
    env, expert = make_env(spec), make_expert(spec)
    result = {'sensor': sensor, 'task': SENSORS[sensor][0], 'seed': seed, 'methods': {}}
    states = expert_states(env, expert, args.eval_episodes)

    def evaluate(method, budget, policy, started):
        episodes = trace_episodes(env, expert, policy, args.eval_episodes)
        row = {'budget': budget, **score(episodes), 'seconds': time.monotonic() - started,
               'epsilon': expert_state_error(policy, states, spec), **growth(episodes),
               'episodes': episodes}
        result['methods'].setdefault(method, []).append(row)
        log(f'{sensor} seed {seed} {method:6s} {budget:6d} labels: success '
            f'{row["success_rate"]:.0%}, mean |lateral| {row["mean_abs_lateral"]:.3f} m, '
            f'eps {row["epsilon"]:.2e}, J({HORIZON}) {row["J"][HORIZON]:.3g}')

    started = time.monotonic()
    rounds = increments(args.budgets)
    # BC is DAgger with the expert driving every round (beta = 1 throughout): the same
    # start states and the same chunks of labels, so the only difference is who drives.
    for method, schedule in (('bc', {'schedule': 'exponential', 'p': 1.0}),
                             ('dagger', {'schedule': 'ross'})):
        t0 = time.monotonic()
        run = dagger.run(spec, dagger.DAggerConfig(rounds=len(rounds), round_steps=rounds,
                                                   bc=bc_config, eval_episodes=0, seed=seed,
                                                   **schedule))
        for budget, policy in zip(args.budgets, run.policies):
            evaluate(method, budget, policy, t0)
    t0 = time.monotonic()
    run = dart.run(spec, dart.DARTConfig(rounds=len(rounds), round_steps=rounds,
                                         alpha=args.dart_alpha, bc=bc_config,
                                         eval_episodes=0, seed=seed))
    for budget, policy in zip(args.budgets, run.policies):
        evaluate('dart', budget, policy, t0)

    # AWR against BC on one mix of clean and noisy expert driving, labelled with what was
    # executed (a recorded bag's commands), with the simulator's rewards.
    clean = rollout(env, expert, None, steps=args.mix_labels, seed=2_000 + 7919 * seed)
    noisy = rollout(env, expert, None, steps=args.mix_labels, seed=3_000 + 7919 * seed,
                    noise=list(args.mix_noise))
    mix = aggregate([clean.with_executed_labels(), noisy.with_executed_labels()])
    t0 = time.monotonic()
    evaluate('mix-bc', len(mix), train_bc(mix, bc_config).policy, t0)
    t0 = time.monotonic()
    awr_config = awr.AWRConfig(bc=bc_config, beta=args.awr_beta)
    evaluate('mix-awr', len(mix), awr.train(mix, awr_config).policy, t0)
    result['mix'] = {'clean': clean.summary(), 'noisy': noisy.summary()}
    result['seconds'] = time.monotonic() - started
    return result


def aggregate_seeds(results: list, sensor: str, method: str, key: str) -> dict:
    """{budget: (mean, std)} of one metric over seeds."""
    by_budget = {}
    for r in results:
        if r['sensor'] != sensor:
            continue
        for row in r['methods'].get(method, []):
            by_budget.setdefault(row['budget'], []).append(row[key])
    return {b: (float(np.mean(v)), float(np.std(v)), len(v)) for b, v in sorted(by_budget.items())}


def target_lines(results: list, sensors: list, budgets: list) -> list:
    lines = []
    for sensor in sensors:
        bc = aggregate_seeds(results, sensor, 'bc', 'success_rate')
        dg = aggregate_seeds(results, sensor, 'dagger', 'success_rate')
        bc50 = next((b for b in budgets if bc.get(b, (0,))[0] >= 0.5), None)
        dg95 = next((b for b in budgets if dg.get(b, (0,))[0] >= 0.95), None)
        verdict = ('PASS' if dg95 is not None and (bc50 is None or dg95 <= bc50) else 'MISS')
        lines.append(f'{sensor}: BC reaches 50% success at {bc50 or "none of the budgets"}, '
                     f'DAgger reaches 95% at {dg95 or "none of the budgets"} labels: {verdict}')
        mb = aggregate_seeds(results, sensor, 'mix-bc', 'success_rate')
        ma = aggregate_seeds(results, sensor, 'mix-awr', 'success_rate')
        lb = aggregate_seeds(results, sensor, 'mix-bc', 'mean_abs_lateral')
        la = aggregate_seeds(results, sensor, 'mix-awr', 'mean_abs_lateral')
        if mb and ma:
            (b_s, *_), = mb.values()
            (a_s, *_), = ma.values()
            (b_l, *_), = lb.values()
            (a_l, *_), = la.values()
            better = a_s > b_s or (a_s == b_s and a_l < b_l)
            lines.append(f'{sensor}: on the clean+noisy mix AWR {a_s:.0%} success '
                         f'(|lateral| {a_l:.3f} m) vs BC {b_s:.0%} ({b_l:.3f} m): '
                         f'{"PASS" if better else "MISS"}')
    return lines


def tables(results: list, sensors: list) -> str:
    out = []
    for sensor in sensors:
        out.append(f'\n### {sensor} ({SENSORS[sensor][0]})\n')
        out.append('| method | labels | success (mean ± std over seeds) | mean abs lateral (m) '
                   '| seeds |')
        out.append('|---|---:|---:|---:|---:|')
        for method in (*METHODS, 'mix-bc', 'mix-awr'):
            success = aggregate_seeds(results, sensor, method, 'success_rate')
            lateral = aggregate_seeds(results, sensor, method, 'mean_abs_lateral')
            for budget, (mean, std, n) in success.items():
                out.append(f'| {method} | {budget} | {mean:.0%} ± {std:.0%} | '
                           f'{lateral[budget][0]:.3f} ± {lateral[budget][1]:.3f} | {n} |')
    return '\n'.join(out)


def growth_table(results: list, sensors: list) -> str:
    """Per policy and budget, seeds pooled: eps, J(T) and the fitted exponent of J(T)."""
    out = ['\n### Compounding error: J(T) against the horizon T (evaluation laps of all seeds '
           'pooled)\n',
           '| policy | method | labels | eps (expert states) | '
           + ' | '.join(f'J({t})' for t in MARKED)
           + f' | k in J = c T^k, T {FIT_FROM}..{HORIZON} [95%] '
           f'| J({HORIZON}) / ({HORIZON} eps) |',
           '|---|---|---:|---:|' + '---:|' * len(MARKED) + '---|---:|']
    for sensor in sensors:
        for method in METHODS:
            budgets = sorted({row['budget'] for r in results if r['sensor'] == sensor
                              for row in r['methods'].get(method, [])})
            for budget in budgets:
                rows = [row for r in results if r['sensor'] == sensor
                        for row in r['methods'].get(method, []) if row['budget'] == budget]
                episodes = [e for row in rows for e in row['episodes']]
                pooled = growth(episodes)
                eps = float(np.mean([row['epsilon'] for row in rows]))
                k = ('n/a (J = 0)' if pooled['exponent'] is None else
                     f'{pooled["exponent"]:.2f} [{pooled["exponent_low"]:.2f}, '
                     f'{pooled["exponent_high"]:.2f}]')
                ratio = pooled['J'][HORIZON] / (HORIZON * eps) if eps > 0 else float('inf')
                out.append(f'| {sensor} | {method} | {budget} | {eps:.2e} | '
                           + ' | '.join(f'{pooled["J"][t]:.3g}' for t in MARKED)
                           + f' | {k} | {ratio:.3g} |')
    return '\n'.join(out)


def plot(results: list, args) -> list:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    written = []
    for key, name, label in (('success_rate', 'success_vs_labels.png', 'lap success rate'),
                             ('mean_abs_lateral', 'lateral_vs_labels.png',
                              'mean distance from centerline (m)')):
        fig, axes = plt.subplots(1, len(args.sensors), figsize=(5.5 * len(args.sensors), 4),
                                 squeeze=False)
        for ax, sensor in zip(axes[0], args.sensors):
            for method in METHODS:
                stats = aggregate_seeds(results, sensor, method, key)
                if not stats:
                    continue
                x = np.array(list(stats))
                mean = np.array([v[0] for v in stats.values()])
                std = np.array([v[1] for v in stats.values()])
                ax.plot(x, mean, marker='o', label=method.upper())
                low, high = mean - std, mean + std
                if key == 'success_rate':
                    low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
                ax.fill_between(x, low, high, alpha=0.2)
            ax.set_xscale('log')
            ax.set_xticks(args.budgets, [str(b) for b in args.budgets])
            ax.minorticks_off()
            if key == 'success_rate':
                ax.set_ylim(-0.05, 1.05)
            else:
                ax.set_ylim(bottom=0.0)
            ax.set_xlabel('expert-labelled samples')
            ax.set_ylabel(label)
            ax.set_title(f'{sensor} ({len(args.seeds)} seeds)')
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(args.out / name, dpi=110)
        plt.close(fig)
        written.append(args.out / name)
    fig, axes = plt.subplots(2, len(args.sensors), figsize=(5.5 * len(args.sensors), 7),
                             squeeze=False)
    for column, sensor in enumerate(args.sensors):
        for method in METHODS:
            curves = [horizon_curves(row['episodes'], HORIZON) for r in results
                      if r['sensor'] == sensor for row in r['methods'].get(method, [])
                      if row['budget'] == args.horizon_budget]
            if not curves:
                continue
            t = np.arange(1, HORIZON + 1)
            axes[0][column].plot(t, np.mean([c['J'] for c in curves], axis=0),
                                 label=method.upper())
            axes[1][column].plot(t, np.mean([c['crashed'] for c in curves], axis=0),
                                 label=method.upper())
        axes[0][column].set_title(f'{sensor}: policies from {args.horizon_budget} labels')
        axes[0][column].set_ylabel('J(T): cost summed over T steps')
        axes[0][column].set_yscale('symlog', linthresh=0.01)
        axes[1][column].set_ylabel('share of episodes crashed by step T')
        axes[1][column].set_ylim(-0.05, 1.05)
        for ax in axes[:, column]:
            ax.set_xlabel('horizon T (control steps)')
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / 'error_vs_horizon.png', dpi=110)
    plt.close(fig)
    written.append(args.out / 'error_vs_horizon.png')
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def log(text):
        print(f'[{time.monotonic() - started:7.1f} s] {text}', flush=True)

    results = []
    if args.replot:
        for path in args.replot:
            results += json.loads(path.read_text())['results']
        args.sensors = [s for s in SENSORS if any(r['sensor'] == s for r in results)]
        args.seeds = sorted({r['seed'] for r in results})
    with torch_settings(1):
        for sensor in ([] if args.replot else args.sensors):
            for seed in args.seeds:
                results.append(run_sensor(sensor, seed, args, log))
                (args.out / 'results.json').write_text(json.dumps(
                    {'args': {k: (str(v) if isinstance(v, Path) else v)
                              for k, v in vars(args).items()},
                     'results': results}))
    text = tables(results, args.sensors) + '\n' + growth_table(results, args.sensors)
    targets = target_lines(results, args.sensors, args.budgets)
    header = (f'# Compounding error on track_follow\n\nrobot.params overrides: '
              f'`{json.dumps(args.sim_params)}`; seeds {args.seeds}; {args.eval_episodes} '
              f'evaluation laps per policy; BC steps {args.bc_steps} (camera '
              f'{args.camera_bc_steps}); {os.cpu_count()} CPUs; '
              f'{time.monotonic() - started:.0f} s in all.\n')
    (args.out / 'results.md').write_text(header + text + '\n\n' + '\n'.join(
        f'- {line}' for line in targets) + '\n')
    print(text)
    print('\n'.join(targets))
    for path in plot(results, args):
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
