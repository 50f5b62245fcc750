"""DAgger over live ROS 2: rounds of driving, expert labels, retraining and runtime swaps.

Ross, Gordon & Bagnell, "A Reduction of Imitation Learning and Structured Prediction to
No-Regret Online Learning", AISTATS 2011. Against a running graph (mock robot or real
robot, episode manager, expert, policy, demo recorder), round 0 lets the expert drive
(demonstrations); every later round lets the policy trained so far drive, while the
``expert`` node publishes the action it would have taken for every observed state on
``expert/action`` (or a human teleoperator publishes labels on a topic of their own, e.g.
``teleop/cmd_vel``). Each round is recorded into its own bag; the bag is converted (rows are
the executed commands' observations, labels the expert's; states without a label are
dropped, never guessed), aggregated with the earlier rounds' data (D <- D u D_i), behavior
cloning is retrained on the aggregate, and the checkpoint is swapped into the running
policy node by parameter. No node is restarted.

The mixture pi_i = beta_i pi* + (1 - beta_i) pi_hat_i is drawn per episode: the expert
drives a whole episode with probability beta_i (``ilrl_ros.core.algorithms.dagger``'s
schedules; by default Ross's beta = 1 for round 0, then 0). Whoever drives, every state is
labelled.

Data flow::

    robot --sensors--> policy (or expert, beta_i) --cmd_vel--> robot
            `--> expert --expert/action (labels)--.
    demo_recorder: sensors, cmd_vel, labels, episode events --> bags/dagger_round_00i
    bag --convert--> D_i ; D <- D u D_i --BC--> checkpoints/round_00i --SetParameters--> policy

Run it with ``ilrl dagger`` against ``ros2 launch ilrl_ros dagger.launch.py`` (which also
starts this driver), or ``ilrl dagger --graph`` to start the ``ilrl sim`` graph itself.
"""

from dataclasses import asdict, dataclass, field
from itertools import groupby
import json
import os
from pathlib import Path
import shutil
import sys
import time

import numpy as np

from ilrl_ros.core.scoring import summarize
from ilrl_ros.graph import GraphConfig, sim_argv, truthy
from ilrl_ros.graph_client import Operator, OperatorError

DEFAULT_LABEL_TOPIC = 'expert/action'


@dataclass
class LiveDAggerConfig:
    """Settings of a live DAgger run."""

    task: str = 'track_follow'
    """Task spec (bundled name or YAML path); the same the graph's nodes run."""
    rounds: int = 4
    """Rounds in all, round 0 (the expert's demonstrations) included."""
    episodes_per_round: int = 3
    """Finished (not aborted) episodes driven in each round."""
    schedule: str = 'ross'
    """Beta schedule (``ilrl_ros.core.algorithms.dagger.beta_for_round``): 'ross' (1 for
    round 0, then 0) or 'exponential' (p^i in round i)."""
    p: float = 0.5
    """Decay of the exponential schedule."""
    label_topic: str = DEFAULT_LABEL_TOPIC
    """Where the labels come from: the expert node's ``expert/action``, or a human
    teleoperator's topic such as ``teleop/cmd_vel`` (the recorder must record it)."""
    label_tolerance_s: float = None
    """How long a label stays valid for a later command (unstamped labels, e.g. a human's
    Twist); None: the converter's default."""
    expert: str = 'scripted'
    """What the expert node of a graph started here (``--graph``) runs: 'scripted' or
    'checkpoint:<folder>' (a teacher; ``ilrl_ros.core.experts.teacher``). A graph started
    elsewhere runs what its expert node's ``expert`` parameter says."""
    expert_noise_std: tuple = ()
    """DART: noise on the command the expert drives with (one number or one per action
    field), set on the expert node's ``noise_std`` before round 0; empty: leave it as it is."""
    bc_steps: int = 2000
    """Behavior cloning gradient steps per round (retrained from scratch on the aggregate)."""
    eval_episodes: int = 3
    """Episodes of the final policy after the last round, not recorded (0: none)."""
    episode_timeout_s: float = None
    """Wall-clock seconds to wait for one episode; None: 4 x the task's timeout + 60."""
    out: str = 'dagger_out'
    """Output folder: bags/, datasets/, checkpoints/, logs/, results.md, results.json."""
    seed: int = 0
    """Seeds the per-episode draws of who drives and the training."""
    device: str = 'cpu'
    """Where each round's behavior cloning trains: cpu, cuda, cuda:N or auto; the policy node
    gets a CPU checkpoint either way."""
    policy_node: str = 'policy'
    """Name of the policy node whose ``checkpoint`` parameter is swapped."""
    expert_node: str = 'expert'
    """Name of the expert node whose ``drive`` parameter is switched."""
    recorder_node: str = 'demo_recorder'
    """Name of the recorder node (``~/start``, ``~/stop``)."""
    episode_manager: str = 'episode_manager'
    """Name of the episode manager node (``~/restart``)."""
    robots: int = 1
    """Robots gathering each round in parallel (``--graph`` starts them in one fleet), each in
    its namespace (``ilrl_ros.fleet``): every round drives each of them for
    ``episodes_per_round`` episodes and the one policy trained on all their data is swapped
    into every robot's policy node."""
    namespace: str = ''
    """The robot's namespace, or the prefix of the robots' (``ilrl_ros.fleet``)."""


