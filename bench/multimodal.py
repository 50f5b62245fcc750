"""Multimodal demonstrations: behavior cloning with one Gaussian against a mixture of them.

On ``track_obstacle`` (the oval corridor with a post in the lane) the expert passes the
post on the left or on the right, a fair coin per pass, and it swerves late: in the state
where it draws its side the demonstrations turn hard left or hard right. Behavior cloning
with a Gaussian head fits the mean of the two, about zero, and drives at the post; a
mixture-density head (Bishop 1994, ``--head mdn --components 2``) puts a component on each
side and acts on the mean of the most probable one. Both are trained on the same
demonstrations with the same settings, saved as checkpoints and loaded back as the policy
node loads them (``core/checkpoint.load_checkpoint``), then driven from the same starts.

For each seed: the expert (coin seeded by the seed) drives ``--episodes`` laps, labelled
as it drives; BC-Gaussian and BC-MDN are trained on them; each drives ``--eval-episodes``
laps (starts 10000 + k). Printed:

- success: laps completed without touching the post or a wall; how many runs hit the post,
  how many a wall; on which side the post was passed; the robot's mean |lateral| where it
  reached the post (or hit it), against the expert's pass at about 0.3 m;
- the averaging: at the demonstration states where the expert drew its side, the expert's
  angular-velocity labels on either side, the Gaussian's mean and std there, the MDN's two
  components (weight, mean) and the action it takes.

Every evaluation lap meets the post from the same state (the policy has settled on the
centerline by then), so the laps of one seed nearly always end alike: the seeds, not the
laps, are the sample. ``--demos paired`` demonstrates each start twice, once on each side
(the coin balanced per start); ``--noise-std`` adds noise to the executed expert command
(labels stay clean).

Outputs: ``--json`` (every episode) and the tables on stdout. Nothing is asserted.

Examples::

    python bench/multimodal.py                      # 3 seeds, about 1 minute a seed
    python bench/multimodal.py --seeds 0 1 2 3 4 5 6 7 --eval-episodes 4 \
        --json bench/results/multimodal.json        # the README's run
    python bench/multimodal.py --seeds 0 --episodes 8 --eval-episodes 2 --steps 500  # quick
    python bench/multimodal.py --demos paired --components 3
"""

import argparse
import json
from pathlib import Path
import sys
import tempfile
import time

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ilrl_ros.core.algorithms.bc import BCConfig, train  # noqa: E402
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from ilrl_ros.core.rollouts import aggregate, rollout  # noqa: E402
from ilrl_ros.core.spec import load_spec  # noqa: E402
from ilrl_ros.core.tasks import make_env, make_expert  # noqa: E402

HEADS = ('gaussian', 'mdn')
EVAL_SEED = 10000


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog='Example: python bench/multimodal.py --seeds 0 1 2 --json out.json',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--task', default='track_obstacle', help='task with a post')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2],
                        help='seeds: the expert coin, demonstration starts, BC init')
    parser.add_argument('--demos', choices=('coin', 'paired'), default='coin',
                        help="coin: the expert's coin picks each pass's side; paired: each "
                             'start is demonstrated twice, passing once on each side')
    parser.add_argument('--episodes', type=int, default=16,
                        help='expert laps per seed (one pass of the post each)')
    parser.add_argument('--eval-episodes', type=int, default=10, help='laps per policy')
    parser.add_argument('--steps', type=int, default=3000, help='BC gradient steps')
    parser.add_argument('--hidden', nargs='+', type=int, default=[128, 128],
                        help='hidden layer widths of both policies')
    parser.add_argument('--components', type=int, default=2, help='mixture components')
    parser.add_argument('--noise-std', nargs=2, type=float, default=[0.0, 0.0],
                        metavar=('V', 'W'),
                        help='std of noise on the executed (not the labelled) expert '
                             'command, m/s and rad/s: demonstrations off the expert path')
    parser.add_argument('--json', default=None, help='write every episode here')
    return parser.parse_args(argv)


