"""Observation-to-command latency through the ``policy`` node, next to a bare rclpy floor.

A driver (this process) plays the robot: it publishes the task's sensor messages at a fixed
rate, all messages of one observation with the same stamp, and listens for the command. The
system under test (SUT) runs in a process of its own and is one of:

- ``ilrl``: the real ``policy`` node (``python -m ilrl_ros.nodes.policy``, event mode),
  running an MLP checkpoint this benchmark writes (random weights: latency does not depend
  on training), from this checkout's ``ilrl_ros``;
- ``bare``: the floor, this file run with ``--role bare``: a plain rclpy node with the same
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
import bisect
import importlib
import json
import math
import os
from pathlib import Path
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# Everything the benchmark publishes stays on this machine unless the user says otherwise;
# set before rclpy is imported here or in any child.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('RCUTILS_LOGGING_BUFFERED_STREAM', '1')

# The ilrl_ros measured is this checkout's, also where an older copy is installed.
REPO = Path(__file__).resolve().parent.parent
SYSTEMS = ('echo', 'bare', 'ilrl')
TARGETS = {'rate_hz': 500.0, 'p50_ratio': 1.3, 'p99_ratio': 1.5, 'timer_on_time': 0.995}
VARIANTS = 16  # distinct observations, cycled, so that every SUT sees the same inputs


def log(text: str) -> None:
    print(f'[loop_latency] {text}', file=sys.stderr, flush=True)


# Statistics: pure functions over the driver's records ------------------------------------

def summary_us(values_ns) -> dict:
    """p50 / p99 / max / mean of nanosecond values, in microseconds (None when empty)."""
    import numpy as np
    if len(values_ns) == 0:
        return {'p50': None, 'p99': None, 'max': None, 'mean': None}
    v = np.asarray(values_ns, dtype=np.float64) / 1e3
    p50, p99 = np.percentile(v, [50, 99])
    return {'p50': float(p50), 'p99': float(p99), 'max': float(v.max()),
            'mean': float(v.mean())}


def match_commands(sends, commands, stamped: bool):
    """Pair each observation with its first command.

    ``sends``: [(stamp_ns, send_ns)] in send order. ``commands``: [(stamp_ns, recv_ns,
    callback_ns, msg)] in arrival order; unstamped commands (``stamp_ns`` None) go to the
    newest observation sent before they arrived. Returns {send index: command} and the
    number of commands that answered nothing new (extra).
    """
    by_stamp = {stamp: i for i, (stamp, _) in enumerate(sends)}
    send_times = [t for _, t in sends]
    matched, extra = {}, 0
    for command in commands:
        if stamped:
            i = by_stamp.get(command[0])
        else:
            i = bisect.bisect_left(send_times, command[1]) - 1
            i = i if i >= 0 else None
        if i is None or i in matched:
            extra += 1
            continue
        matched[i] = command
    return matched, extra


def event_samples(record: dict, stamped: bool) -> dict:
    """Latencies and missed ticks of the observations a run sent inside its window."""
    sends = record['sends']
    matched, extra = match_commands(sends, record['commands'], stamped)
    start, end = record['window']
    out = {'latency': [], 'callback': [], 'sent': 0, 'lost': 0, 'late': 0, 'extra': extra,
           'answers': {}}
    for i, (_, send_ns) in enumerate(sends):
        if not start <= send_ns < end:
            continue
        out['sent'] += 1
        command = matched.get(i)
        if command is None:
            out['lost'] += 1
            continue
        out['latency'].append(command[1] - send_ns)
        out['callback'].append(command[2] - send_ns)
        out['answers'].setdefault(i % VARIANTS, command[3])
        if i + 1 < len(sends) and command[1] > sends[i + 1][1]:
            out['late'] += 1
    return out


def event_stats(records: list, stamped: bool) -> dict:
    """Pool the samples of several runs of one rate and system."""
    runs = [event_samples(r, stamped) for r in records]
    latency = [x for r in runs for x in r['latency']]
    stats = {key: sum(r[key] for r in runs) for key in ('sent', 'lost', 'late', 'extra')}
    stats.update(samples=len(latency), missed=stats['lost'] + stats['late'],
                 latency_us=summary_us(latency),
                 callback_latency_us=summary_us([x for r in runs for x in r['callback']]),
                 per_run_latency_us=[summary_us(r['latency']) for r in runs])
    answers = {}
    for r in runs:
        for k, msg in r['answers'].items():
            answers.setdefault(k, msg)
    return stats, answers


def tick_slots(arrivals_ns, period_ns: float) -> dict:
    """Count the control periods that got exactly one command, none, or more.

    The timer keeps its phase, so the periods form a grid; it is placed at the arrivals'
    mean phase, and each arrival belongs to the grid point nearest to it (within half a
    period). A tick that comes more than half a period late leaves its slot empty and
    doubles up the next one.
    """
    import numpy as np
    arrivals = np.asarray(arrivals_ns, dtype=np.int64)
    if arrivals.size < 2:
        return {'slots': 0, 'one': 0, 'empty': 0, 'crowded': 0, 'on_time_fraction': None}
    offset = arrivals - arrivals[0]
    angle = 2.0 * np.pi * np.mod(offset, period_ns) / period_ns
    phase = np.angle(np.mean(np.exp(1j * angle))) / (2.0 * np.pi) * period_ns
    slot = np.rint((offset - phase) / period_ns).astype(np.int64)
    counts = np.bincount(slot - slot.min())
    one = int(np.count_nonzero(counts == 1))
    return {'slots': int(counts.size), 'one': one,
            'empty': int(np.count_nonzero(counts == 0)),
            'crowded': int(np.count_nonzero(counts > 1)), 'on_time_fraction': one / counts.size}


def timer_stats(record: dict, rate_hz: float, stamped: bool) -> dict:
    """Command rate and regularity of a timer-mode run, from command arrival times."""
    import numpy as np
    start, end = record['window']
    commands = [c for c in record['commands'] if start <= c[1] < end]
    period_ns = 1e9 / rate_hz
    arrivals = [c[1] for c in commands]
    intervals = np.diff(np.asarray(arrivals, dtype=np.int64))
    regular = int(np.count_nonzero((intervals >= 0.5 * period_ns)
                                   & (intervals <= 1.5 * period_ns)))
    seconds = (end - start) / 1e9
    result = {'rate_hz': rate_hz, 'commands': len(commands), 'seconds': seconds,
              'commands_per_s': len(commands) / seconds, 'slots': tick_slots(arrivals, period_ns),
              'intervals': int(intervals.size), 'regular_intervals': regular,
              'regular_fraction': regular / intervals.size if intervals.size else None,
              'interval_us': summary_us(intervals)}
    if stamped:
        # How old the observation a command answers is when it arrives: up to a period of
        # waiting for the tick on top of the pass through the node.
        send_by_stamp = dict(record['sends'])
        result['observation_age_us'] = summary_us(
            [c[1] - send_by_stamp[c[0]] for c in commands if c[0] in send_by_stamp])
    # The node's own counters over the whole seconds of status between the window's ends.
    statuses = [(t, s) for t, s in record['statuses'] if start <= t <= end]
    if len(statuses) >= 2:
        (t0, first), (t1, last) = statuses[0], statuses[-1]
        result['policy_counts'] = {
            'seconds': (t1 - t0) / 1e9,
            **{k: last[k] - first[k] for k in ('ticks', 'missed_ticks', 'commands',
                                                'zero_commands', 'stale', 'errors')}}
    return result


# The bare floor: a process of its own that imports nothing from ilrl_ros ---------------------

def _import_message(type_name: str):
    package, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def bare_main(plan_path: str, echo: bool = False) -> int:
    """Run the bare rclpy ping-pong described by the plan file until SIGTERM."""
    import numpy as np
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import (DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data,
                           QoSProfile, ReliabilityPolicy)
    from safetensors.torch import load_file
    import torch
    from torch import nn

    plan = json.loads(Path(plan_path).read_text())
    torch.set_num_threads(1)
    net = plan['network']
    activations = {'relu': nn.ReLU, 'tanh': nn.Tanh, 'elu': nn.ELU}

    class Net(nn.Module):
        # The policy's architecture written out: normalise, MLP, linear head, de-normalise.
        def __init__(self):
            super().__init__()
            sizes = [net['obs_dim'], *net['hidden']]
            layers = []
            for a, b in zip(sizes[:-1], sizes[1:]):
                layers += [nn.Linear(a, b), activations[net['activation']]()]
            self.body = nn.Sequential(*layers)
            self.mean_head = nn.Linear(sizes[-1], net['act_dim'])
            for name, size in (('obs_mean', net['obs_dim']), ('obs_std', net['obs_dim']),
                               ('act_mean', net['act_dim']), ('act_std', net['act_dim'])):
                self.register_buffer(name, torch.zeros(size))

        def forward(self, obs):
            h = self.body((obs - self.obs_mean) / self.obs_std)
            return self.mean_head(h) * self.act_std + self.act_mean

    model = Net()
    model.load_state_dict(load_file(plan['weights']), strict=True)
    model.eval()

    sensor_qos = qos_profile_sensor_data
    command_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                             reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.VOLATILE)
    action = plan['action']
    low = np.asarray(action['low'], dtype=np.float64)
    high = np.asarray(action['high'], dtype=np.float64)
    tolerance_ns = plan['sync_tolerance_ns']
    index_cache = {}  # ray -> sector, per scan geometry

    def scan_values(field, msg):
        ranges = np.asarray(msg.ranges, dtype=np.float64)
        key = (msg.angle_min, msg.angle_increment, ranges.size)
        index = index_cache.get(key)
        if index is None:
            angles = msg.angle_min + msg.angle_increment * np.arange(ranges.size)
            width = 2.0 * math.pi / field['bins']
            index = np.minimum((np.mod(angles + math.pi, 2.0 * math.pi) / width)
                               .astype(np.int64), field['bins'] - 1)
            index_cache[key] = index
        ranges = np.where(np.isneginf(ranges), 0.0, ranges)
        ranges = np.where((ranges < msg.range_min) & (ranges > 0.0), np.inf, ranges)
        out = np.full(field['bins'], np.inf)
        np.minimum.at(out, index, np.minimum(ranges, field['max_range']))
        return out

    def odom_values(field, msg):
        t, q = msg.twist.twist, msg.pose.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        named = {'x': msg.pose.pose.position.x, 'y': msg.pose.pose.position.y, 'yaw': yaw,
                 'cos_yaw': math.cos(yaw), 'sin_yaw': math.sin(yaw), 'vx': t.linear.x,
                 'vy': t.linear.y, 'wz': t.angular.z}
        return [named[c] for c in field['components']]

    def joint_values(field, msg):
        out = []
        for joint in field['joints']:
            i = list(msg.name).index(joint)
            for c in field['components']:
                value = {'position': msg.position, 'cos': msg.position, 'sin': msg.position,
                         'velocity': msg.velocity, 'effort': msg.effort}[c][i]
                out.append(math.cos(value) if c == 'cos' else
                           math.sin(value) if c == 'sin' else value)
        return out

    extract = {'laser_scan': scan_values, 'odometry': odom_values,
               'joint_state': joint_values}
    fields = [dict(f, scale=np.asarray(f['scale']), offset=np.asarray(f['offset']))
              for f in plan['fields']]
    command_class = _import_message(action['message_type'])
    zero = np.zeros(len(action['fields']))

    class Bare(Node):
        def __init__(self):
            super().__init__('bare_policy')
            self.latest = {}  # source -> (stamp_ns, msg)
            self.last_stamp = -1
            self.pub = self.create_publisher(command_class, action['topic'], command_qos)
            for source in plan['sources']:
                self.create_subscription(
                    _import_message(source['message_type']), source['topic'],
                    lambda msg, name=source['name']: self.on_message(name, msg), sensor_qos)

        def on_message(self, name, msg):
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            self.latest[name] = (stamp, msg)
            if len(self.latest) < len(plan['sources']):
                return
            stamps = [s for s, _ in self.latest.values()]
            newest = max(stamps)
            if newest - min(stamps) > tolerance_ns or newest <= self.last_stamp:
                return
            self.last_stamp = newest
            if echo:
                act = zero
            else:
                obs = np.concatenate([
                    (np.asarray(extract[f['kind']](f, self.latest[f['source']][1]))
                     - f['offset']) * f['scale'] for f in fields]).astype(np.float32)
                with torch.inference_mode():
                    out = model(torch.from_numpy(obs).unsqueeze(0))[0].numpy()
                act = np.clip(out.astype(np.float64), low, high)
            cmd = command_class()
            if action['type'] == 'twist':
                twist = cmd.twist if action['stamped'] else cmd
                for field, value in zip(action['fields'], act):
                    group, axis = field.split('.')
                    setattr(getattr(twist, group), axis, float(value))
                if action['stamped']:
                    # The stamp of the observation answered: that of its newest input.
                    cmd.header.stamp = max(self.latest.values(),
                                           key=lambda entry: entry[0])[1].header.stamp
                    cmd.header.frame_id = 'base_link'
            else:
                cmd.data = [float(v) for v in act]
            self.pub.publish(cmd)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    rclpy.init()
    node = Bare()
    leaked = 'yes (a bug in the benchmark)' if 'ilrl_ros' in sys.modules else 'no'
    node.get_logger().info(f'{"echo" if echo else "bare"} floor ready; ilrl_ros imported in '
                           f'this process: {leaked}')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# The driver: plays the robot and times the SUT ---------------------------------------------

def sensor_readings(spec, variant: int) -> dict:
    """Plausible readings for every source of the task (a robot in a corridor, a pendulum)."""
    import numpy as np
    from ilrl_ros.core.readings import JointReading, OdomReading, ScanReading

    phase = 2.0 * math.pi * variant / VARIANTS
    readings = {}
    for name, source in spec.sources.items():
        if source.kind == 'laser_scan':
            rays = int(spec.sim_params.get('scan_rays', 360))
            angles = -math.pi + 2.0 * math.pi * np.arange(rays) / rays
            ranges = 1.2 + 0.6 * np.sin(2.0 * angles + phase)
            ranges[::37] = np.inf  # a few rays with no return, as a real lidar has
            readings[name] = ScanReading(stamp_ns=0, angle_min=-math.pi,
                                         angle_increment=2.0 * math.pi / rays, range_min=0.12,
                                         range_max=3.5, ranges=ranges)
        elif source.kind == 'odometry':
            readings[name] = OdomReading(stamp_ns=0, x=math.cos(phase), y=math.sin(phase),
                                         yaw=phase - math.pi, vx=0.15, vy=0.0,
                                         wz=0.8 * math.sin(phase))
        else:
            joints = [j for f in spec.observation.fields if f.source == name for j in f.joints]
            joints = list(dict.fromkeys(joints)) or ['joint']
            n = len(joints)
            readings[name] = JointReading(stamp_ns=0, names=tuple(joints),
                                          position=np.full(n, phase - math.pi),
                                          velocity=np.full(n, 2.0 * math.sin(phase)),
                                          effort=np.zeros(n))
    return readings


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def others_cpu_s(exclude: set) -> float:
    """CPU seconds used so far by every process but ``exclude``, reaped children included.

    Summed over /proc/<pid>/stat, which is exact; /proc/stat's tick sampling is not, and
    aliases with processes that wake at a fixed rate such as these.
    """
    total = 0
    for entry in os.scandir('/proc'):
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            fields = Path(entry.path, 'stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])
    return total / os.sysconf('SC_CLK_TCK')


def cpu_pressure_s() -> float:
    """Seconds so far during which some runnable task waited for a CPU (Linux PSI)."""
    try:
        some = Path('/proc/pressure/cpu').read_text().split('\n')[0]
    except OSError:
        return math.nan
    return int(some.rsplit('total=', 1)[1]) / 1e6


def _pdeathsig():
    """A pre-exec hook asking Linux to SIGTERM the child when the driver dies, or None.

    Loaded here, before the fork: the hook itself must not import or open libraries.
    """
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


class Child:
    """A SUT process in a session of its own, always stopped with its whole group.

    It also gets SIGTERM from Linux if the driver dies without stopping it (even by SIGKILL).
    """

    def __init__(self, command: list, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(filter(None, (str(REPO), env.get('PYTHONPATH'))))
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     cwd=REPO, env=env, preexec_fn=_pdeathsig())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        self._log.flush()
        return '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-lines:])

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:
            log(f'SUT process {self.proc.pid} did not stop after SIGKILL')
        self._log.close()


class Driver:
    """Publishes the task's sensor messages at a rate and records when commands come back."""

    def __init__(self, spec):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from std_msgs.msg import String

        from ilrl_ros import qos
        from ilrl_ros.messages import action_message_class, message_class, message_from_reading

        self.spec = spec
        self.stamped = spec.action.type == 'twist' and spec.action.stamped
        self.node = Node('loop_latency_driver')
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        names = list(spec.sources)
        self.publishers = [self.node.create_publisher(
            message_class(spec.sources[n].message_type), spec.sources[n].topic, qos.SENSOR)
            for n in names]
        # Messages are built once, as the mock robot builds them; a tick only stamps them.
        self.variants = []
        for k in range(VARIANTS):
            readings = sensor_readings(spec, k)
            self.variants.append([message_from_reading(readings[n], frame_id='base_scan')
                                  for n in names])
        self.node.create_subscription(action_message_class(spec.action), spec.action.topic,
                                      self._on_command, qos.COMMAND)
        self.node.create_subscription(String, '/policy/status', self._on_status, qos.LATCHED)
        self._timer = None
        self._reset()

    def _reset(self) -> None:
        self.sends = []          # (stamp_ns, send_ns) per observation, in send order
        self.publish_ns = []     # how long publishing one observation's messages took
        self.commands = []       # (stamp_ns or None, recv_ns, callback_ns, msg)
        self.statuses = []       # (recv_ns, status dict) from /policy/status

    def _tick(self) -> None:
        from builtin_interfaces.msg import Time
        messages = self.variants[len(self.sends) % VARIANTS]
        send_ns = time.time_ns()  # also the stamp: the SUT checks stamps against its clock
        stamp = Time(sec=send_ns // 1_000_000_000, nanosec=send_ns % 1_000_000_000)
        for msg in messages:
            msg.header.stamp = stamp
        for pub, msg in zip(self.publishers, messages):
            pub.publish(msg)
        self.publish_ns.append(time.time_ns() - send_ns)
        self.sends.append((send_ns, send_ns))

    def _on_command(self, msg, info) -> None:
        stamp = None
        if self.stamped:
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.commands.append((stamp, info['received_timestamp'], time.time_ns(), msg))

    def _on_status(self, msg) -> None:
        self.statuses.append((time.time_ns(), json.loads(msg.data)))

    def _spin_until(self, until_ns: int, child: Child, each=None) -> None:
        while time.time_ns() < until_ns:
            self.executor.spin_once(timeout_sec=0.02)
            if each:
                each()
            if not child.alive():
                raise RuntimeError(f'the SUT exited early (code {child.proc.returncode}); '
                                   f'its log {child.log_path} ends:\n{child.tail()}')

    def _check_alone(self, wait_s: float = 3.0) -> None:
        """Warn if some other node on this domain talks on the task's topics."""
        def strangers():
            found = [f'{self.spec.action.topic} has a publisher'] \
                if self.node.count_publishers(self.spec.action.topic) else []
            for pub in self.publishers:
                if self.node.count_publishers(pub.topic_name) > 1:
                    found.append(f'{pub.topic_name} has another publisher')
            return found

        deadline = time.monotonic() + wait_s  # a stopped SUT may take a moment to leave
        while strangers() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.1)
        found = strangers()
        if found:
            log(f'WARNING: other nodes on ROS_DOMAIN_ID {os.environ.get("ROS_DOMAIN_ID")}: '
                f'{"; ".join(found)}. Their messages mix with the benchmark\'s; use '
                f'another --domain-id.')

    def run(self, command: list, log_path: Path, rate_hz: float, warmup_s: float,
            duration_s: float, startup_timeout_s: float) -> dict:
        """Start a SUT, stream until it answers, warm up, measure, stop it; return records."""
        self._reset()
        self._check_alone()
        child = Child(command, log_path)
        try:
            self._timer = self.node.create_timer(1.0 / rate_hz, self._tick)
            started = time.time_ns()
            deadline = started + int(startup_timeout_s * 1e9)
            while not self.commands:
                if time.time_ns() > deadline:
                    raise RuntimeError(f'no command within {startup_timeout_s:g} s of starting '
                                       f'the SUT; its log {child.log_path} ends:\n'
                                       f'{child.tail()}')
                self._spin_until(time.time_ns() + 20_000_000, child)
            ready = self.commands[0][1]
            start = ready + int(warmup_s * 1e9)
            end = start + int(duration_s * 1e9)
            cpu = {}

            def sample_cpu():
                now = time.time_ns()
                for key, at in (('start', start), ('end', end)):
                    if key not in cpu and now >= at:
                        cpu[key] = (now, process_cpu_s(child.pid), os.times(),
                                    others_cpu_s({os.getpid(), child.pid}),
                                    cpu_pressure_s())

            self._spin_until(end, child, sample_cpu)
            sample_cpu()
            # Stream a little past the window so that its last observations have a
            # successor (to tell 'late') and time to be answered.
            self._spin_until(end + max(50_000_000, int(20e9 / rate_hz)), child)
            self.node.destroy_timer(self._timer)
            self._timer = None
            self._spin_until(time.time_ns() + 200_000_000, child)
        finally:
            if self._timer is not None:
                self.node.destroy_timer(self._timer)
                self._timer = None
            child.stop()
        (t0, sut0, own0, others0, psi0), (t1, sut1, own1, others1, psi1) = \
            cpu['start'], cpu['end']
        wall = (t1 - t0) / 1e9
        return {'sends': list(self.sends), 'commands': list(self.commands),
                'statuses': list(self.statuses), 'publish_ns': list(self.publish_ns),
                'window': (start, end), 'startup_s': (ready - started) / 1e9,
                'sut_cpu': (sut1 - sut0) / wall,
                'driver_cpu': (own1.user + own1.system - own0.user - own0.system) / wall,
                'others_cpu': (others1 - others0) / wall,
                'cpu_pressure': (psi1 - psi0) / wall}

    def command_values(self, msg):
        from ilrl_ros.messages import action_from_message
        return action_from_message(self.spec.action, msg)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()


