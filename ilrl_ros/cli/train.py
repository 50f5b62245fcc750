"""`ilrl train <algorithm>`: behavior cloning, RWR, AWR from a dataset; RL on a task or env."""

import argparse

from ilrl_ros.cli.config_flags import add_config_flags, config_overrides


def _config_class(algorithm: str):
    """The config dataclass of an algorithm of core/algorithms (BCConfig, SACConfig ...)."""
    import importlib
    from ilrl_ros.core.training import ALGORITHMS
    module, name = ALGORITHMS.get(algorithm, (algorithm, f'{algorithm.upper()}Config'))
    return getattr(importlib.import_module(f'ilrl_ros.core.algorithms.{module}'), name)


def _nested_as_configs(config_class, overrides: dict) -> dict:
    """Overrides of a nested config (MBRL's planner) as that config, on its defaults."""
    import dataclasses
    nested = {f.name: f.default_factory() for f in dataclasses.fields(config_class)
              if f.default_factory is not dataclasses.MISSING}
    return {name: dataclasses.replace(nested[name], **value) if isinstance(value, dict)
            else value for name, value in overrides.items()}


def cmd_train(args) -> int:
    from ilrl_ros.core.imitation import train_from_file
    path, result = train_from_file(args.data, args.output, log_dir=args.log_dir,
                                   bc=config_overrides(args, args.config_flags))
    print(f'wrote checkpoint {path} (train loss {result.train_loss:.4f}, validation loss '
          f'{result.val_loss:.4f}, {result.seconds:.1f} s)'
          + (f'; logs and curves.png in {args.log_dir}' if args.log_dir else ''))
    return 0


def cmd_train_weighted(args) -> int:
    from ilrl_ros.core.imitation import train_from_file
    options = config_overrides(args, args.config_flags)
    path, result = train_from_file(args.data, args.output, algorithm=args.algorithm,
                                   log_dir=args.log_dir, bc=options.pop('bc', {}),
                                   options=options)
    w = result.weights
    print(f'{args.algorithm}: weights {w.min():.3g}..{w.max():.3g}, effective sample size '
          f'{result.effective_sample_size:.0f} of {len(w)} rows')
    print(f'wrote checkpoint {path} (train loss {result.train_loss:.4f}, validation loss '
          f'{result.val_loss:.4f}, {result.seconds:.1f} s)'
          + (f'; logs and curves.png in {args.log_dir}' if args.log_dir else ''))
    return 0


def cmd_train_rl(args) -> int:
    from ilrl_ros.core.checkpoint import save_checkpoint
    from ilrl_ros.core.train_log import console_progress
    from ilrl_ros.core.training import train_rl
    if args.env and args.output:
        raise ValueError('a checkpoint needs a task spec: train on --task to write one '
                         '(--env runs are for benchmarks)')
    train_env = None
    if args.ros:
        if not args.task:
            raise ValueError('--ros trains over the graph of a task: name it with --task')
        from ilrl_ros.ros_env import RosEnv

        def train_env():
            return RosEnv(args.task, use_sim_time=args.ros_clock == 'sim')
    run = train_rl(args.algorithm, task=args.task, env_id=args.env, steps=args.steps,
                   seed=args.seed, log_dir=args.log_dir,
                   progress=console_progress(args.algorithm), eval_episodes=args.eval_episodes,
                   overrides=_nested_as_configs(_config_class(args.algorithm),
                                                config_overrides(args, args.config_flags)),
                   train_env=train_env)
    evaluation = run.evaluation
    print(f'{args.algorithm}: {run.env_steps} environment steps in {run.seconds:.1f} s'
          + (f'; evaluation over {len(evaluation)} episodes: return '
             f'{evaluation.mean_return:.1f} +/- {evaluation.std_return:.1f}'
             if evaluation else ''))
    if args.output:
        path = save_checkpoint(args.output, run.policy, algorithm=args.algorithm,
                               spec=run.spec, config=run.config,
                               provenance={'env_steps': run.env_steps, 'seconds': run.seconds,
                                           'seed': args.seed,
                                           'evaluation': evaluation.as_dict()
                                           if evaluation else None})
        print(f'wrote checkpoint {path}')
    if args.log_dir:
        print(f'logs and curves.png in {args.log_dir}')
    return 0


