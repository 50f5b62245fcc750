"""Observation-to-command latency through the ``policy`` node, next to a bare rclpy floor.

A driver (this process) plays the robot: it publishes the task's sensor messages at a fixed
rate, all of one observation with the same stamp, and listens for the command. The system
under test (SUT) runs in a process of its own and is one of:

- ``ilrl``: the real ``policy`` node (``python -m ilrl_ros.nodes.policy``), running an MLP
  checkpoint this benchmark writes (random weights: latency does not depend on training);
- ``bare``: the floor, this same file run with ``--role bare``: a plain rclpy node with the
  same subscriptions and QoS that turns the messages into the same observation with numpy,
  runs the same network (same weights, one torch thread, inference mode) and publishes the
  same command. Its process imports nothing from ilrl_ros.

::

    driver process (this one)                       SUT process (ilrl or bare)
    timer @ rate --> /scan + /odom (stamp s) ------> subscriptions (sensor data QoS)
      send_ns[s] = clock just before the first           observation -> MLP -> clamp
    /cmd_vel (reliable, depth 10)  <---------------- TwistStamped, header.stamp = s
      latency = DDS reception time of the command - send_ns[s]

Latency is taken from the DDS reception timestamp of the command (rmw MessageInfo), so the
driver's own executor delay is not counted; the time until the driver's Python callback
ran is kept as well (``callback_*`` in the JSON). For an unstamped command
(Float64MultiArray, the pendulum task) a command is matched to the newest observation sent
before it arrived; a command later than one period is then mis-matched, so only stamped
commands give exact numbers.

A tick is missed when its observation got no command (``lost``) or the command arrived
after the next observation was sent (``late``).

Timer mode: the policy node runs with ``mode:=timer`` at ``--timer-rate`` while the driver
streams observations at the same rate; reported are commands per second against the rate
and the share of intervals between commands within +/-50% of the period ("on time"). The
bare floor has no timer mode: it is a ping-pong by construction.

Nothing is asserted: the script prints figures (and targets) and exits 0 unless it could
not run. Each process is left to the scheduler (no pinning); every child runs in its own
session and is killed with its group on exit.

Examples::

    python bench/loop_latency.py
    python bench/loop_latency.py --rates 500 --duration 10 --rounds 3 --json /tmp/lat.json
    python bench/loop_latency.py --task pendulum --rates 100 500 --timer-rate 0
    python bench/loop_latency.py --checkpoint runs/bc/checkpoint --rates 500
"""

import argparse
import array
import bisect
import importlib
import json
import math
import os
from pathlib import Path
import platform
import signal
import subprocess
import sys
import tempfile
import time

# Everything a benchmark publishes stays on this machine unless the user says otherwise;
# set before rclpy is imported here or in any child.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('RCUTILS_LOGGING_BUFFERED_STREAM', '1')

SYSTEMS = ('bare', 'ilrl')
TARGETS = {'rate_hz': 500.0, 'p50_ratio': 1.3, 'p99_ratio': 1.5, 'timer_on_time': 0.995}


def log(text: str) -> None:
    print(f'[loop_latency] {text}', file=sys.stderr, flush=True)


# Statistics (pure functions over the driver's records) ----------------------------------

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
    callback_ns, values)] in arrival order; ``stamp_ns`` is None for unstamped commands,
    which are matched to the newest observation sent before they arrived. Returns
    {send index: command} and the number of commands that matched nothing new (extra).
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


def event_stats(sends, commands, window, stamped: bool) -> dict:
    """Latency and missed ticks of the observations sent inside ``window`` (start, end)."""
    matched, extra = match_commands(sends, commands, stamped)
    start, end = window
    latency, callback, lost, late, sent = [], [], 0, 0, 0
    for i, (_, send_ns) in enumerate(sends):
        if not start <= send_ns < end:
            continue
        sent += 1
        command = matched.get(i)
        if command is None:
            lost += 1
            continue
        latency.append(command[1] - send_ns)
        callback.append(command[2] - send_ns)
        if i + 1 < len(sends) and command[1] > sends[i + 1][1]:
            late += 1
    return {'sent': sent, 'samples': len(latency), 'lost': lost, 'late': late,
            'missed': lost + late, 'extra_commands': extra,
            'latency_us': summary_us(latency), 'callback_latency_us': summary_us(callback)}


def timer_stats(sends, commands, window, rate_hz: float, stamped: bool) -> dict:
    """Command rate and regularity of a timer-mode run, from command reception times."""
    import numpy as np
    start, end = window
    received = [c[1] for c in commands if start <= c[1] < end]
    period_ns = 1e9 / rate_hz
    intervals = np.diff(np.asarray(received, dtype=np.int64))
    on_time = int(np.count_nonzero((intervals >= 0.5 * period_ns)
                                   & (intervals <= 1.5 * period_ns)))
    seconds = (end - start) / 1e9
    result = {'commands': len(received), 'seconds': seconds,
              'commands_per_s': len(received) / seconds, 'expected_per_s': rate_hz,
              'intervals': int(intervals.size), 'on_time': on_time,
              'on_time_fraction': on_time / intervals.size if intervals.size else None,
              'interval_us': summary_us(intervals)}
    if stamped:
        # How old the newest observation was when a command using it arrived: up to one
        # period of waiting for the tick on top of the pass through the node.
        send_by_stamp = dict(sends)
        ages = [c[1] - send_by_stamp[c[0]] for c in commands
                if start <= c[1] < end and c[0] in send_by_stamp]
        result['observation_age_us'] = summary_us(ages)
    return result


