"""Soak test of the ``policy`` node: timer mode at 500 Hz for minutes, swapping checkpoints.

The bench (this process) plays the robot and the operator. The system under test is the real
``policy`` node (``python -m ilrl_ros.nodes.policy``, this checkout's ``ilrl_ros``) in a
process of its own, in timer mode at ``--rate-hz``. Beside it runs the floor: this file with
``--role floor``, a bare rclpy node (no network, nothing of ilrl_ros but its QoS profiles)
whose timer publishes the same command message at the same rate on ``soak/floor``. All of it
talks over real rclpy and DDS on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST), on a
domain of its own (``--domain-id``).

::

    bench process                                      policy process (SUT)
    feeder: scan + odom at --sensor-rate-hz ---------> subscriptions -> newest observation
    receiver: commands, DDS reception times <--------- timer @ --rate-hz: MLP -> command
    operator (graph_client.Operator): checkpoint ----> parameter service: load, verify, swap
      every --swap-every-s; ~/status counts <--------- latched status JSON, 1 Hz
    VmRSS of both children every --sample-s
    receiver: soak/floor, DDS reception times <------- floor process: bare timer @ --rate-hz

Swaps alternate between ``--checkpoints`` fresh MLPs (random weights, one seed each) written
to a temporary folder; every ``--bad-every``-th swap offers a bad checkpoint instead, in turn
a copy with one byte of its weights flipped, a copy whose manifest is not JSON, and a
checkpoint of another task. Each of those must be refused while the running policy keeps
commanding.

The window measured starts 1 s after the first command of both the policy and the floor and
lasts ``--duration-s``. Over it the bench reports:

- the RSS of the policy process (and of the floor) over time, and its slope in MB per
  minute: a least-squares line through the samples taken after ``--warmup-s``;
- the commands its own subscriber received against those expected (rate x window), the gaps
  between their DDS reception times (p50, p99, max; the gaps over 1.5 periods and the ticks
  they lost), the longest gap around each swap (from one period before the call to 0.1 s
  after its answer) and the longest elsewhere; the same for the floor, and policy / floor;
- the node's own ``~/status`` counts over the window (ticks, commands, zero_commands, stale,
  errors, swaps, refused, missed_ticks);
- swaps done and refused against those intended, and the set_parameters round trip.

A progress line every ``--progress-s``, a table at the end, and everything (samples, each
swap) in ``--out`` as JSON. Nothing is asserted: the bench exits 0 when it ran to its end
(whatever the figures), 1 when the policy process died or the bench could not run, and 130
when interrupted (after reporting what it measured).

Examples::

    python bench/soak.py --duration-s 60
    python bench/soak.py --out /tmp/soak.json              # 10 minutes
    python bench/soak.py --duration-s 300 --sensor-rate-hz 100 --swap-every-s 1 --bad-every 4
"""

import argparse
from array import array
import json
import math
import os
from pathlib import Path
import platform
import shutil
import signal
import sys
import tempfile
import time

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# Set before rclpy is imported here or in any child: discovery stays on this machine.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('RCUTILS_LOGGING_BUFFERED_STREAM', '1')
# The ilrl_ros measured is this checkout's; the latency benchmark lends its process and CPU
# helpers (bench/latency/).
sys.path[:0] = [str(REPO), str(BENCH)]
from latency.bare import import_message, spin_until_stopped  # noqa: E402
from latency.driver import (Child, cpu_pressure_s, others_cpu_s, process_cpu_s,  # noqa: E402
                            sensor_readings, VARIANTS)
from latency.report import fmt  # noqa: E402
from latency.sut import make_checkpoint, sut_command  # noqa: E402

FLOOR_TOPIC = 'soak/floor'
BAD_KINDS = ('corrupt weights', 'manifest not JSON', 'another task')
COUNTS = ('ticks', 'commands', 'zero_commands', 'stale', 'errors', 'swaps', 'refused',
          'missed_ticks')


def log(text: str) -> None:
    print(f'[soak] {text}', file=sys.stderr, flush=True)


def say(text: str) -> None:
    print(text, flush=True)



# Statistics: pure functions over the recorded samples --------------------------------------