class RecordingExpert:
    """The task's expert, noting at which calls (rows) it drew a side for a post."""

    def __init__(self, expert):
        self.expert, self.draws = expert, []
        self.calls = 0

    def act(self, readings):
        before = len(self.expert.controller.choices)
        action = self.expert.act(readings)
        if len(self.expert.controller.choices) > before:
            self.draws.append((self.calls, self.expert.controller.choices[-1][1]))
        self.calls += 1
        return action


def drive(loaded, spec, episodes: int) -> list:
    """Lap ``episodes`` times with a loaded checkpoint; where and how each run met the post."""
    env = make_env(spec)
    course = env.track
    post = course.obstacles[0]
    radius = float(spec.sim_params.get('robot_radius', 0.105))
    runs = []
    for k in range(episodes):
        obs, info = env.reset(seed=EVAL_SEED + k)
        side, lateral_at_post, steps, done = None, None, 0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(loaded.act(obs))
            steps += 1
            done = terminated or truncated
            d = course.track.arc_delta(post.s, course.track.project(*env.pose[:2]).s)
            if side is None and (d >= 0.0 and d < 0.5 or done and -0.5 < d < 0.5):
                lateral_at_post = float(info['lateral'])
                side = 'left' if lateral_at_post > 0 else 'right'
        hit_post = info['outcome'] == 'failure' and \
            course.obstacle_clearance(*env.pose[:2]) < radius + 0.02
        if hit_post:
            side = None  # it met the post, it did not pass it
        runs.append({'seed': EVAL_SEED + k, 'outcome': info['outcome'], 'steps': steps,
                     'hit_post': bool(hit_post),
                     'hit_wall': bool(info['outcome'] == 'failure' and not hit_post),
                     'side': side, 'lateral_at_post': lateral_at_post})
    return runs


def at_decisions(networks: dict, data, draws, spec) -> dict:
    """The expert's labels and each head's output at the states where it drew a side."""
    w = list(spec.action.fields).index('angular.z')
    rows = np.array([row for row, _ in draws], dtype=int)
    sides = np.array([side for _, side in draws])
    obs = torch.as_tensor(data.observations[rows])
    labels = data.actions[rows, w]
    out = {'states': len(rows), 'expert_left_w': float(labels[sides > 0].mean()),
           'expert_right_w': float(labels[sides < 0].mean()),
           'left_draws': int((sides > 0).sum()), 'right_draws': int((sides < 0).sum())}
    with torch.no_grad():
        gauss = networks['gaussian']
        mean, log_std = gauss.normalized_distribution(obs)
        out['gaussian_mean_w'] = float((mean * gauss.act_std + gauss.act_mean)[:, w].mean())
        out['gaussian_std_w'] = float((log_std.exp() * gauss.act_std)[:, w].mean())
        mdn = networks['mdn']
        logits, means, _ = mdn.normalized_mixture(obs)
        weights = torch.softmax(logits, dim=-1)
        component_w = means[..., w] * mdn.act_std[w] + mdn.act_mean[w]
        # Components sorted by their mean turn, so "left" and "right" line up across states.
        order = torch.argsort(component_w, dim=-1, descending=True)
        out['mdn_weights'] = weights.gather(-1, order).mean(dim=0).tolist()
        out['mdn_component_w'] = component_w.gather(-1, order).mean(dim=0).tolist()
        out['mdn_acts_abs_w'] = float(mdn(obs)[:, w].abs().mean())
    return out