# The bare floor (its own process; imports nothing from ilrl_ros) -------------------------

def _import_message(type_name: str):
    package, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def bare_main(plan_path: str) -> int:
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
    acts = {'relu': nn.ReLU, 'tanh': nn.Tanh, 'elu': nn.ELU}

    class Net(nn.Module):
        # The policy's architecture, written out: normalise, MLP, linear head, de-normalise.
        def __init__(self):
            super().__init__()
            sizes = [net['obs_dim'], *net['hidden']]
            layers = []
            for a, b in zip(sizes[:-1], sizes[1:]):
                layers += [nn.Linear(a, b), acts[net['activation']]()]
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

    def scan_values(field, msg, cache={}):
        ranges = np.asarray(msg.ranges, dtype=np.float64)
        key = (msg.angle_min, msg.angle_increment, ranges.size)
        index = cache.get(key)
        if index is None:
            angles = msg.angle_min + msg.angle_increment * np.arange(ranges.size)
            width = 2.0 * math.pi / field['bins']
            index = np.minimum((np.mod(angles + math.pi, 2.0 * math.pi) / width)
                               .astype(np.int64), field['bins'] - 1)
            cache[key] = index
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
    for field in plan['fields']:
        field['scale'] = np.asarray(field['scale'])
        field['offset'] = np.asarray(field['offset'])

    command_class = _import_message(action['message_type'])

    class Bare(Node):
        def __init__(self):
            super().__init__('bare_policy')
            self.latest = {}
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
            obs = np.concatenate([
                (np.asarray(extract[f['kind']](f, self.latest[f['source']][1]))
                 - f['offset']) * f['scale'] for f in plan['fields']]).astype(np.float32)
            with torch.inference_mode():
                out = model(torch.from_numpy(obs).unsqueeze(0))[0].numpy()
            act = np.clip(out.astype(np.float64), low, high)
            cmd = command_class()
            if action['type'] == 'twist':
                twist = cmd.twist if action['stamped'] else cmd
                for name, value in zip(action['fields'], act):
                    group, axis = name.split('.')
                    setattr(getattr(twist, group), axis, float(value))
                if action['stamped']:
                    # The stamp of the observation answered: its newest input's.
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
    node.get_logger().info('bare floor ready; ilrl_ros imported in this process: '
                           f'{"yes (a bug in the benchmark)" if "ilrl_ros" in sys.modules else "no"}')
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


# The driver: plays the robot and times the SUT -------------------------------------------

VARIANTS = 16  # distinct observations cycled through, so both systems see the same inputs


def sensor_readings(spec, variant: int, stamp_ns: int = 0) -> dict:
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
            readings[name] = ScanReading(stamp_ns=stamp_ns, angle_min=-math.pi,
                                         angle_increment=2.0 * math.pi / rays, range_min=0.12,
                                         range_max=3.5, ranges=ranges)
        elif source.kind == 'odometry':
            readings[name] = OdomReading(stamp_ns=stamp_ns, x=math.cos(phase),
                                         y=math.sin(phase), yaw=phase - math.pi, vx=0.15,
                                         vy=0.0, wz=0.8 * math.sin(phase))
        else:
            joints = [j for f in spec.observation.fields if f.source == name for j in f.joints]
            joints = list(dict.fromkeys(joints)) or ['joint']
            n = len(joints)
            readings[name] = JointReading(stamp_ns=stamp_ns, names=tuple(joints),
                                          position=np.full(n, phase - math.pi),
                                          velocity=np.full(n, 2.0 * math.sin(phase)),
                                          effort=np.zeros(n))
    return readings


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class Child:
    """A SUT process in a session of its own, always killed with its whole group."""

    def __init__(self, command: list, log_path: Path):
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors='replace').splitlines()
        return '\n'.join(text[-lines:])

    def stop(self) -> None:
        for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