def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (VmRSS), NaN once it is gone."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return math.nan


def slope_mb_per_min(samples, after_s: float):
    """Least-squares slope of (seconds, MB) samples taken at or after ``after_s``, per minute.

    None with fewer than 3 samples or less than 10 s of them.
    """
    import numpy as np
    points = np.array([(t, mb) for t, mb in samples if t >= after_s and math.isfinite(mb)])
    if len(points) < 3 or points[-1, 0] - points[0, 0] < 10.0:
        return None
    return float(np.polyfit(points[:, 0] / 60.0, points[:, 1], 1)[0])


def gap_stats(arrivals_ns, start_ns: int, end_ns: int, rate_hz: float, windows=()) -> dict:
    """Count and gaps of the arrivals in [start, end) of a stream expected at ``rate_hz``.

    ``windows``: (from_ns, to_ns) spans, e.g. around swaps; a gap belongs to a span when it
    overlaps it. Gaps are in milliseconds; ``late`` counts the gaps over 1.5 periods and
    ``lost`` the periods they left empty.
    """
    import numpy as np
    # A slice first: the receiver's thread appends to the array, which it cannot while
    # numpy holds a view of its buffer; slicing copies it at once under the GIL.
    a = np.array(arrivals_ns[:], dtype=np.int64)
    a = a[(a >= start_ns) & (a < end_ns)]
    period = 1e9 / rate_hz
    expected = (end_ns - start_ns) / period
    gaps = np.diff(a).astype(np.float64)
    late = gaps > 1.5 * period
    around, inside = [], np.zeros(gaps.size, dtype=bool)
    for first, last in windows:
        overlap = (a[1:] >= first) & (a[:-1] <= last)
        inside |= overlap
        around.append(float(gaps[overlap].max()) / 1e6 if overlap.any() else None)
    p50, p99 = np.percentile(gaps, [50, 99]) / 1e6 if gaps.size else (None, None)
    return {
        'received': int(a.size), 'expected': expected,
        'received_share': a.size / expected if expected else None,
        'gap_ms': {'p50': None if p50 is None else float(p50),
                   'p99': None if p99 is None else float(p99),
                   'max': float(gaps.max()) / 1e6 if gaps.size else None},
        'late': int(late.sum()), 'lost': int(np.sum(np.rint(gaps[late] / period) - 1)),
        'around_windows_max_ms': around,
        'elsewhere_max_ms': float(gaps[~inside].max()) / 1e6 if (~inside).any() else None}


def ratio(a, b):
    return a / b if a is not None and b else None


# The floor: a bare rclpy timer in a process of its own --------------------------------------

def floor_main(rate_hz: float, type_name: str) -> int:
    """Publish one constant command message at ``rate_hz`` on a bare rclpy timer until SIGTERM."""
    import rclpy

    from ilrl_ros import qos

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    rclpy.init()
    node = rclpy.create_node('soak_floor')
    message = import_message(type_name)()
    publisher = node.create_publisher(type(message), FLOOR_TOPIC, qos.COMMAND)
    node.create_timer(1.0 / rate_hz, lambda: publisher.publish(message))
    return spin_until_stopped(node)


# The bench's nodes: a sensor feeder and a command receiver ---------------------------------