def run_seed(seed: int, args, spec, folder: Path) -> dict:
    started = time.monotonic()
    torch.manual_seed(seed)
    noise = list(args.noise_std) if any(args.noise_std) else None
    if args.demos == 'coin':
        expert = RecordingExpert(make_expert(spec, seed=seed))
        demos = rollout(make_env(spec), expert, episodes=args.episodes, seed=100 * seed,
                        noise=noise)
        data, draws, expert_success = demos.data, expert.draws, demos.summary()['success_rate']
    else:
        # Each start twice, once passing on each side: the coin, balanced per start.
        parts, draws, half = [], [], args.episodes // 2
        for i, side in enumerate(('left', 'right')):
            expert = RecordingExpert(make_expert(spec, side=side))
            part = rollout(make_env(spec), expert, episodes=half, seed=100 * seed,
                           noise=noise, episode_start=i * half)
            offset = sum(len(p.data) for p in parts)
            draws += [(row + offset, drawn) for row, drawn in expert.draws]
            parts.append(part)
        data = aggregate([p.data for p in parts])
        expert_success = float(np.mean([p.summary()['success_rate'] for p in parts]))
    collected = time.monotonic() - started
    networks, runs, seconds = {}, {}, {}
    for head in HEADS:
        config = BCConfig(head=head, components=args.components, hidden=tuple(args.hidden),
                          steps=args.steps, seed=seed)
        result = train(data, config)
        path = save_checkpoint(folder / f'{head}_{seed}', result.policy, algorithm='bc',
                               spec=spec, config=result.config,
                               provenance={'bench': 'multimodal', 'seed': seed})
        loaded = load_checkpoint(path, expected_spec=spec)
        networks[head], seconds[head] = loaded.network, result.seconds
        runs[head] = drive(loaded, spec, args.eval_episodes)
    return {'seed': seed, 'demo_rows': len(data), 'expert_success': expert_success,
            'decisions': at_decisions(networks, data, draws, spec),
            'runs': runs, 'train_seconds': seconds, 'collect_seconds': collected,
            'seconds': time.monotonic() - started}


def success_table(results: list) -> str:
    lines = ['| seed | head | lap success | hit the post | hit a wall | passed left / right '
             '| mean abs lateral at the post [m] |',
             '|---|---|---|---|---|---|---|']
    for head in HEADS:
        everything = []
        for result in results + [None]:
            runs = everything if result is None else result['runs'][head]
            if result is not None:
                everything = everything + runs
            n = len(runs)
            success = sum(r['outcome'] == 'success' for r in runs)
            lateral = [abs(r['lateral_at_post']) for r in runs
                       if r['lateral_at_post'] is not None]
            lateral = f'{np.mean(lateral):.3f}' if lateral else '-'
            label = 'all' if result is None else str(result['seed'])
            lines.append(
                f'| {label} | BC-{head} | {success}/{n} | {sum(r["hit_post"] for r in runs)} '
                f'| {sum(r["hit_wall"] for r in runs)} '
                f'| {sum(r["side"] == "left" for r in runs)} / '
                f'{sum(r["side"] == "right" for r in runs)} | {lateral} |')
    return '\n'.join(lines)


def decision_table(results: list) -> str:
    lines = ['| seed | draws left / right | expert w left, right [rad/s] | Gaussian mean w '
             '(std) | MDN weights | MDN component w | MDN acts abs w |',
             '|---|---|---|---|---|---|---|']
    for result in results:
        d = result['decisions']
        weights = ', '.join(f'{v:.2f}' for v in d['mdn_weights'])
        means = ', '.join(f'{v:+.2f}' for v in d['mdn_component_w'])
        lines.append(f'| {result["seed"]} | {d["left_draws"]} / {d["right_draws"]} '
                     f'| {d["expert_left_w"]:+.2f}, {d["expert_right_w"]:+.2f} '
                     f'| {d["gaussian_mean_w"]:+.2f} ({d["gaussian_std_w"]:.2f}) '
                     f'| {weights} | {means} | {d["mdn_acts_abs_w"]:.2f} |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    spec = load_spec(args.task)
    results = []
    with tempfile.TemporaryDirectory(prefix='multimodal_') as tmp:
        for seed in args.seeds:
            result = run_seed(seed, args, spec, Path(tmp))
            results.append(result)
            print(f'seed {seed}: {result["demo_rows"]} demonstration rows (expert success '
                  f'{result["expert_success"]:.0%}), trained in '
                  f'{result["train_seconds"]["gaussian"]:.0f} s and '
                  f'{result["train_seconds"]["mdn"]:.0f} s; {result["seconds"]:.0f} s in all',
                  flush=True)
    print(f'\nLap success on {args.task}, {args.episodes} expert laps per seed ({args.demos}), '
          f'{args.eval_episodes} evaluation laps per policy, {args.steps} BC steps, '
          f'hidden {args.hidden}:\n')
    print(success_table(results))
    print('\nAt the demonstration states where the expert drew its side (angular velocity '
          'w; MDN components ordered left to right):\n')
    print(decision_table(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({'args': vars(args), 'results': results},
                                              indent=1) + '\n')
        print(f'\nwrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
