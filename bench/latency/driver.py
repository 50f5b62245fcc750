"""The driver: plays the robot, starts each system under test in its own process, times it.

Also the CPU accounting of a run (the SUT's, the driver's, everyone else's, Linux PSI).
"""

import json
import math
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

# The ilrl_ros measured is this checkout's, also where an older copy is installed.
REPO = Path(__file__).resolve().parents[2]
VARIANTS = 16  # distinct observations, cycled, so that every SUT sees the same inputs


def log(text: str) -> None:
    print(f'[loop_latency] {text}', file=sys.stderr, flush=True)


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
