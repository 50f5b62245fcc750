"""`ilrl train gail|airl`: adversarial imitation from a dataset, with SAC in the simulator.

Sub-commands of `ilrl train` (added by ``train.add_to``); the algorithm is
``core/algorithms/adversarial_irl.py``.
"""

import argparse

from ilrl_ros.cli.config_flags import add_config_flags, config_overrides

ABOUT = {
    'gail': ('generative adversarial imitation (Ho & Ermon 2016)', 'A discriminator D(s, a) '
             "learns to tell the demonstrations' state-action pairs from the policy's; SAC "
             'trains the policy in the simulator on the reward log D - log(1 - D) (or '
             "-log(1 - D) with --gail-reward positive), never on the task's reward."),
    'airl': ('adversarial inverse RL (Fu, Luo & Levine 2018)', 'The discriminator is '
             "D = exp f / (exp f + pi(a|s)) with f(s, a, s') = g(s) + gamma h(s') - h(s): "
             'g is a learned state-only reward that transfers to start states the '
             'demonstrations never used, h a shaping potential. SAC trains the policy on f.'),
}


def cmd_train_adversarial(args) -> int:
    from ilrl_ros.core.algorithms.adversarial_irl import AdversarialConfig, imitate_on_task
    from ilrl_ros.core.checkpoint import save_checkpoint
    from ilrl_ros.core.data import Demonstrations
    from ilrl_ros.core.train_log import console_progress
    data = Demonstrations.load(args.data)
    config = AdversarialConfig(**config_overrides(args, args.config_flags))
    result, evaluation, spec = imitate_on_task(
        args.algorithm, data, args.task, config, log_dir=args.log_dir,
        eval_episodes=args.eval_episodes, progress=console_progress(args.algorithm))
    print(f'{args.algorithm}: {result.demo_transitions} expert transitions from '
          f'{result.demo_episodes} episodes; {result.env_steps} environment steps in '
          f'{result.seconds:.1f} s'
          + (f'; evaluation over {len(evaluation)} episodes: return '
             f'{evaluation.mean_return:.1f} +/- {evaluation.std_return:.1f}, success rate '
             f'{evaluation.success_rate:.0%}' if evaluation else ''))
    path = save_checkpoint(args.output, result.policy, algorithm=args.algorithm, spec=spec,
                           config=result.config,
                           provenance={'dataset': str(args.data), **data.info,
                                       'demo_episodes': result.demo_episodes,
                                       'demo_transitions': result.demo_transitions,
                                       'env_steps': result.env_steps,
                                       'seconds': result.seconds,
                                       'evaluation': evaluation.as_dict() if evaluation
                                       else None})
    print(f'wrote checkpoint {path}' + (f'; logs and curves.png in {args.log_dir}'
                                        if args.log_dir else ''))
    return 0


def add_parsers(algos) -> None:
    """Add the ``gail`` and ``airl`` parsers to `ilrl train`'s sub-commands."""
    from ilrl_ros.core.algorithms.adversarial_irl import AdversarialConfig
    for name, (short, long) in ABOUT.items():
        p = algos.add_parser(
            name, help=short, formatter_class=argparse.RawDescriptionHelpFormatter,
            description=f"{short[0].upper()}{short[1:]}. {long} Trains in the task's "
            'simulator (no ROS) from demonstrations (a dataset from `ilrl convert` or `ilrl '
            'collect`), evaluates the deterministic policy and writes a checkpoint the '
            "policy node runs. SAC's settings are the flags without a disc- prefix.\n\n"
            'examples:\n'
            '  ilrl collect --task pendulum --episodes 10 -o data/pendulum10.npz\n'
            f'  ilrl train {name} --data data/pendulum10.npz --task pendulum '
            f'-o checkpoints/{name} --log-dir runs/{name}\n'
            f'  ilrl train {name} --data data/pendulum10.npz --total-steps 20000 --seed 1 '
            f'-o checkpoints/{name}_s1')
        p.add_argument('--data', required=True, help='demonstrations .npz (ilrl convert or '
                       'ilrl collect)')
        p.add_argument('--task', default=None, help="the task to train on (default: the "
                       "dataset's own task; a name or spec YAML path)")
        p.add_argument('-o', '--output', required=True, help='checkpoint folder to write')
        p.add_argument('--log-dir', default=None, help='TensorBoard/CSV/PNG log folder')
        p.add_argument('--eval-episodes', type=int, default=10,
                       help='evaluation episodes after training (default: %(default)s)')
        p.set_defaults(func=cmd_train_adversarial,
                       config_flags=add_config_flags(p, AdversarialConfig, flatten=('sac',)))