def round_name(index: int) -> str:
    """The bag name of a round, e.g. ``dagger_round_003``."""
    return f'dagger_round_{index:03d}'


def episode_drivers(beta: float, episodes: int, rng: np.random.Generator) -> list:
    """Who drives each episode of a round: 'expert' with probability beta, else 'policy'."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f'beta is the probability that the expert drives an episode and '
                         f'must be in [0, 1], got {beta}')
    return ['expert' if rng.random() < beta else 'policy' for _ in range(episodes)]


def convert_round(bag, spec, label_topic: str = DEFAULT_LABEL_TOPIC,
                  label_tolerance_s: float = None, namespace: str = ''):
    """A round's bag as (Demonstrations, ConversionReport): executed states, given labels.

    Rows are anchored on the executed commands; each takes the newest label at or before it
    within the tolerance, and a state without one is dropped (``ilrl_ros.convert``).
    """
    from ilrl_ros.convert import bag_to_dataset
    return bag_to_dataset(bag, spec, label_topic=label_topic,
                          label_tolerance_s=label_tolerance_s, namespace=namespace)


def _summary(results: list) -> dict:
    """Episodes, success rate and mean return of a round's finished episodes."""
    row = summarize(results)
    del row['mean_lap_time_s']
    return row


def format_rounds(rows: list, final: dict = None) -> str:
    """The per-round table (and the final policy's evaluation) as Markdown."""
    lines = ['| round | beta | episodes (expert-driven) | new labelled states | dataset size | '
             'success rate | mean return |', '|---:|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f'| {r["round"]} | {r["beta"]:.3g} | {r["episodes"]} '
                     f'({r["expert_episodes"]}) | {r["new_labels"]} | {r["dataset_size"]} | '
                     f'{r["success_rate"]:.0%} | {r["mean_return"]:.2f} |')
    if final:
        lines.append(f'| final policy | 0 | {final["episodes"]} (0) | - | - | '
                     f'{final["success_rate"]:.0%} | {final["mean_return"]:.2f} |')
    return '\n'.join(lines)


@dataclass
class LiveDAggerResult:
    """What a live DAgger run did: the per-round rows, the final evaluation, the checkpoint."""

    rows: list
    """One dict per round: round, beta, episodes, expert_episodes, new_labels, dataset_size,
    success_rate, mean_return, bag, dataset, checkpoint, dropped, policy_status, seconds,
    and the round's episode results."""
    final: dict = field(default_factory=dict)
    """The final policy's unrecorded evaluation episodes (summary and results), if any."""
    checkpoint: str = ''
    """The last checkpoint, now running in the policy node."""
    policy_status: list = field(default_factory=list)
    """Snapshots of the policy node's status: at the start, after each swap, at the end
    (its counters only ever grew: it was not restarted)."""