# Orchestration ------------------------------------------------------------------------------

def make_checkpoint(spec, folder: Path, hidden: list, seed: int) -> Path:
    """Write an MLP checkpoint with random weights for the task (latency needs no training)."""
    import torch
    from ilrl_ros.core.checkpoint import save_checkpoint
    from ilrl_ros.core.policies import MLPPolicy

    torch.manual_seed(seed)
    policy = MLPPolicy(spec.observation.size, spec.action.size, hidden=tuple(hidden))
    return save_checkpoint(folder / 'checkpoint', policy, algorithm='random_init', spec=spec,
                           config={'hidden': hidden, 'seed': seed},
                           provenance={'made_by': 'bench/loop_latency.py'})


def bare_plan(spec, checkpoint: Path) -> dict:
    """What the bare floor needs to know, as plain JSON (it cannot import ilrl_ros)."""
    from ilrl_ros.core.checkpoint import load_checkpoint, WEIGHTS

    loaded = load_checkpoint(checkpoint, expected_spec=spec)
    network = loaded.manifest['network']
    if network.get('type') != 'mlp' or network.get('head') != 'deterministic':
        raise SystemExit(f'checkpoint {checkpoint}: the bare floor rebuilds deterministic MLPs '
                         f'only; this one is {network}')
    obs = spec.observation
    return {
        'weights': str(Path(checkpoint) / WEIGHTS),
        'network': network,
        'sources': [{'name': n, 'topic': spec.sources[n].topic,
                     'message_type': spec.sources[n].message_type} for n in obs.sources],
        'fields': [{'source': f.source, 'kind': f.kind, 'bins': f.bins,
                    'max_range': f.max_range, 'components': list(f.components),
                    'joints': list(f.joints), 'scale': f.scale.tolist(),
                    'offset': f.offset.tolist()} for f in obs.fields],
        'sync_tolerance_ns': int(obs.sync_tolerance_s * 1e9),
        'action': {'type': spec.action.type, 'stamped': spec.action.stamped,
                   'topic': spec.action.topic, 'fields': list(spec.action.fields),
                   'message_type': spec.action.message_type,
                   'low': spec.action.low.tolist(), 'high': spec.action.high.tolist()},
    }


