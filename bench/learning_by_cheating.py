"""Learning by cheating: an RL teacher on the lidar labels a camera student, BC against DAgger.

Chen, Zhou, Koltun & Kraehenbuehl, "Learning by Cheating", CoRL 2020: first train a teacher
on privileged input, then let it label a student that sees only its own sensors. Here:

1. the teacher: SAC (or PPO) trained by our RL (``core/training.train_rl``) on
   ``track_follow``, which sees 36 lidar sectors and odometry velocity (or a checkpoint
   given with ``--teacher``);
2. the student: a conv policy on ``track_follow_camera`` (a 32x24 forward image and
   odometry velocity) whose rows are labelled by the teacher, the teacher acting on its own
   lidar observation built from the same simulator state
   (``core/experts/teacher.CheckpointExpert``, the ``checkpoint:<folder>`` expert);
3. BC from the teacher's demonstrations (the teacher drives every round) against DAgger (the
   teacher drives round 1, the student afterwards, the teacher labels every visited state;
   Ross et al. 2011), the same rounds, the same start states and the same label budget; the
   policy after each round is retrained from scratch on the aggregate.

Printed: a table of lap success (laps without touching a wall, over the same
``--eval-episodes`` evaluation starts, seeds 10000 + k) and mean return of the teacher on
its own task, of the teacher driving the camera robot (the same physics: it should match),
and of the BC and DAgger students at each label budget, per seed and pooled; with
``--students-of scripted`` also of students of the scripted pure-pursuit expert, the same
rounds, for reference. Written to
``--out``: ``results.json`` and ``results.md``. Nothing is asserted.

Examples::

    python bench/learning_by_cheating.py --out bench/results/learning_by_cheating
    python bench/learning_by_cheating.py --teacher runs/lbc/teacher --seeds 0 1 --budgets 500 2000
    python bench/learning_by_cheating.py --algorithm ppo --teacher-steps 200000 --quick
    python bench/learning_by_cheating.py --teacher T --students-of teacher scripted --seeds 1
    python bench/learning_by_cheating.py --merge out/*/results.json --out out/all
"""

import argparse
import json
from pathlib import Path
import sys
import time

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ilrl_ros.core.algorithms import dagger  # noqa: E402
from ilrl_ros.core.algorithms.bc import BCConfig  # noqa: E402
from ilrl_ros.core.checkpoint import save_checkpoint  # noqa: E402
from ilrl_ros.core.experts.teacher import CHECKPOINT_PREFIX, make_named_expert  # noqa: E402
from ilrl_ros.core.rl.evaluation import evaluate_policy  # noqa: E402
from ilrl_ros.core.rl.torch_settings import torch_settings  # noqa: E402
from ilrl_ros.core.rollouts import rollout  # noqa: E402
from ilrl_ros.core.spec import load_spec, resolve_spec_path  # noqa: E402
from ilrl_ros.core.tasks import make_env  # noqa: E402
from ilrl_ros.core.training import train_rl  # noqa: E402

TEACHER_TASK = 'track_follow'
STUDENT_TASK = 'track_follow_camera'
EVAL_SEED = 10_000
# Table rows: method key, name.
METHODS = (('bc', 'BC student'), ('dagger', 'DAgger student'),
           ('scripted-bc', 'BC student of the scripted expert'),
           ('scripted-dagger', 'DAgger student of the scripted expert'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog='See the module docstring for what is measured and how.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--teacher', type=Path, default=None,
                        help='A trained teacher checkpoint to use instead of training one.')
    parser.add_argument('--algorithm', choices=('sac', 'ppo'), default='sac',
                        help='RL algorithm of the teacher.')
    parser.add_argument('--teacher-steps', type=int, default=20_000,
                        help="Environment steps of the teacher's RL training.")
    parser.add_argument('--teacher-batch-size', type=int, default=128,
                        help='SAC minibatch of the teacher.')
    parser.add_argument('--teacher-hidden', type=int, nargs='+', default=[64, 64],
                        help="Hidden widths of the teacher's networks.")
    parser.add_argument('--teacher-seed', type=int, default=0, help='Seed of the RL training.')
    parser.add_argument('--teacher-timeout', type=float, default=40.0,
                        help='Training episodes end after this many seconds (the task: 150 s, '
                             'a lap about 70 s): shorter episodes start from more places.')
    parser.add_argument('--budgets', nargs='+', type=int, default=[500, 2000],
                        help='Teacher labels after which the students are scored (increasing).')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0],
                        help='Student seeds: collection starts and network initialisation.')
    parser.add_argument('--eval-episodes', type=int, default=5,
                        help='Evaluation laps of every policy (same starts for all).')
    parser.add_argument('--bc-steps', type=int, default=1000,
                        help='Gradient steps of every fit of a student (conv policy).')
    parser.add_argument('--batch-size', type=int, default=128, help='Minibatch of every fit.')
    parser.add_argument('--out', type=Path, default=Path('bench_out/learning_by_cheating'),
                        help='Folder for the teacher checkpoint, results.json and results.md.')
    parser.add_argument('--students-of', nargs='+', choices=('teacher', 'scripted'),
                        default=['teacher'],
                        help="Whose labels the students learn from: the teacher's, and/or the "
                             "scripted pure-pursuit expert's (a reference; same rounds).")
    parser.add_argument('--merge', nargs='+', type=Path, metavar='RESULTS_JSON',
                        help='Run nothing: merge the results.json of runs with the same '
                             'teacher (e.g. one per seed, run in parallel) into one table.')
    parser.add_argument('--quick', action='store_true',
                        help='Smoke run: 2 evaluation laps, 200 gradient steps a fit.')
    args = parser.parse_args(argv)
    if sorted(set(args.budgets)) != args.budgets or args.budgets[0] < 50:
        parser.error('--budgets must be increasing, distinct and at least 50')
    if args.quick:
        args.eval_episodes, args.bc_steps = 2, 200
    return args


