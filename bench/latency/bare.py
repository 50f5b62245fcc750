"""The bare floor: a plain rclpy + numpy + torch node doing the policy node's computation.

It runs in a process of its own (``python bench/latency/bare.py --plan PLAN [--echo]``,
started by the driver) and imports nothing of ilrl_ros: that is what makes it a floor. The
plan (JSON, written by ``sut.bare_plan``) says which topics, fields, weights and bounds.
``--echo`` answers every synchronised observation with a constant command instead.
"""

import argparse
import importlib
import json
import math
from pathlib import Path
import signal
import sys


def import_message(type_name: str):
    package, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def bare_main(plan_path: str, echo: bool = False) -> int:
    """Run the bare rclpy ping-pong described by the plan file until SIGTERM."""
    import numpy as np
    import rclpy
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
    command_class = import_message(action['message_type'])
    zero = np.zeros(len(action['fields']))

    class Bare(Node):
        def __init__(self):
            super().__init__('bare_policy')
            self.latest = {}  # source -> (stamp_ns, msg)
            self.last_stamp = -1
            self.pub = self.create_publisher(command_class, action['topic'], command_qos)
            for source in plan['sources']:
                self.create_subscription(
                    import_message(source['message_type']), source['topic'],
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
    return spin_until_stopped(node)


def spin_until_stopped(node) -> int:
    """Spin ``node`` on a single-threaded executor until Ctrl-C or shutdown; then clean up."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--plan', required=True, help='the plan file (JSON) the driver wrote')
    parser.add_argument('--echo', action='store_true',
                        help='answer with a constant command: no numpy, no network')
    args = parser.parse_args(argv)
    return bare_main(args.plan, echo=args.echo)


if __name__ == '__main__':
    sys.exit(main())
