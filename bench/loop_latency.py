"""Observation-to-command latency through the ``policy`` node, next to a bare rclpy floor.

A driver (this process) plays the robot: it publishes the task's sensor messages at a fixed
rate, all messages of one observation with the same stamp, and listens for the command. The
system under test (SUT) runs in a process of its own and is one of:

- ``ilrl``: the real ``policy`` node (``python -m ilrl_ros.nodes.policy``, event mode),
  running an MLP checkpoint this benchmark writes (random weights: latency does not depend
  on training), from this checkout's ``ilrl_ros``;
- ``bare``: the floor, ``bench/latency/bare.py``: a plain rclpy node with the same
  subscriptions and QoS that turns the messages into the same observation with numpy, runs
  the same network (same weights, one torch thread, inference mode), clamps and publishes
  the same command. Its process imports nothing from ilrl_ros;
- ``echo``: the bare node answering each synchronised observation with a constant command:
  what transport and executors alone cost on this machine (no numpy, no network).

::

    driver process (this one)                          SUT process (ilrl | bare | echo)
    timer @ rate --> scan + odom, stamp s, best effort --> subscriptions (sensor data QoS)
      send[s] = clock just before the first publish         observation -> MLP -> clamp
    <-- cmd_vel TwistStamped, reliable depth 10, header.stamp = s
      latency = DDS reception time of the command - send[s]

Latency ends at the DDS reception timestamp of the command (rmw MessageInfo), so the
driver's own executor delay is not counted; the time until the driver's Python callback ran
is in the JSON as ``callback_latency_us``. It includes the driver publishing the
observation's messages (printed). A command without a stamp (Float64MultiArray, the
pendulum task) is matched to the newest observation sent before it arrived; a command later
than one period is then mis-matched, so only stamped commands give exact numbers.

A tick is missed when its observation got no command (``lost``) or its command arrived
after the next observation was sent (``late``).

Timer mode: the policy node runs with ``mode:=timer`` at ``--timer-rate`` while the driver
streams observations at that rate. A tick is on time when its period of the timer's grid
(placed at the commands' mean phase) received exactly one command, within half a period;
also reported are commands per second, the share of intervals between arrivals within
+/-50% of the period, and the node's own counters from ``/policy/status``. The bare floor
has no timer mode: it is a ping-pong by construction.

Runs are interleaved (every rate runs each SUT in turn, the order rotating) so that a change
in machine load hits all systems alike. ``others`` is the CPU (in cores) that every process
but the driver and the SUT used during a window, ``wait`` the share of it in which some task
waited for a CPU (Linux PSI): figures taken while either is high measure the machine more
than the SUT. Nothing is asserted: the script prints figures and targets and exits 0 unless
it could not run. No process is pinned; every SUT runs in a session of its own and is killed
with its process group however the benchmark ends.

Examples::

    python bench/loop_latency.py
    python bench/loop_latency.py --rates 500 --duration 10 --rounds 3 --json /tmp/lat.json
    python bench/loop_latency.py --task pendulum --rates 100 500 --timer-rate 0
    python bench/loop_latency.py --checkpoint runs/bc/checkpoint --rates 500 --systems bare ilrl
"""

import argparse
import json
import os
from pathlib import Path
import platform
import shutil
import signal
import sys
import tempfile
import time

# Everything the benchmark publishes stays on this machine unless the user says otherwise;
# set before rclpy is imported here or in any child.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('RCUTILS_LOGGING_BUFFERED_STREAM', '1')

# The parts live in bench/latency/ (this file's folder is first on sys.path when it runs).
from latency.driver import Driver, log, others_cpu_s, REPO  # noqa: E402
from latency.report import fmt, print_event_table, print_timer, TARGETS  # noqa: E402
from latency.stats import event_rows, event_stats, summary_us, timer_stats  # noqa: E402
from latency.sut import bare_plan, make_checkpoint, Sut  # noqa: E402

SYSTEMS = ('echo', 'bare', 'ilrl')


def wait_for_quiet(limit: float, max_wait_s: float) -> float:
    """Wait until the other processes use less than ``limit`` cores (or time runs out)."""
    deadline = time.monotonic() + max_wait_s
    while True:
        before, t0 = others_cpu_s({os.getpid()}), time.monotonic()
        time.sleep(0.5)
        load = (others_cpu_s({os.getpid()}) - before) / (time.monotonic() - t0)
        if load <= limit or time.monotonic() > deadline:
            return load
        log(f'  waiting for a quieter machine: other processes use {load:.2f} cores')