def sut_command(system: str, task: str, checkpoint: Path, plan_path: Path,
                mode: str = 'event', rate_hz: float = 0.0) -> list:
    """The command line of a SUT process."""
    if system in ('bare', 'echo'):
        return [sys.executable, str(Path(__file__).resolve()), '--role', system,
                '--plan', str(plan_path)]
    command = [sys.executable, '-m', 'ilrl_ros.nodes.policy', '--ros-args',
               '-p', f'task:={task}', '-p', f'checkpoint:={checkpoint}', '-p', f'mode:={mode}']
    if mode == 'timer':
        command += ['-p', f'control_rate_hz:={rate_hz:.1f}']
    return command


def fmt(value, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return '-'
    return f'{value:.{digits}f}'


def ratio(a, b):
    return a / b if a is not None and b else None


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


def event_rows(args, driver, records: dict):
    """One pooled row per rate and system, with ilrl/bare ratios; and the answers' spread."""
    import numpy as np
    rows, answers = [], {}
    for rate in args.rates:
        by_system = {}
        for system in args.systems:
            runs = records[(rate, system)]
            stats, seen = event_stats(runs, driver.stamped)
            if system != 'echo':
                for k, msg in seen.items():
                    answers.setdefault(system, {}).setdefault(k, driver.command_values(msg))
            by_system[system] = row = {
                'rate_hz': rate, 'system': system, **stats,
                'sut_cpu': float(np.mean([r['sut_cpu'] for r in runs])),
                'driver_cpu': float(np.mean([r['driver_cpu'] for r in runs])),
                'others_cpu': float(np.mean([r['others_cpu'] for r in runs])),
                'cpu_pressure': float(np.mean([r['cpu_pressure'] for r in runs])),
                'driver_publish_us': summary_us([p for r in runs for p in r['publish_ns']]),
                'startup_s': [r['startup_s'] for r in runs],
                'attempts': [r['attempts'] for r in runs],
                'over_limit_runs': sum(r['over_limit'] for r in runs)}
            rows.append(row)
        if 'bare' in by_system and 'ilrl' in by_system:
            bare, ilrl = by_system['bare'], by_system['ilrl']
            for key in ('p50', 'p99'):
                ilrl[f'{key}_ratio'] = ratio(ilrl['latency_us'][key], bare['latency_us'][key])
                # Runs of one round ran back to back: their ratios share the machine's mood.
                ilrl[f'paired_{key}_ratios'] = [
                    ratio(i[key], b[key]) for i, b in zip(ilrl['per_run_latency_us'],
                                                          bare['per_run_latency_us'])]
    diff = None
    if 'bare' in answers and 'ilrl' in answers:
        common = set(answers['bare']) & set(answers['ilrl'])
        diff = max((float(np.max(np.abs(answers['bare'][k] - answers['ilrl'][k])))
                    for k in common), default=None)
    return rows, diff


def print_event_table(results: dict, args) -> None:
    net = results['network']
    arch = '-'.join(str(n) for n in (net['obs_dim'], *net['hidden'], net['act_dim']))
    print(f'\nObservation-to-command latency, event mode: task {results["task"]}, MLP {arch}, '
          f'{args.duration:g} s per run x {args.rounds} round(s); latency in microseconds')
    header = (f'{"rate Hz":>7}  {"system":<6} {"sent":>6} {"samples":>7} {"p50":>6} {"p99":>6} '
              f'{"max":>6} {"missed":>6} {"(lost+late)":<11} {"cpu":>4} {"others":>6} '
              f'{"wait":>4} '
              f'{"p50x":>5} {"p99x":>5}')
    print(header)
    print('-' * len(header))
    for row in results['event']:
        lat = row['latency_us']
        system = row['system'] + ('*' if row['over_limit_runs'] else '')
        print(f'{row["rate_hz"]:>7g}  {system:<6} {row["sent"]:>6} {row["samples"]:>7} '
              f'{fmt(lat["p50"]):>6} {fmt(lat["p99"]):>6} {fmt(lat["max"]):>6} '
              f'{row["missed"]:>6} {"(%d+%d)" % (row["lost"], row["late"]):<11} '
              f'{fmt(100 * row["sut_cpu"]) + "%":>4} {fmt(row["others_cpu"], 2):>6} '
              f'{fmt(100 * row["cpu_pressure"]) + "%":>4} '
              f'{fmt(row.get("p50_ratio"), 2):>5} {fmt(row.get("p99_ratio"), 2):>5}')
    publish = results['driver_publish_us']
    print(f'p50x, p99x: ilrl / bare. cpu: the SUT process, share of one core; others: cores '
          f'used by all other processes but the driver; wait: share of time some task waited '
          f'for a CPU (PSI).\nLatency runs from just before the '
          f'driver publishes an observation (that took it p50 {fmt(publish["p50"])} us) to the '
          f'DDS reception of the command.\necho answers with a constant command (transport '
          f'and executor only); bare runs the same computation as ilrl with plain rclpy, '
          f'numpy and torch.')
    if results.get('answer_max_abs_diff') is not None:
        print(f'bare and ilrl commands for the same observations differ by at most '
              f'{results["answer_max_abs_diff"]:.2g}.')
    rows = [r for r in results['event'] if r['rate_hz'] == TARGETS['rate_hz']
            and r.get('p50_ratio') is not None]
    for row in rows:
        for name in ('p50', 'p99'):
            value, target = row[f'{name}_ratio'], TARGETS[f'{name}_ratio']
            verdict = 'met' if value is not None and value <= target else 'NOT met'
            paired = sorted(r for r in row[f'paired_{name}_ratios'] if r is not None)
            spread = '' if len(paired) < 2 else (
                f'; per round {fmt(statistics.median(paired), 2)}x median, '
                f'{fmt(paired[0], 2)}-{fmt(paired[-1], 2)}x range')
            print(f'Target at {TARGETS["rate_hz"]:g} Hz: {name} ilrl/bare {fmt(value, 2)}x '
                  f'(target <= {target}x): {verdict}{spread}')
    flagged = [r for r in results['event'] if r['over_limit_runs']]
    if flagged:
        print(f'*: {sum(r["over_limit_runs"] for r in flagged)} run(s) kept although other '
              f'processes used more than --max-others during them (over_limit_runs and '
              f'per_run_latency_us in the JSON).')


def print_timer(timer: dict) -> None:
    period_us = 1e6 / timer['rate_hz']
    slots = timer['slots']
    share = slots['on_time_fraction']
    verdict = 'met' if share is not None and share >= TARGETS['timer_on_time'] else 'NOT met'
    print(f'\nTimer mode: the policy node at control_rate_hz {timer["rate_hz"]:g}, observations '
          f'streamed at the same rate, {timer["seconds"]:g} s.\n(The bare ping-pong has no '
          f'timer mode: it answers each observation, so there is no floor to compare with.)')
    print(f'  commands received: {timer["commands"]} = {timer["commands_per_s"]:.1f}/s '
          f'(expected {timer["rate_hz"]:g}/s)')
    print(f'  ticks on time (periods of the timer grid with exactly one command within '
          f'+/-{period_us / 2:.0f} us): {slots["one"]}/{slots["slots"]} = '
          f'{fmt(100 * (share or 0), 2)}% (target >= {100 * TARGETS["timer_on_time"]:g}%): '
          f'{verdict}; empty {slots["empty"]}, doubled {slots["crowded"]}')
    iv = timer['interval_us']
    print(f'  intervals between arrivals within +/-50% of {period_us:.0f} us: '
          f'{timer["regular_intervals"]}/{timer["intervals"]} = '
          f'{fmt(100 * (timer["regular_fraction"] or 0), 2)}% (a late tick spoils two); '
          f'p50 {fmt(iv["p50"])}, p99 {fmt(iv["p99"])}, max {fmt(iv["max"])} us')
    print(f'  SUT cpu {100 * timer["sut_cpu"]:.0f}%, others {timer["others_cpu"]:.2f} cores, '
          f'cpu wait {fmt(100 * timer["cpu_pressure"])}%')
    if 'observation_age_us' in timer:
        age = timer['observation_age_us']
        print(f'  age of the observation a command answers, us: p50 {fmt(age["p50"])}, '
              f'p99 {fmt(age["p99"])}, max {fmt(age["max"])}')
    if timer.get('over_limit'):
        print('  (kept although other processes used more than --max-others during it)')
    counts = timer.get('policy_counts')
    if counts:
        total = counts['ticks'] + counts['missed_ticks'] + counts['stale']
        print(f'  /policy/status counters over {counts["seconds"]:.0f} s: ticks acted '
              f'{counts["ticks"]}, missed_ticks {counts["missed_ticks"]} '
              f'({fmt(100 * counts["missed_ticks"] / total if total else None, 2)}%), stale '
              f'{counts["stale"]}, errors {counts["errors"]}')


class Sut:
    """Builds the command lines of the SUT processes; holds the work folder."""

    def __init__(self, task: str, checkpoint: Path, plan_path: Path, work: Path):
        self.task, self.checkpoint, self.plan_path, self.work = task, checkpoint, plan_path, work

    def __call__(self, system: str, mode: str = 'event', rate_hz: float = 0.0) -> list:
        return sut_command(system, self.task, self.checkpoint, self.plan_path, mode, rate_hz)


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
    # Internal: how the driver starts the floor SUTs.
    parser.add_argument('--role', choices=('driver',) + SYSTEMS[:2], default='driver',
                        help=argparse.SUPPRESS)
    parser.add_argument('--plan', default='', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == 'driver' and (args.duration <= 0 or args.warmup < 0 or args.rounds < 1
                                  or min(args.rates) <= 0 or args.timer_rate < 0):
        parser.error('durations and rates must be positive, --rounds at least 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.role in ('bare', 'echo'):
        return bare_main(args.plan, echo=args.role == 'echo')
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
        'config': {k: v for k, v in vars(args).items() if k not in ('role', 'plan')},
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