class Driver:
    """Publishes the task's sensor messages at a rate and records when commands come back."""

    def __init__(self, spec, node_name: str = 'loop_latency_driver'):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from std_msgs.msg import String

        from ilrl_ros import qos
        from ilrl_ros.messages import action_message_class, message_class, message_from_reading

        self.spec = spec
        self.stamped = spec.action.type == 'twist' and spec.action.stamped
        self.node = Node(node_name)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        names = list(spec.sources)
        self.publishers = [self.node.create_publisher(
            message_class(spec.sources[n].message_type), spec.sources[n].topic, qos.SENSOR)
            for n in names]
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
        self.publish_ns = []     # time to publish all messages of one observation
        self.commands = []       # (stamp_ns or None, recv_ns, callback_ns, msg)
        self.status = None

    def _tick(self) -> None:
        from builtin_interfaces.msg import Time
        messages = self.variants[len(self.sends) % VARIANTS]
        send_ns = time.time_ns()
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
        self.status = json.loads(msg.data)

    def _spin_until(self, until_ns: int, child: Child, also=None) -> None:
        while time.time_ns() < until_ns:
            self.executor.spin_once(timeout_sec=0.02)
            if also:
                also()
            if not child.alive():
                raise RuntimeError(f'the SUT exited early (code {child.proc.returncode}); '
                                   f'its log ({child.log_path}) ends:\n{child.tail()}')

    def run(self, child_factory, rate_hz: float, warmup_s: float, duration_s: float,
            startup_timeout_s: float) -> dict:
        """Start the SUT, stream until it answers, warm up, measure, stop it; return records."""
        self._reset()
        child = child_factory()
        try:
            self._timer = self.node.create_timer(1.0 / rate_hz, self._tick)
            started = time.time_ns()
            deadline = started + int(startup_timeout_s * 1e9)
            while not self.commands:
                if time.time_ns() > deadline:
                    raise RuntimeError(f'no command within {startup_timeout_s:g} s of starting '
                                       f'the SUT; its log ({child.log_path}) ends:\n'
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
                        cpu[key] = (now, proc_cpu_s(child.pid), os.times())

            self._spin_until(end, child, sample_cpu)
            sample_cpu()
            # Keep streaming a little past the window so its last ticks have a successor
            # (for 'late') and time to be answered.
            self._spin_until(end + max(50_000_000, int(20e9 / rate_hz)), child)
            self.node.destroy_timer(self._timer)
            self._timer = None
            self._spin_until(time.time_ns() + 200_000_000, child)
        finally:
            if self._timer is not None:
                self.node.destroy_timer(self._timer)
                self._timer = None
            child.stop()
        wall = (cpu['end'][0] - cpu['start'][0]) / 1e9
        own = sum(cpu['end'][2][:2]) - sum(cpu['start'][2][:2])
        return {'sends': list(self.sends), 'commands': list(self.commands),
                'publish_ns': list(self.publish_ns), 'window': (start, end),
                'startup_s': (ready - started) / 1e9, 'status': self.status,
                'sut_cpu': (cpu['end'][1] - cpu['start'][1]) / wall,
                'driver_cpu': own / wall}

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


def fmt(value, digits: int = 0) -> str:
    return '-' if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f'{value:.{digits}f}'


def ratio(a, b):
    return a / b if a is not None and b else None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='loop_latency.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Columns: sent = observations sent in the window; samples = those answered; '
               'p50/p99/max = latency in microseconds; missed = lost (no command) + late '
               '(command after the next observation was sent); cpu = share of one core the '
               'SUT process used in the window; p50x/p99x = ilrl / bare of the same rate. '
               'Targets (printed, never asserted): at 500 Hz p50x <= 1.3 and p99x <= 1.5, '
               'and >= 99.5%% of timer-mode intervals on time.')
    parser.add_argument('--task', default='track_follow',
                        help='bundled task name or spec YAML path (default: %(default)s)')
    parser.add_argument('--rates', type=float, nargs='+', default=[100.0, 500.0, 1000.0],
                        help='observation rates in Hz for event mode (default: 100 500 1000)')
    parser.add_argument('--duration', type=float, default=3.0,
                        help='measured seconds per run (default: %(default)s)')
    parser.add_argument('--warmup', type=float, default=1.0,
                        help='seconds streamed after the first command before measuring '
                             '(default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=1,
                        help='repeat the interleaved bare/ilrl runs this many times; samples '
                             'of a rate and system are pooled (default: %(default)s)')
    parser.add_argument('--timer-rate', type=float, default=500.0,
                        help='control_rate_hz of the timer-mode run; 0 skips it '
                             '(default: %(default)s)')
    parser.add_argument('--systems', nargs='+', choices=SYSTEMS, default=list(SYSTEMS),
                        help='which SUTs to run in event mode (default: both)')
    parser.add_argument('--checkpoint', default='',
                        help='run this checkpoint (a deterministic MLP for the task) instead '
                             'of a fresh random one')
    parser.add_argument('--hidden', type=int, nargs='+', default=[256, 256],
                        help='hidden layer sizes of the fresh MLP (default: 256 256)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the fresh MLP weights')
    parser.add_argument('--startup-timeout', type=float, default=60.0,
                        help='seconds to wait for a SUT to answer its first observation')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID for the driver and the SUTs (default: '
                             '$ROS_DOMAIN_ID, else one derived from the process id); '
                             'discovery stays on localhost unless '
                             'ROS_AUTOMATIC_DISCOVERY_RANGE is set')
    parser.add_argument('--json', default='', help='also write the results to this JSON file')
    parser.add_argument('--keep-logs', action='store_true',
                        help='keep the work folder (checkpoint, plan, SUT logs)')
    parser.add_argument('--role', choices=('driver', 'bare'), default='driver',
                        help=argparse.SUPPRESS)
    parser.add_argument('--plan', default='', help=argparse.SUPPRESS)
    return parser.parse_args(argv)