class LiveDAgger:
    """Runs DAgger rounds on a running graph through an ``Operator``; see the module doc."""

    def __init__(self, config: LiveDAggerConfig, operator: Operator, check_alive=None,
                 robot: str = '', fleet=()):
        from ilrl_ros.core.algorithms.dagger import beta_for_round
        from ilrl_ros.core.spec import load_spec
        self.config = config
        self.op = operator
        self.spec = load_spec(config.task)
        self.out = Path(config.out)
        self.rng = np.random.default_rng(config.seed)
        self.check_alive = check_alive or (lambda: None)
        self.checkpoint = None
        self.policy_loaded = None
        self.driver = None
        self._status_seen = []
        self._beta = beta_for_round
        # A fleet: this robot's operator is ``operator``, each other's one of ``fleet``
        # ((namespace, Operator) pairs); every robot keeps its own driver and status history.
        self.robot = robot
        self.members = [self] + [LiveDAgger(config, op, check_alive, robot=namespace)
                                 for namespace, op in fleet]
        if config.rounds < 1:
            raise ValueError(f'rounds must be at least 1 (round 0: the expert), got '
                             f'{config.rounds}')
        if config.episodes_per_round < 1:
            raise ValueError(f'episodes_per_round must be at least 1, got '
                             f'{config.episodes_per_round}')
        beta_for_round(config.schedule, 1, config.p)
        self.timeout_s = config.episode_timeout_s or self.spec.termination.timeout_s * 4 + 60

    # Talking to the graph ----------------------------------------------------------------

    def _policy_status(self, timeout_s: float = 30.0) -> dict:
        self.op.spin_until(lambda: self.op.policy_status is not None, timeout_s,
                           f'{self.config.policy_node}/status (is the policy node running?)')
        return self.op.policy_status

    def _check_policy_not_restarted(self, fresh: bool = False) -> dict:
        if fresh:
            # The status comes once a period (steady clock): a lock-step episode can end
            # between two, so wait for one published after it.
            self.op.policy_status = None
        status = dict(self._policy_status())
        if self._status_seen:
            before = self._status_seen[-1]
            for key in ('ticks', 'commands', 'swaps'):
                if status.get(key, 0) < before.get(key, 0):
                    raise OperatorError(
                        f'the policy node restarted: its {key} count went from {before[key]} '
                        f'to {status[key]}; DAgger swaps checkpoints into a running node')
        self._status_seen.append(status)
        return status

    def _swap(self, checkpoint: Path) -> dict:
        path = str(Path(checkpoint).resolve())
        swaps = self._policy_status().get('swaps', 0)
        self.op.set_parameter(self.config.policy_node, 'checkpoint', path)
        self.op.spin_until(
            lambda: (self.op.policy_status.get('swaps', 0) > swaps
                     and Path(self.op.policy_status.get('checkpoint') or '.').resolve()
                     == Path(path)),
            30.0, f'{self.config.policy_node}/status to report checkpoint {path}')
        self.policy_loaded = path
        return self._check_policy_not_restarted()

    def _drive(self, driver: str) -> None:
        """Hand the robot to 'expert' or to the current 'policy', never to both at once.

        The new driver takes over from the old one's last step: the expert node and the
        policy node both answer the observation a lock-step robot repeats while it waits.
        """
        if driver == 'expert':
            if self.driver == 'expert':
                return
            if self.policy_loaded:
                self.op.set_parameter(self.config.policy_node, 'checkpoint', '')
                self.policy_loaded = None
            self.op.set_parameter(self.config.expert_node, 'drive', True)
        else:
            if self.driver != 'policy':
                self.op.set_parameter(self.config.expert_node, 'drive', False)
            if self.policy_loaded != str(Path(self.checkpoint).resolve()):
                self._swap(self.checkpoint)
        self.driver = driver

    # The rounds ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        existing = sorted(p.name for p in (self.out / 'bags').glob('dagger_round_*'))
        if existing:
            raise ValueError(f'{self.out} already holds a DAgger run ({", ".join(existing)}); '
                             'give another --out')
        from std_srvs.srv import Trigger
        for service in (f'{self.config.recorder_node}/start',
                        f'{self.config.episode_manager}/restart'):
            client = self.op.node.create_client(Trigger, service)
            try:
                self.op.spin_until(client.service_is_ready, 30.0, f'service {service}')
            except OperatorError:
                raise OperatorError(
                    f'no {service} service after 30 s: start the graph first (ros2 launch '
                    'ilrl_ros dagger.launch.py, or ilrl dagger --graph)') from None
            finally:
                self.op.node.destroy_client(client)
        self.policy_loaded = self._policy_status().get('checkpoint') or None
        self._check_policy_not_restarted()
        if self.config.expert_noise_std:
            noise = [float(v) for v in self.config.expert_noise_std]
            self.op.set_parameter(self.config.expert_node, 'noise_std',
                                  noise[0] if len(noise) == 1 else noise)

    def _drive_episodes(self, drivers: list, label: str) -> list:
        results, after = [], None
        for driver, run in groupby(drivers):
            count = len(list(run))
            self._drive(driver)
            # Restart so that the next episode is the new driver's from its first step.
            after = self.op.restart_episode(self.config.episode_manager)
            who = f'{self.robot} {label}' if self.robot else label
            got = self.op.wait_episodes(count, f'{who} {driver}', self.timeout_s * count,
                                        after_episode=after)
            results += [{**r, 'driver': driver} for r in got]
            self.check_alive()
        return results

    def _record_round(self, index: int, drivers: list) -> tuple:
        bag = Path(self.op.trigger(f'{self.config.recorder_node}/start'))
        # The recorder subscribes as it starts: the round begins once its subscriptions have
        # matched every publisher of what it records (a teleoperator's label topic included),
        # so that the bag holds the round from its first step.
        label = self.config.label_topic
        self.op.wait_recorder_matched(
            self.config.recorder_node, expect=() if label == DEFAULT_LABEL_TOPIC else (label,))
        results = self._drive_episodes(drivers, f'round {index}')
        stopped = self.op.trigger(f'{self.config.recorder_node}/stop')
        print(f'    recorder: {stopped}', flush=True)
        if not bag.is_dir():
            raise OperatorError(f'the recorder wrote {bag}, which this machine cannot see: '
                                'run ilrl dagger where the bags are written')
        target = self.out / 'bags' / round_name(index)
        target = target / self.robot if self.robot else target
        target.parent.mkdir(parents=True, exist_ok=True)
        if bag.resolve() != target.resolve():
            shutil.move(str(bag), str(target))
        return target, results

    def _train(self, index: int, data) -> tuple:
        from ilrl_ros.core.imitation import train_and_save
        from ilrl_ros.core.rl.torch_settings import torch_settings

        def progress(step, total, metrics):
            print(f'    bc step {step}/{total}: loss {metrics["train/loss"]:.3f}', flush=True)

        bc = {'steps': self.config.bc_steps, 'seed': self.config.seed + index,
              'log_every': max(1, self.config.bc_steps // 5), 'device': self.config.device}
        with torch_settings(1):
            return train_and_save(
                data, self.out / 'checkpoints' / round_name(index), bc=bc, label='dagger',
                log_dir=self.out / 'logs' / round_name(index), progress=progress,
                provenance={'round': index, 'dagger': asdict(self.config)})

    def _in_parallel(self, tasks: list) -> list:
        """Run each robot's part of a step at once (one thread per robot); their results."""
        if len(tasks) == 1:
            return [tasks[0]()]
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(len(tasks)) as pool:
            futures = [pool.submit(task) for task in tasks]
            return [future.result() for future in futures]

    def run(self) -> LiveDAggerResult:
        from ilrl_ros.core.rollouts import aggregate
        config = self.config
        started = time.monotonic()
        for member in self.members:
            member._prepare()
        rows, datasets = [], []
        for index in range(config.rounds):
            round_started = time.monotonic()
            beta = self._beta(config.schedule, index + 1, config.p)
            if self.checkpoint is None and beta < 1.0:
                raise ValueError(f'round {index} has beta={beta:g} but no policy has been '
                                 'trained yet; use a schedule with beta = 1 in round 0')
            drivers = [episode_drivers(beta, config.episodes_per_round, self.rng)
                       for _ in self.members]
            expert_count = sum(d.count('expert') for d in drivers)
            print(f'[round {index}/{config.rounds - 1}] beta {beta:.3g}: the expert drives '
                  f'{expert_count} of {sum(map(len, drivers))} episodes'
                  + (f' on {len(drivers)} robots' if len(drivers) > 1 else '')
                  + f', the policy the rest; labels from {config.label_topic}', flush=True)
            # Every robot drives its episodes at the same time, recorded into its own bag.
            recorded = self._in_parallel(
                [lambda m=m, d=d, i=index: m._record_round(i, d)
                 for m, d in zip(self.members, drivers)])
            bags, results, parts, report = [], [], [], None
            for member, (bag, got) in zip(self.members, recorded):
                part, part_report = convert_round(bag, self.spec, config.label_topic,
                                                  config.label_tolerance_s,
                                                  namespace=member.robot)
                print('    ' + part_report.summary().replace('\n', '\n    '), flush=True)
                bags.append(bag)
                results += [{**r, 'robot': member.robot} if member.robot else r for r in got]
                parts.append(part)
                if report is None:
                    report = part_report
                else:
                    report.dropped.update(part_report.dropped)
                    report.commands += part_report.commands
            data = parts[0] if len(parts) == 1 else aggregate(parts)
            datasets.append(data)
            aggregated = aggregate(datasets)
            dataset_path = aggregated.save(self.out / 'datasets' / f'{round_name(index)}.npz')
            print(f'    +{len(data)} labelled states: {len(aggregated)} in the aggregate '
                  f'({dataset_path}); training behavior cloning', flush=True)
            self.checkpoint, trained = self._train(index, aggregated)
            # The new policy drives from here on (until an expert episode of a later round):
            # swapped into the running node (of every robot), under its own commands from
            # round 1 on.
            for member in self.members:
                member.checkpoint = self.checkpoint
                member._drive('policy')
            status = self._status_seen[-1]
            print(f'    swapped {self.checkpoint} into the running {config.policy_node} '
                  f'node (swap {status["swaps"]}, {status["commands"]} commands so far)',
                  flush=True)
            rows.append({'round': index, 'beta': beta, **_summary(results),
                         'expert_episodes': sum(r['driver'] == 'expert' for r in results),
                         'new_labels': len(data), 'dataset_size': len(aggregated),
                         'bag': str(bags[0]) if len(bags) == 1 else [str(b) for b in bags],
                         'dataset': str(dataset_path),
                         'checkpoint': str(self.checkpoint),
                         'dropped': dict(report.dropped), 'commands_in_bag': report.commands,
                         'train_loss': trained.train_loss, 'policy_status': status,
                         'seconds': time.monotonic() - round_started, 'results': results})
            # Written as it goes: a long run on a robot keeps the rounds done so far.
            write_results(LiveDAggerResult(rows=rows, checkpoint=str(self.checkpoint),
                                           policy_status=list(self._status_seen)),
                          config, time.monotonic() - started)
        final = {}
        if config.eval_episodes:
            print(f'[final] the last policy drives {config.eval_episodes} episodes '
                  '(not recorded)', flush=True)
            results = sum(self._in_parallel(
                [lambda m=m: m._drive_episodes(['policy'] * config.eval_episodes, 'final')
                 for m in self.members]), [])
            final = {**_summary(results), 'results': results}
        for member in self.members:
            member._check_policy_not_restarted(fresh=True)
        result = LiveDAggerResult(rows=rows, final=final, checkpoint=str(self.checkpoint),
                                  policy_status=list(self._status_seen))
        write_results(result, config, time.monotonic() - started)
        return result


def write_results(result: LiveDAggerResult, config: LiveDAggerConfig, seconds: float) -> str:
    """Write results.md and results.json under the run's output folder; return the table."""
    out = Path(config.out)
    table = format_rounds(result.rows, result.final)
    text = (f'# ilrl dagger (live ROS 2): {config.task}\n\n{table}\n\n'
            f'Labels from {config.label_topic}; beta schedule {config.schedule!r}; '
            f'{config.episodes_per_round} episodes per round; {config.bc_steps} BC steps per '
            f'round. Checkpoints swapped into the running policy node: {len(result.rows)} '
            f'(its counters never went back: it was not restarted). {seconds:.0f} s.\n')
    (out / 'results.md').write_text(text)
    (out / 'results.json').write_text(json.dumps(
        {'task': config.task, 'config': asdict(config), 'rounds': result.rows,
         'final': result.final, 'checkpoint': result.checkpoint,
         'policy_status': result.policy_status, 'seconds': seconds}, indent=2, default=str))
    return table


def dagger_graph(task: str, out: str, seed: int, label_topic: str, **graph) -> GraphConfig:
    """The graph a live DAgger run drives.

    The expert labels (it does not drive), the recorder waits for ~/start and writes under
    ``out``/bags, and a teleoperator's label topic is recorded too.
    """
    return GraphConfig(
        task=task, robot=True, policy_mode='event', expert=True, expert_drive=False,
        record=True, record_autostart=False, bag_dir=str(Path(out) / 'bags'),
        bag_name='recording', seed=seed,
        record_topics=(label_topic,) if label_topic != DEFAULT_LABEL_TOPIC else (), **graph)


def graph_arguments(config: LiveDAggerConfig) -> list:
    """``ilrl sim`` arguments of the graph a live DAgger run needs (``--graph``)."""
    return sim_argv(dagger_graph(config.task, config.out, config.seed, config.label_topic,
                                 expert_source=config.expert, robots=config.robots,
                                 namespace=config.namespace))


def run_live_dagger(config: LiveDAggerConfig, start_graph: bool = False) -> int:
    """Run live DAgger (starting the ``ilrl sim`` graph first with ``start_graph``)."""
    import rclpy
    from ilrl_ros.graph_client import start_graph as start, stop_graph
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    graph = None
    check_alive = None
    if start_graph:
        print(f'starting the node graph for {config.task!r} (log: {out / "graph.log"})',
              flush=True)
        graph = start(graph_arguments(config), out / 'graph.log')

        def check_alive():
            if graph.poll() is not None:
                raise OperatorError(f'the graph process exited with {graph.returncode}; '
                                    f'see {out / "graph.log"}')
    context = rclpy.Context()
    rclpy.init(context=context)
    # One operator per robot, in the robot's namespace.
    from ilrl_ros.fleet import robot_namespaces
    robots = [(namespace, Operator(context, name='ilrl_dagger', namespace=namespace or None))
              for namespace in robot_namespaces(GraphConfig(robots=config.robots,
                                                            namespace=config.namespace))]
    try:
        (robot, operator), *fleet = robots
        result = LiveDAgger(config, operator, check_alive, robot=robot, fleet=fleet).run()
        if graph is not None:
            check_alive()
    finally:
        for _, operator in robots:
            operator.close()
        rclpy.try_shutdown(context=context)
        if graph is not None:
            stop_graph(graph)
    print('\n' + format_rounds(result.rows, result.final))
    print(f'total {time.monotonic() - started:.0f} s')
    print(f'\nwrote {out / "results.md"} and {out / "results.json"}')
    return 0


def dagger_command(task: str, rounds: int, episodes_per_round: int, label_topic: str,
                   out: str, label_tolerance_s: str = '', schedule: str = 'ross',
                   bc_steps: int = 2000, eval_episodes: int = 3, seed: int = 0,
                   expert_noise_std: str = '') -> list:
    """The ``ilrl dagger`` command line that launch/dagger.launch.py runs (no --graph)."""
    command = [sys.executable, '-m', 'ilrl_ros.cli', 'dagger', '--task', str(task),
               '--rounds', str(rounds), '--episodes-per-round', str(episodes_per_round),
               '--label-topic', str(label_topic), '--schedule', str(schedule),
               '--bc-steps', str(bc_steps), '--eval-episodes', str(eval_episodes),
               '--seed', str(seed), '--out', str(out)]
    if str(label_tolerance_s).strip():
        command += ['--label-tolerance', str(label_tolerance_s)]
    if str(expert_noise_std).strip():
        command += ['--dart-noise', str(expert_noise_std)]
    return command


def launch_plan(arguments: dict):
    """(GraphConfig, driver command) of launch/dagger.launch.py from its arguments' text."""
    # Absolute, so that the recorder and the driver agree whatever their working folders.
    out = str(Path(arguments['out_dir']).expanduser().resolve())
    label_topic = arguments['label_topic']
    config = dagger_graph(arguments['task'], out, int(arguments['seed']), label_topic,
                          robot_mode=arguments['robot_mode'], clock=arguments['clock'])
    if not truthy(arguments.get('run_driver', 'true')):
        return config, None
    command = dagger_command(
        arguments['task'], int(arguments['rounds']), int(arguments['episodes_per_round']),
        label_topic, out, label_tolerance_s=arguments.get('label_tolerance_s', ''),
        schedule=arguments.get('schedule', 'ross'),
        bc_steps=int(arguments.get('bc_steps', 2000)),
        eval_episodes=int(arguments.get('eval_episodes', 3)), seed=int(arguments['seed']),
        expert_noise_std=arguments.get('dart_noise_std', ''))
    return config, command