def make_feeder(spec, context, rate_hz: float):
    """A node publishing the task's sensor messages, all stamped now, at ``rate_hz``."""
    from builtin_interfaces.msg import Time
    from rclpy.node import Node

    from ilrl_ros import qos
    from ilrl_ros.messages import message_class, message_from_reading

    node = Node('soak_feeder', context=context)
    names = list(spec.sources)
    publishers = [node.create_publisher(message_class(spec.sources[n].message_type),
                                        spec.sources[n].topic, qos.SENSOR) for n in names]
    # Built once, as the mock robot builds them; a tick only stamps them.
    variants = []
    for k in range(VARIANTS):
        readings = sensor_readings(spec, k)
        variants.append([message_from_reading(readings[n], frame_id='base_scan')
                         for n in names])
    sent = [0]

    def tick():
        messages = variants[sent[0] % len(variants)]
        now = time.time_ns()
        stamp = Time(sec=now // 1_000_000_000, nanosec=now % 1_000_000_000)
        for publisher, msg in zip(publishers, messages):
            msg.header.stamp = stamp
            publisher.publish(msg)
        sent[0] += 1

    node.create_timer(1.0 / rate_hz, tick)
    return node


class Receiver:
    """Records the DDS reception time of every command and every floor message."""

    def __init__(self, spec, context, floor_type: str):
        from rclpy.node import Node

        from ilrl_ros import qos
        from ilrl_ros.messages import action_message_class, message_class

        self.node = Node('soak_receiver', context=context)
        self.topic = spec.action.topic
        self.commands = array('q')
        self.floor = array('q')
        self.last_command = None
        self.node.create_subscription(action_message_class(spec.action), self.topic,
                                      self._on_command, qos.COMMAND)
        self.node.create_subscription(message_class(floor_type), FLOOR_TOPIC,
                                      lambda msg, info: self.floor.append(self._when(info)),
                                      qos.COMMAND)

    @staticmethod
    def _when(info) -> int:
        # The middleware's reception time, free of this process's executor delays.
        return info['received_timestamp'] or time.time_ns()

    def _on_command(self, msg, info) -> None:
        self.commands.append(self._when(info))
        self.last_command = msg


# Checkpoints --------------------------------------------------------------------------------

def make_checkpoints(spec, work: Path, count: int, hidden: list) -> tuple:
    """``count`` good MLP checkpoints (seeds 0..count-1) and the bad ones, by kind."""
    from ilrl_ros.core.checkpoint import MANIFEST, WEIGHTS
    from ilrl_ros.core.spec import load_spec

    good = [make_checkpoint(spec, work / f'good{k}', hidden, k) for k in range(count)]
    corrupt = shutil.copytree(good[0], work / 'bad_corrupt')
    weights = corrupt / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    not_json = shutil.copytree(good[0], work / 'bad_manifest')
    manifest = not_json / MANIFEST
    manifest.write_text(manifest.read_text()[:40])
    other = load_spec('track_follow' if spec.name == 'pendulum' else 'pendulum')
    another = make_checkpoint(other, work / 'bad_task', [16], 0)
    return good, dict(zip(BAD_KINDS, (corrupt, not_json, another)))


# The run --------------------------------------------------------------------------------------

def counts_of(status) -> dict:
    return {k: status.get(k, 0) for k in COUNTS} if status else None


class Soak:
    """One soak run: the child processes, the bench's nodes and what they recorded."""

    def __init__(self, args, spec, good: list, bad: dict):
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        from ilrl_ros.graph_client import Operator
        from ilrl_ros.nodes.common import Spinner

        self.args, self.spec, self.good, self.bad = args, spec, good, bad
        self.context = rclpy.Context()
        # Ctrl-C and SIGTERM end the bench through KeyboardInterrupt, so that it still
        # reports, stops its children and shuts the context down in order.
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.receiver = Receiver(spec, self.context, spec.action.message_type)
        self.feeder = make_feeder(spec, self.context, args.sensor_rate_hz)
        self.operator = Operator(self.context, name='soak_operator')
        self.spinner = Spinner([self.feeder, self.receiver.node], context=self.context).start()
        self.policy = self.floor = None
        self.rss, self.swaps, self.statuses, self.progress = [], [], [], []
        self.base = self.last_status = None
        self.t_start = time.monotonic()
        self.start_ns = time.time_ns()

    def start(self, task: str, work: Path) -> None:
        """Start the policy and the floor; return 1 s after both publish."""
        args, operator, receiver = self.args, self.operator, self.receiver
        operator.spin_for(1.0)
        if receiver.node.count_publishers(receiver.topic):
            log(f'WARNING: {receiver.topic} already has a publisher on ROS_DOMAIN_ID '
                f'{os.environ["ROS_DOMAIN_ID"]}: use another --domain-id')
        t0 = time.monotonic()
        self.policy = Child(sut_command('ilrl', task, self.good[0], None, 'timer', args.rate_hz),
                            work / 'policy.log')
        if not args.no_floor:
            self.floor = Child(
                [sys.executable, str(Path(__file__).resolve()), '--role', 'floor',
                 '--rate-hz', str(args.rate_hz), '--floor-type',
                 self.spec.action.message_type], work / 'floor.log')
        deadline = t0 + args.startup_timeout
        while not receiver.commands or (self.floor and not receiver.floor):
            if time.monotonic() > deadline or not self.policy.alive():
                raise RuntimeError(f'no command within {args.startup_timeout:g} s of starting '
                                   f'the policy; its log {self.policy.log_path} ends:\n'
                                   f'{self.policy.tail()}')
            operator.spin_for(0.05)
        log(f'the policy commands {time.monotonic() - t0:.1f} s after its start; measuring '
            f'{args.duration_s:g} s from 1 s on')
        operator.spin_for(1.0)
        self.start_ns, self.t_start = time.time_ns(), time.monotonic()
        # The counts at the window's start are those of the first status published in it.
        self.last_status = operator.policy_status
        self.cpu_start = self._cpu()

    def _cpu(self) -> dict:
        children = [c for c in (self.policy, self.floor) if c]
        return {'t': time.monotonic(), 'bench': process_cpu_s(os.getpid()),
                'policy': process_cpu_s(self.policy.pid),
                'floor': process_cpu_s(self.floor.pid) if self.floor else None,
                'others': others_cpu_s({os.getpid()} | {c.pid for c in children}),
                'pressure': cpu_pressure_s()}

    def sample(self) -> None:
        self.rss.append((round(time.monotonic() - self.t_start, 3), rss_mb(self.policy.pid),
                         rss_mb(self.floor.pid) if self.floor else None))

    def note_status(self) -> None:
        status = self.operator.policy_status
        if status is not None and status is not self.last_status:
            self.last_status = status
            self.statuses.append((round(time.monotonic() - self.t_start, 3),
                                  counts_of(status)))
            if self.base is None:
                self.base = counts_of(status)

    def swap(self, number: int) -> None:
        """Offer the policy its next checkpoint: good ones in turn, a bad one every so often."""
        from ilrl_ros.graph_client import OperatorError

        bad_every = self.args.bad_every
        if bad_every and number % bad_every == 0:
            kind = BAD_KINDS[(number // bad_every - 1) % len(BAD_KINDS)]
            path = self.bad[kind]
        else:
            good_before = number - 1 - ((number - 1) // bad_every if bad_every else 0)
            kind, path = 'good', self.good[(good_before + 1) % len(self.good)]
        call_ns = time.time_ns()
        try:
            self.operator.set_parameter('policy', 'checkpoint', str(path))
            accepted, reason = True, ''
        except OperatorError as error:
            accepted, reason = False, str(error)
        answer_ns = time.time_ns()
        self.swaps.append({'t_s': round((call_ns - self.start_ns) / 1e9, 3), 'kind': kind,
                           'path': str(path), 'accepted': accepted,
                           'as_intended': accepted == (kind == 'good'), 'reason': reason,
                           'call_ns': call_ns, 'answer_ns': answer_ns,
                           'round_trip_ms': (answer_ns - call_ns) / 1e6})
        if accepted != (kind == 'good'):
            verb = 'accepted' if accepted else 'refused'
            log(f'WARNING: swap {number} ({kind}, {path}) {verb}: {reason}')

    def measure(self) -> str:
        """Swap, sample and report progress until the window ends; return how it ended."""
        args, operator = self.args, self.operator
        t_end = self.t_start + args.duration_s
        next_sample, next_progress = self.t_start, self.t_start + args.progress_s
        next_swap, number = self.t_start + args.swap_every_s, 0
        shown = (0, 0)
        try:
            while time.monotonic() < t_end:
                wake = min(next_sample, next_swap, next_progress, t_end)
                operator.spin_for(max(0.0, wake - time.monotonic()))
                self.note_status()
                if not self.policy.alive():
                    return 'policy process died'
                now = time.monotonic()
                if now >= next_sample:
                    self.sample()
                    next_sample += args.sample_s
                if now >= next_swap:
                    if now < t_end - 0.5:
                        number += 1
                        self.swap(number)
                    next_swap += args.swap_every_s
                if now >= next_progress:
                    next_progress += args.progress_s
                    line = self.progress_line(now - self.t_start, shown)
                    shown = (len(self.receiver.commands), len(self.receiver.floor))
                    self.progress.append(line)
                    say(line)
        except KeyboardInterrupt:
            return 'interrupted'
        return 'completed'

    def progress_line(self, elapsed_s: float, shown: tuple) -> str:
        """The figures so far; the longest gaps are those since the previous line."""
        args, receiver = self.args, self.receiver
        now = time.time_ns()
        commands = gap_stats(receiver.commands[max(0, shown[0] - 1):], self.start_ns, now,
                             args.rate_hz)
        floor = gap_stats(receiver.floor[max(0, shown[1] - 1):], self.start_ns, now,
                          args.rate_hz)['gap_ms']['max'] if self.floor else None
        total = gap_stats(receiver.commands, self.start_ns, now, args.rate_hz)['received']
        slope = slope_mb_per_min([(t, p) for t, p, _ in self.rss],
                                 min(args.warmup_s, args.duration_s / 2.0))
        counts = counts_of(self.last_status)
        delta = {k: counts[k] - self.base[k] for k in COUNTS} if counts and self.base else {}
        done = sum(s['accepted'] for s in self.swaps)
        return (f'[{elapsed_s:4.0f} s] policy RSS {fmt(self.rss[-1][1], 1)} MB, slope '
                f'{"warming up" if slope is None else f"{slope:+.3f} MB/min"} | commands '
                f'{total}/{args.rate_hz * elapsed_s:.0f}, longest gap '
                f'{fmt(commands["gap_ms"]["max"], 1)} ms (floor {fmt(floor, 1)}) | '
                f'missed_ticks {delta.get("missed_ticks", "-")}, errors '
                f'{delta.get("errors", "-")}, stale {delta.get("stale", "-")} | swaps '
                f'{done} done, {len(self.swaps) - done} refused')

    def finish(self, outcome: str) -> dict:
        """The final counts and statistics; stops the policy to see how it stops."""
        from ilrl_ros.graph_client import OperatorError
        from ilrl_ros.messages import action_from_message

        args, operator = self.args, self.operator
        end_ns = time.time_ns()
        self.sample()
        cpu_end = self._cpu()
        if self.policy.alive():
            # The node's counts at the end: the first status published after the window.
            before = operator.policy_status
            try:
                operator.spin_until(lambda: operator.policy_status is not before, 3.0,
                                    'a status after the window')
            except (OperatorError, KeyboardInterrupt):
                pass
            self.note_status()
            self.policy.stop()
            operator.spin_for(0.3)  # the receiver gets any command sent on the way out
        else:
            log(f'the policy process exited with code {self.policy.proc.returncode}; its '
                f'log {self.policy.log_path} ends:\n{self.policy.tail()}')
        warmup_s = min(args.warmup_s, args.duration_s / 2.0)
        period_ns = int(1e9 / args.rate_hz)
        windows = [(s['call_ns'] - period_ns, s['answer_ns'] + 100_000_000) for s in self.swaps]
        commands = gap_stats(self.receiver.commands, self.start_ns, end_ns, args.rate_hz,
                             windows)
        floor = gap_stats(self.receiver.floor, self.start_ns, end_ns, args.rate_hz,
                          windows) if self.floor else None
        for swap, around in zip(self.swaps, commands['around_windows_max_ms']):
            swap['longest_gap_ms'] = around
        for swap, around in zip(self.swaps, (floor or {}).get('around_windows_max_ms', [])):
            swap['floor_longest_gap_ms'] = around
        policy_rss = [(t, p) for t, p, _ in self.rss]
        after = [p for t, p in policy_rss if t >= warmup_s and p is not None]
        wall = cpu_end['t'] - self.cpu_start['t']
        final = counts_of(self.last_status)
        last = self.receiver.last_command
        floor_gap = (floor or {}).get('gap_ms', {})
        return {
            'outcome': outcome, 'seconds': (end_ns - self.start_ns) / 1e9,
            'warmup_s': warmup_s, 'commands': commands, 'floor': floor,
            'ratios': {'max_gap': ratio(commands['gap_ms']['max'], floor_gap.get('max')),
                       'p99_gap': ratio(commands['gap_ms']['p99'], floor_gap.get('p99')),
                       'late_gaps': ratio(commands['late'], floor and floor['late'])},
            'rss': {'policy_slope_mb_per_min': slope_mb_per_min(policy_rss, warmup_s),
                    'floor_slope_mb_per_min': slope_mb_per_min(
                        [(t, f) for t, _, f in self.rss], warmup_s) if self.floor else None,
                    'policy_after_warmup_mb': {'first': after[0], 'last': after[-1],
                                               'min': min(after), 'max': max(after)}
                    if after else None,
                    'samples_s_policy_floor_mb': self.rss},
            'cpu': {k: None if self.cpu_start[k] is None
                          else (cpu_end[k] - self.cpu_start[k]) / wall
                          for k in ('policy', 'floor', 'bench', 'others', 'pressure')},
            'node_counts': {'window': {k: final[k] - self.base[k] for k in COUNTS}
                            if final and self.base else None, 'total': final},
            'status_samples': self.statuses, 'swaps': self.swaps, 'progress': self.progress,
            'policy_exit_code': self.policy.proc.poll(),
            'last_command': action_from_message(self.spec.action, last).tolist()
            if last is not None else None}

    def close(self) -> None:
        import rclpy
        for child in (self.policy, self.floor):
            if child is not None:
                child.stop()
        self.operator.close()
        self.spinner.shutdown()
        self.receiver.node.destroy_node()
        self.feeder.destroy_node()
        rclpy.try_shutdown(context=self.context)


# Report -------------------------------------------------------------------------------------

def print_report(results: dict) -> None:
    config = results['config']
    c, f, r = results['commands'], results['floor'], results['ratios']
    say(f'\nSoak of the policy node: task {results["task"]}, MLP {results["network"]}, timer '
        f'mode at {config["rate_hz"]:g} Hz, sensors at {config["sensor_rate_hz"]:g} Hz, '
        f'{results["seconds"]:.1f} s measured ({results["outcome"]}).')

    def gaps(s):
        g = s['gap_ms']
        return f'{fmt(g["p50"], 2)} / {fmt(g["p99"], 2)} / {fmt(g["max"], 1)}'

    def around(s):
        worst = [v for v in s['around_windows_max_ms'] if v is not None]
        return f'{fmt(max(worst, default=None), 1)} / {fmt(s["elsewhere_max_ms"], 1)}'

    rss = results['rss']
    first = rss['policy_after_warmup_mb']
    cpu = results['cpu']
    floor_cells = {} if f is None else {
        'count': f'{f["received"]} / {f["expected"]:.0f}', 'gaps': gaps(f),
        'late': f'{f["late"]} ({f["lost"]})', 'around': around(f),
        'slope': fmt(rss['floor_slope_mb_per_min'], 3), 'cpu': fmt(cpu['floor'], 2)}
    rows = [
        ('commands received / expected', f'{c["received"]} / {c["expected"]:.0f}',
         floor_cells.get('count', '-'), '-'),
        ('gap p50 / p99 / max (ms)', gaps(c), floor_cells.get('gaps', '-'),
         f'{fmt(r["p99_gap"], 2)} / {fmt(r["max_gap"], 2)} (p99 / max)'),
        ('gaps > 1.5 periods (ticks lost)', f'{c["late"]} ({c["lost"]})',
         floor_cells.get('late', '-'), fmt(r['late_gaps'], 2)),
        ('longest gap at swaps / elsewhere (ms)', around(c), floor_cells.get('around', '-'),
         '-'),
        ('RSS after warm-up, first -> last (MB)',
         f'{first["first"]:.1f} -> {first["last"]:.1f}' if first else '-', '-', '-'),
        (f'RSS slope after {results["warmup_s"]:g} s (MB/min)',
         fmt(rss['policy_slope_mb_per_min'], 3), floor_cells.get('slope', '-'), '-'),
        ('CPU (cores)', fmt(cpu['policy'], 2), floor_cells.get('cpu', '-'),
         f'bench {fmt(cpu["bench"], 2)}, others {fmt(cpu["others"], 2)}, cpu wait '
         f'{fmt(100 * (cpu["pressure"] or 0))}%'),
    ]
    widths = [max(len(row[i]) for row in rows + [('', 'policy node', 'floor (bare timer)',
                                                  'policy / floor')]) for i in range(4)]
    header = ('', 'policy node', 'floor (bare timer)', 'policy / floor')
    for row in [header, tuple('-' * w for w in widths)] + rows:
        say('  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    counts = results['node_counts']
    window = counts['window'] or {}
    share = ratio(window.get('missed_ticks'), c['expected'])
    say('~/status counts over the window: '
        + ', '.join(f'{k} {window.get(k, "-")}' for k in COUNTS)
        + f' (missed_ticks: {fmt(None if share is None else 100 * share, 3)}% of the ticks '
        f'expected)')
    swaps = results['swaps']
    good = [s for s in swaps if s['kind'] == 'good']
    bad = [s for s in swaps if s['kind'] != 'good']
    by_kind = ', '.join(f'{k} {sum(not s["accepted"] for s in bad if s["kind"] == k)}/'
                        f'{sum(s["kind"] == k for s in bad)}' for k in BAD_KINDS)
    trips = sorted(s['round_trip_ms'] for s in swaps)
    say(f'Swaps: {sum(s["accepted"] for s in good)} of {len(good)} good accepted; '
        f'{sum(not s["accepted"] for s in bad)} of {len(bad)} bad refused ({by_kind}); '
        f'{sum(not s["as_intended"] for s in swaps)} not as intended. set_parameters round '
        f'trip p50 {fmt(trips[len(trips) // 2] if trips else None, 1)} ms, max '
        f'{fmt(trips[-1] if trips else None, 1)} ms.')
    for kind in BAD_KINDS:
        reason = next((s['reason'] for s in bad if s['kind'] == kind and s['reason']), None)
        if reason:
            say(f'  refused ({kind}): {reason.split(": ", 1)[-1][:200]}')
    last = results['last_command']
    zero = last is not None and not any(last)
    say(f'Policy process after SIGTERM: exit code {results["policy_exit_code"]}, last command '
        f'received {last} ({"zero" if zero else "NOT zero"}).')
    if f is None:
        say(f'No floor run (--no-floor): {c["expected"]:.0f} commands were expected.')
    else:
        say('Floor: a bare rclpy timer at the same rate in its own process, received by the '
            'same subscriber. Gaps are between DDS reception times; at swaps means from one '
            'period before the set_parameters call to 0.1 s after its answer.')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='soak.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration-s', type=float, default=600.0, metavar='S',
                        help='seconds measured, after start-up (default: %(default)s)')
    parser.add_argument('--rate-hz', type=float, default=500.0, metavar='HZ',
                        help='control_rate_hz of the policy node, timer mode, and the rate '
                             'of the floor timer (default: %(default)s)')
    parser.add_argument('--sensor-rate-hz', type=float, default=None, metavar='HZ',
                        help='rate of the synthetic sensor messages (all sources, stamped '
                             'now); default: --rate-hz, a fresh observation every tick')
    parser.add_argument('--swap-every-s', type=float, default=3.0, metavar='S',
                        help='seconds between checkpoint swaps (default: %(default)s)')
    parser.add_argument('--bad-every', type=int, default=5, metavar='N',
                        help='every N-th swap offers a bad checkpoint (corrupt weights, '
                             'manifest not JSON, another task, in turn); 0: none '
                             '(default: %(default)s)')
    parser.add_argument('--checkpoints', type=int, default=2, metavar='N',
                        help='good checkpoints to alternate between, fresh MLPs with seeds '
                             '0..N-1 (default: %(default)s)')
    parser.add_argument('--hidden', type=int, nargs='+', default=[256, 256],
                        help='hidden layer sizes of the MLPs (default: 256 256)')
    parser.add_argument('--task', default='track_follow',
                        help='bundled task name or spec YAML path (default: %(default)s)')
    parser.add_argument('--warmup-s', type=float, default=60.0, metavar='S',
                        help='RSS samples before this (at most half the run) are left out '
                             'of the slope (default: %(default)s)')
    parser.add_argument('--sample-s', type=float, default=1.0, metavar='S',
                        help='seconds between RSS samples (default: %(default)s)')
    parser.add_argument('--progress-s', type=float, default=30.0, metavar='S',
                        help='seconds between progress lines (default: %(default)s)')
    parser.add_argument('--no-floor', action='store_true',
                        help='do not run the bare timer beside the policy (then only the '
                             'expected command count is the floor)')
    parser.add_argument('--domain-id', type=int, default=57,
                        help='ROS_DOMAIN_ID of the bench and its children; discovery stays '
                             'on this machine (default: %(default)s)')
    parser.add_argument('--startup-timeout', type=float, default=60.0, metavar='S',
                        help='seconds to wait for the first command (default: %(default)s)')
    parser.add_argument('--out', default='', metavar='PATH',
                        help='write the results (samples and each swap included) to this '
                             'JSON file')
    parser.add_argument('--keep-logs', action='store_true',
                        help='keep the work folder (checkpoints, policy and floor logs); it '
                             'is always kept when the run fails')
    # Internal: how the bench starts the floor.
    parser.add_argument('--role', choices=('bench', 'floor'), default='bench',
                        help=argparse.SUPPRESS)
    parser.add_argument('--floor-type', default='', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sensor_rate_hz is None:
        args.sensor_rate_hz = args.rate_hz
    if args.role == 'bench' and (
            min(args.duration_s, args.rate_hz, args.sensor_rate_hz, args.swap_every_s,
                args.sample_s, args.progress_s) <= 0 or args.warmup_s < 0
            or args.checkpoints < 2 or args.bad_every == 1 or args.bad_every < 0):
        parser.error('durations and rates must be positive, --checkpoints at least 2, '
                     '--bad-every 0 or at least 2')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.role == 'floor':
        return floor_main(args.rate_hz, args.floor_type)
    os.environ['ROS_DOMAIN_ID'] = str(args.domain_id)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    import numpy as np
    import torch

    from ilrl_ros.core.spec import load_spec, resolve_spec_path

    spec = load_spec(args.task)
    # A bundled name is passed on as is; a file as an absolute path.
    task = args.task if not Path(args.task).exists() and Path(args.task).suffix == '' else \
        str(resolve_spec_path(args.task).resolve())
    work = Path(tempfile.mkdtemp(prefix='soak.'))
    results = {
        'task': spec.name,
        'network': '-'.join(str(n) for n in (spec.observation.size, *args.hidden,
                                             spec.action.size)),
        'config': {k: v for k, v in vars(args).items() if k not in ('role', 'floor_type')},
        'environment': {'python': platform.python_version(), 'torch': torch.__version__,
                        'numpy': np.__version__, 'cpus': os.cpu_count(),
                        'machine': platform.machine(), 'kernel': platform.release(),
                        'rmw': os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp'),
                        'domain_id': args.domain_id,
                        'discovery': os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}}
    soak, rc = None, 1
    try:
        good, bad = make_checkpoints(spec, work, args.checkpoints, args.hidden)
        results.update(checkpoints=[str(p) for p in good],
                       bad_checkpoints={k: str(p) for k, p in bad.items()})
        log(f'task {spec.name}, MLP {results["network"]}, policy at {args.rate_hz:g} Hz, '
            f'ROS_DOMAIN_ID {args.domain_id}, {os.cpu_count()} CPUs, work folder {work}')
        soak = Soak(args, spec, good, bad)
        soak.start(task, work)
        outcome = soak.measure()
        results.update(soak.finish(outcome))
        print_report(results)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1) + '\n')
            log(f'results written to {args.out}')
        rc = {'completed': 0, 'interrupted': 130}.get(outcome, 1)
    except KeyboardInterrupt:
        log('interrupted')
        rc = 130
    except RuntimeError as error:
        log(str(error))
    finally:
        if soak is not None:
            soak.close()
        if rc == 0 and not args.keep_logs:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f'work folder kept (checkpoints, logs): {work}')
    return rc


if __name__ == '__main__':
    sys.exit(main())