def add_to(sub, algorithms: bool = True) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands.

    ``algorithms=False`` adds the verb alone, for a command line that runs another verb:
    the algorithms' flags come from their config classes, whose modules load torch.
    """
    p = sub.add_parser('train', help='train a policy from a dataset',
                       description='Train with PyTorch and write a checkpoint '
                       '(safetensors + manifest.json), TensorBoard logs, metrics.csv and '
                       'curves.png: behavior cloning from a dataset, or reinforcement '
                       'learning on a task.')
    if not algorithms:
        return
    algos = p.add_subparsers(dest='algorithm', required=True, metavar='ALGORITHM')
    b = algos.add_parser('bc', help='behavior cloning',
                         description='Behavior cloning (Gaussian maximum likelihood or '
                         'deterministic regression) with observation/action normalisation.')
    b.add_argument('--data', required=True, help='dataset .npz from `ilrl convert`')
    b.add_argument('-o', '--output', required=True, help='checkpoint folder to write')
    b.add_argument('--log-dir', default=None, help='TensorBoard/CSV/PNG log folder')
    b.set_defaults(func=cmd_train, config_flags=add_config_flags(b, _config_class('bc')))
    weighted_about = {
        'rwr': ('reward-weighted regression (Peters & Schaal 2007)', 'Behavior cloning with '
                'each row weighted by exp(R_t / beta), R_t its discounted return-to-go in its '
                'episode (the largest return is subtracted before exp, which changes no '
                'relative weight).'),
        'awr': ('advantage-weighted regression (Peng et al. 2019)', 'A value network V(s) is '
                'fitted to TD(lambda) (or Monte Carlo) returns; each row is weighted by '
                'min(exp((R - V(s)) / beta), w_max) in behavior cloning.')}
    for name, (short, long) in weighted_about.items():
        w = algos.add_parser(
            name, help=short, formatter_class=argparse.RawDescriptionHelpFormatter,
            description=f'{short[0].upper()}{short[1:]}. {long} For demonstrations of mixed '
            "quality: the dataset needs rewards (record the reward monitor's topic 'reward' "
            'in the bag, or use `ilrl collect`). Writes a checkpoint the policy node runs.\n\n'
            f'example:\n  ilrl train {name} --data data/mixed.npz -o checkpoints/{name} '
            f'--log-dir runs/{name} --beta 2')
        w.add_argument('--data', required=True, help='dataset .npz with rewards')
        w.add_argument('-o', '--output', required=True, help='checkpoint folder to write')
        w.add_argument('--log-dir', default=None, help='TensorBoard/CSV/PNG log folder')
        w.set_defaults(func=cmd_train_weighted,
                       config_flags=add_config_flags(w, _config_class(name), flatten=('bc',)))
    from ilrl_ros.cli.train_adversarial import add_parsers as add_adversarial
    add_adversarial(algos)
    from ilrl_ros.cli.train_irl import add_parser as add_irl
    add_irl(algos)
    from ilrl_ros.core.training import ALGORITHMS
    about = {'reinforce': 'REINFORCE with reward-to-go and a baseline (Williams 1992)',
             'a2c': 'advantage actor-critic with GAE', 'ppo': 'PPO (Schulman et al. 2017)',
             'recurrent_ppo': 'PPO with a memory: a GRU (--memory gru) or the last '
                              '--history observations (--memory stack)',
             'dqn': 'DQN (Mnih et al. 2015); continuous tasks get discretised actions',
             'ddpg': 'DDPG (Lillicrap et al. 2015)', 'td3': 'TD3 (Fujimoto et al. 2018)',
             'sac': 'SAC with automatic entropy tuning (Haarnoja et al. 2018)',
             'mbrl': 'learned dynamics ensemble + CEM model-predictive control',
             'lqr': 'LQR on the linearised pendulum (no training)'}
    for name in ALGORITHMS:
        r = algos.add_parser(name, help=about[name], description=about[name] + '. Trains '
                             'on a task (writes a checkpoint the policy node runs) or a '
                             'gymnasium env, then evaluates the deterministic policy.')
        where = r.add_mutually_exclusive_group(required=True)
        where.add_argument('--task', help='our task (pendulum, track_follow, or a spec YAML)')
        where.add_argument('--env', help='a gymnasium env id, e.g. CartPole-v1 (no checkpoint)')
        r.add_argument('-o', '--output', default=None, help='checkpoint folder to write')
        r.add_argument('--log-dir', default=None, help='TensorBoard/CSV/PNG log folder')
        r.add_argument('--steps', type=int, default=None,
                       help='environment steps (default: the preset for the env/task)')
        r.add_argument('--seed', type=int, default=0, help='seed (default: 0)')
        r.add_argument('--eval-episodes', type=int, default=10,
                       help='evaluation episodes after training (default: %(default)s)')
        r.add_argument('--ros', action='store_true',
                       help='train through the running ROS 2 graph of --task (RosEnv: '
                       'start it first, e.g. `ilrl sim --task pendulum --robot-mode lock_step '
                       '--no-expert`) instead of the in-process simulator; the evaluation '
                       'runs in the simulator')
        r.add_argument('--ros-clock', choices=('sim', 'wall'), default='sim',
                       help="with --ros: the graph's clock (default: %(default)s)")
        r.set_defaults(func=cmd_train_rl, config_flags=add_config_flags(
            r, _config_class(name), skip=('total_steps', 'seed')))