def measure(args, driver, command: list, log_path: Path, rate_hz: float) -> dict:
    """One run; with --max-others, after waiting for a quiet machine and again if it was not."""
    attempts = 1 + (args.retries if args.max_others else 0)
    for attempt in range(attempts):
        if args.max_others:
            wait_for_quiet(args.max_others, args.quiet_wait)
        record = driver.run(command, log_path, rate_hz, args.warmup, args.duration,
                            args.startup_timeout)
        record['attempts'] = attempt + 1
        record['over_limit'] = bool(args.max_others) and \
            record['others_cpu'] > args.max_others
        if not record['over_limit']:
            break
        log(f'  other processes used {record["others_cpu"]:.2f} cores in the window '
            f'(limit {args.max_others:g})' + ('; measuring again' if attempt + 1 < attempts
                                               else '; keeping it, flagged'))
    return record


def run_event_mode(args, driver, sut) -> dict:
    """Interleave every system at every rate, ``args.rounds`` times; records by (rate, system)."""
    records = {}
    turn = 0
    for round_index in range(args.rounds):
        for rate in args.rates:
            # Rotate the order so that no system always runs first (or right after start-up).
            shift = turn % len(args.systems)
            turn += 1
            for system in args.systems[shift:] + args.systems[:shift]:
                log(f'round {round_index + 1}/{args.rounds}, {rate:g} Hz, {system}: start, '
                    f'{args.warmup:g} s warm-up, {args.duration:g} s measured')
                record = measure(args, driver, sut(system),
                                 sut.work / f'{system}_{rate:g}hz_r{round_index}.log', rate)
                stats, _ = event_stats([record], driver.stamped)
                lat = stats['latency_us']
                log(f'  answered {record["startup_s"]:.1f} s after start; {stats["samples"]} '
                    f'samples, p50 {fmt(lat["p50"])} us, p99 {fmt(lat["p99"])} us, missed '
                    f'{stats["missed"]}, SUT cpu {100 * record["sut_cpu"]:.0f}%, others '
                    f'{record["others_cpu"]:.2f} cores, cpu wait '
                    f'{fmt(100 * record["cpu_pressure"])}%')
                errors = [s for _, s in record['statuses'] if s.get('errors')]
                if errors:
                    log(f'  the policy node reported errors: {errors[-1]}')
                records.setdefault((rate, system), []).append(record)
    return records


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='loop_latency.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Table columns: sent = observations sent in the measured windows; samples = '
               'those answered; p50/p99/max = latency in microseconds; missed = lost (no '
               'command) + late (command after the next observation was sent); cpu = share '
               'of one core the SUT process used; others = cores used by all other processes '
               'but the driver; wait = share of the time some task waited for a CPU; '
               'p50x/p99x = ilrl / bare at the same rate. Targets (printed, never asserted): '
               'at 500 Hz p50x <= 1.3 and p99x <= 1.5; in timer mode at 500 Hz >= 99.5% of '
               'ticks on time.')
    parser.add_argument('--task', default='track_follow',
                        help='bundled task name or spec YAML path (default: %(default)s)')
    parser.add_argument('--rates', type=float, nargs='+', default=[100.0, 500.0, 1000.0],
                        metavar='HZ', help='observation rates of the event-mode runs '
                        '(default: 100 500 1000)')
    parser.add_argument('--duration', type=float, default=3.0, metavar='S',
                        help='measured seconds per run (default: %(default)s)')
    parser.add_argument('--warmup', type=float, default=1.0, metavar='S',
                        help='seconds streamed after the first command, before measuring '
                             '(default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=1,
                        help='repeat the interleaved runs; the samples of a rate and system '
                             'are pooled (default: %(default)s)')
    parser.add_argument('--systems', nargs='+', choices=SYSTEMS, default=list(SYSTEMS),
                        help='SUTs of the event-mode runs (default: echo bare ilrl)')
    parser.add_argument('--timer-rate', type=float, default=500.0, metavar='HZ',
                        help='control_rate_hz of the timer-mode run of the policy node; 0 '
                             'skips it (default: %(default)s)')
    parser.add_argument('--checkpoint', default='',
                        help='run this checkpoint (a deterministic MLP for the task) instead '
                             'of a fresh random one')
    parser.add_argument('--hidden', type=int, nargs='+', default=[256, 256],
                        help='hidden layer sizes of the fresh MLP (default: 256 256)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the fresh MLP weights (default: %(default)s)')
    parser.add_argument('--startup-timeout', type=float, default=60.0, metavar='S',
                        help='seconds to wait for a SUT to answer its first observation '
                             '(default: %(default)s)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID of the driver and the SUTs (default: '
                             '$ROS_DOMAIN_ID, else one derived from the process id). '
                             'Discovery stays on this machine unless '
                             'ROS_AUTOMATIC_DISCOVERY_RANGE says otherwise.')
    parser.add_argument('--max-others', type=float, default=0.0, metavar='CORES',
                        help='before each run wait (up to --quiet-wait s) until other '
                             'processes use less than CORES cores, and measure a run again '
                             '(up to --retries times) when they used more during it; 0 '
                             'measures whatever the load (default: %(default)s)')
    parser.add_argument('--quiet-wait', type=float, default=60.0, metavar='S',
                        help='longest wait for a quiet machine (default: %(default)s)')
    parser.add_argument('--retries', type=int, default=2,
                        help='extra attempts of a run disturbed by other processes '
                             '(default: %(default)s)')
    parser.add_argument('--json', default='', metavar='PATH',
                        help='also write the results to this JSON file')
    parser.add_argument('--keep-logs', action='store_true',
                        help='keep the work folder (checkpoint, bare plan, SUT logs); it is '
                             'always kept when a run fails')
    args = parser.parse_args(argv)
    if (args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or min(args.rates) <= 0
            or args.timer_rate < 0):
        parser.error('durations and rates must be positive, --rounds at least 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.domain_id is not None:
        os.environ['ROS_DOMAIN_ID'] = str(args.domain_id)
    os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    sys.path.insert(0, str(REPO))
    import numpy as np
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    import torch

    from ilrl_ros.core.spec import load_spec, resolve_spec_path

    spec = load_spec(args.task)
    # A bundled name is passed on as is; a file as an absolute path.
    task = args.task if not Path(args.task).exists() and Path(args.task).suffix == '' else \
        str(resolve_spec_path(args.task).resolve())
    work = Path(tempfile.mkdtemp(prefix='loop_latency.'))
    checkpoint = Path(args.checkpoint).resolve() if args.checkpoint else \
        make_checkpoint(spec, work, args.hidden, args.seed)
    plan = bare_plan(spec, checkpoint)
    plan_path = work / 'bare_plan.json'
    plan_path.write_text(json.dumps(plan, indent=1))
    sut = Sut(task, checkpoint, plan_path, work)
    log(f'task {spec.name}, checkpoint {checkpoint}, ROS_DOMAIN_ID '
        f'{os.environ["ROS_DOMAIN_ID"]}, discovery {os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"]}'
        f', {os.cpu_count()} CPUs, work folder {work}')
    results = {
        'task': spec.name, 'checkpoint': str(checkpoint), 'network': plan['network'],
        'config': dict(vars(args)),
        'environment': {'python': platform.python_version(), 'torch': torch.__version__,
                        'numpy': np.__version__, 'cpus': os.cpu_count(),
                        'machine': platform.machine(), 'kernel': platform.release(),
                        'rmw': os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp'),
                        'domain_id': int(os.environ['ROS_DOMAIN_ID'])},
        'targets': TARGETS, 'event': [], 'timer': None}
    ok = False
    driver = None
    # Ctrl-C and SIGTERM end the benchmark through KeyboardInterrupt, so that the SUT is
    # stopped and the context shut down in order, not under a running spin.
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    try:
        driver = Driver(spec)
        if args.systems:
            records = run_event_mode(args, driver, sut)
            results['event'], results['answer_max_abs_diff'] = event_rows(args, driver,
                                                                          records)
            results['driver_publish_us'] = summary_us(
                [p for runs in records.values() for r in runs for p in r['publish_ns']])
        if args.timer_rate > 0:
            rate = args.timer_rate
            log(f'timer mode: policy at control_rate_hz {rate:g}, observations at {rate:g} '
                f'Hz, {args.warmup:g} s warm-up, {args.duration:g} s measured')
            record = measure(args, driver, sut('ilrl', 'timer', rate),
                             work / f'timer_{rate:g}hz.log', rate)
            timer = timer_stats(record, rate, driver.stamped)
            timer.update(sut_cpu=record['sut_cpu'], driver_cpu=record['driver_cpu'],
                         over_limit=record['over_limit'],
                         others_cpu=record['others_cpu'],
                         cpu_pressure=record['cpu_pressure'])
            results['timer'] = timer
            log(f'  {timer["commands"]} commands, ticks on time '
                f'{fmt(100 * (timer["slots"]["on_time_fraction"] or 0), 2)}%')
        if results['event']:
            print_event_table(results, args)
        if results['timer']:
            print_timer(results['timer'])
        sys.stdout.flush()
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + '\n')
            log(f'results written to {args.json}')
        ok = True
    except KeyboardInterrupt:
        log('interrupted')
        return 130
    finally:
        if driver is not None:
            driver.close()
        rclpy.try_shutdown()
        if ok and not args.keep_logs:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f'work folder kept (checkpoint, SUT logs): {work}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