def log(text: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {text}', flush=True)


def train_teacher(args) -> tuple:
    """Train the teacher by RL on the lidar task and save it; (path, seconds)."""
    overrides = {'hidden': tuple(args.teacher_hidden)}
    if args.algorithm == 'sac':
        # Smaller batches than the default 256: on a busy 2-core machine the updates, not
        # the simulator, set the pace.
        overrides.update(learning_starts=1000, batch_size=args.teacher_batch_size)
    # The teacher's task with shorter training episodes; the timeout is no part of the
    # contract a checkpoint is checked by, so the teacher still runs as a track_follow policy.
    raw = yaml.safe_load(resolve_spec_path(TEACHER_TASK).read_text())
    raw['termination']['timeout_s'] = float(args.teacher_timeout)
    task_file = args.out / 'teacher_task.yaml'
    task_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    log(f'training the teacher: {args.algorithm} on {TEACHER_TASK} ({args.teacher_timeout:g} s '
        f'episodes), {args.teacher_steps} steps')
    run = train_rl(args.algorithm, task=str(task_file), steps=args.teacher_steps,
                   seed=args.teacher_seed, eval_episodes=0, overrides=overrides)
    path = save_checkpoint(args.out / 'teacher', run.policy, algorithm=args.algorithm,
                           spec=run.spec, config=run.config,
                           provenance={'env_steps': run.env_steps, 'seconds': run.seconds,
                                       'made_by': 'bench/learning_by_cheating.py'})
    log(f'teacher trained in {run.seconds:.0f} s: {path}')
    return path, run.seconds


def scored(evaluation_summary: dict) -> dict:
    return {'success_rate': float(evaluation_summary['success_rate']),
            'mean_return': float(evaluation_summary['mean_return'])}


def increments(budgets: list) -> tuple:
    """Round sizes whose running totals are the budgets: [500, 2000] -> (500, 1500)."""
    return tuple(int(b - a) for a, b in zip([0, *budgets[:-1]], budgets))


def run_students(args, expert_name: str, student_spec, seed: int, prefix: str = '') -> dict:
    """BC and DAgger students of one seed: {prefix + method: [row per budget]}."""
    rows = {}
    bc = BCConfig(head='deterministic', steps=args.bc_steps, batch_size=args.batch_size,
                  val_fraction=0.0, seed=seed, log_every=max(1, args.bc_steps))
    expert = make_named_expert(student_spec, expert_name)
    rounds = increments(args.budgets)
    # BC is DAgger with the teacher driving every round (beta = 1): same starts, same chunks.
    for method, schedule in (('bc', {'schedule': 'exponential', 'p': 1.0}),
                             ('dagger', {'schedule': 'ross'})):
        started = time.monotonic()
        result = dagger.run(student_spec, dagger.DAggerConfig(
            rounds=len(rounds), round_steps=rounds, bc=bc, eval_episodes=0, seed=seed,
            **schedule), expert=expert)
        for budget, policy, row in zip(args.budgets, result.policies, result.rounds):
            summary = evaluate_policy(make_env(student_spec), policy, args.eval_episodes,
                                      EVAL_SEED).summary()
            rows.setdefault(prefix + method, []).append(
                {'labels': budget, **scored(summary), 'dataset_size': row['dataset_size'],
                 'seconds': time.monotonic() - started})
            log(f'seed {seed} {prefix + method:15s} {budget:5d} labels: success '
                f'{summary["success_rate"]:.0%}, return {summary["mean_return"]:.1f}')
    return rows


def table(results: dict) -> str:
    """Teacher rows, then a row per student method and label budget, seeds side by side."""
    seeds = list(results['students'])
    lines = [f'| policy | sees | labels | lap success, seed {", ".join(map(str, seeds))} | '
             'mean lap success | mean return |', '|---|---|---:|---:|---:|---:|']
    t = results['teacher']
    for name, key in ((f'teacher ({results["algorithm"]})', 'own_task'),
                      ('teacher driving the camera robot', 'camera_robot')):
        lines.append(f'| {name} | lidar 36 + odometry | - | - | '
                     f'{t[key]["success_rate"]:.0%} | {t[key]["mean_return"]:.1f} |')
    for method, name in METHODS:
        for budget in results['budgets']:
            rows = [row for seed in seeds for row in results['students'][seed].get(method, [])
                    if row['labels'] == budget]
            if not rows:
                continue
            each = ', '.join(f'{r["success_rate"]:.0%}' for r in rows)
            lines.append(f'| {name} | camera 32x24 + odometry | {budget} | {each} | '
                         f'{np.mean([r["success_rate"] for r in rows]):.0%} | '
                         f'{np.mean([r["mean_return"] for r in rows]):.1f} |')
    return '\n'.join(lines)


def merge(paths: list) -> dict:
    """One results dict from several runs of one teacher: students by seed, budgets joined."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    first = runs[0]
    for path, run in zip(paths[1:], runs[1:]):
        if run['teacher_path'] != first['teacher_path'] or run['teacher'] != first['teacher']:
            raise SystemExit(f'{path} has another teacher than {paths[0]}; merge runs of one')
    merged = {**first, 'students': {}, 'seconds': sum(r['seconds'] for r in runs),
              'budgets': sorted({b for r in runs for b in r['budgets']})}
    for run in runs:
        for seed, methods in run['students'].items():
            into = merged['students'].setdefault(seed, {})
            for method, rows in methods.items():
                into.setdefault(method, []).extend(rows)
    return merged


def write(results: dict, args) -> None:
    text = table(results)
    seconds = results['teacher_seconds']
    header = (f'Teacher {results["algorithm"]} on {TEACHER_TASK} ({results["teacher_steps"]} '
              'steps' + (f', {seconds:.0f} s' if seconds else '') + '); students on '
              f'{STUDENT_TASK}, {results["bc_steps"]} BC steps a fit, '
              f'{results["eval_episodes"]} evaluation laps; {results["seconds"]:.0f} s in all.')
    (args.out / 'results.json').write_text(json.dumps(results, indent=2))
    (args.out / 'results.md').write_text(f'# Learning by cheating\n\n{header}\n\n{text}\n')
    print(f'\n{header}\n\n{text}\n\nwrote {args.out / "results.json"} and '
          f'{args.out / "results.md"}')


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.merge:
        write(merge(args.merge), args)
        return 0
    started = time.monotonic()
    with torch_settings(1):
        teacher_seconds = None
        if args.teacher is None:
            teacher_path, teacher_seconds = train_teacher(args)
        else:
            teacher_path = args.teacher
        name = f'{CHECKPOINT_PREFIX}{teacher_path}'
        teacher_spec, student_spec = load_spec(TEACHER_TASK), load_spec(STUDENT_TASK)
        teacher = make_named_expert(teacher_spec, name)
        own = evaluate_policy(make_env(teacher_spec), teacher.policy, args.eval_episodes,
                              EVAL_SEED).summary()
        log(f'teacher on {TEACHER_TASK}: success {own["success_rate"]:.0%}, return '
            f'{own["mean_return"]:.1f}')
        # The teacher driving the camera robot through the checkpoint expert: its labels are
        # what it would do; with beta = 1 they are also what is executed.
        driving = rollout(make_env(student_spec), make_named_expert(student_spec, name),
                          episodes=args.eval_episodes, seed=EVAL_SEED).summary()
        log(f'teacher driving {STUDENT_TASK}: success {driving["success_rate"]:.0%}, return '
            f'{driving["mean_return"]:.1f}')
        manifest = teacher.policy.manifest
        provenance = manifest.get('provenance') or {}
        teacher_seconds = teacher_seconds or provenance.get('seconds')
        results = {'algorithm': manifest.get('algorithm', '?'),
                   'teacher_path': str(teacher_path),
                   'teacher_steps': provenance.get('env_steps', '?'),
                   'teacher_seconds': teacher_seconds, 'budgets': args.budgets,
                   'eval_episodes': args.eval_episodes, 'bc_steps': args.bc_steps,
                   'teacher': {'own_task': scored(own), 'camera_robot': scored(driving)},
                   'students': {}}
        for seed in args.seeds:
            results['students'][seed] = {}
            if 'teacher' in args.students_of:
                results['students'][seed].update(run_students(args, name, student_spec, seed))
            if 'scripted' in args.students_of:
                results['students'][seed].update(run_students(
                    args, 'scripted', student_spec, seed, prefix='scripted-'))
    results['seconds'] = time.monotonic() - started
    write(results, args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
