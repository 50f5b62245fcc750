"""A differential-drive robot lapping a 1 m corridor, seen through lidar and odometry.

The road-following task of the ALVINN story, where behavior cloning's compounding error
shows. Gymnasium API; observation, reward and termination all come from the task spec.
"""

import math

import numpy as np

from ilrl_ros.core.envs.camera import CameraConfig, TrackCamera
from ilrl_ros.core.envs.spec_env import SpecEnv
from ilrl_ros.core.readings import ImageReading, OdomReading, ScanReading
from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.world import make_world
from ilrl_ros.core.world.track_geometry import diff_drive_step


def _pair(value, key: str) -> np.ndarray:
    """A number or [linear, angular] list of non-negative standard deviations."""
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if values.shape not in ((1,), (2,)) or not np.all(np.isfinite(values)) \
            or (values < 0).any():
        raise ValueError(f'{key}: expected a standard deviation >= 0 or a list of two '
                         f'(linear m/s, angular rad/s), got {value!r}')
    return np.broadcast_to(values, (2,)).copy()


class TrackFollowEnv(SpecEnv):
    """Gymnasium environment for the ``track_follow`` task spec."""

    def __init__(self, spec: TaskSpec):
        params = spec.sim_params
        self.track = make_world(spec)
        super().__init__(spec, self.track)
        self.robot_radius = float(params.get('robot_radius', 0.105))
        rays = int(params.get('scan_rays', 360))
        self.scan_range_max = float(params.get('scan_range_max', 3.5))
        self.scan_noise_std = float(params.get('scan_noise_std', 0.0))
        # Wheel slip and motor error: the executed (and odometry-reported) velocities are the
        # command plus zero-mean noise of these standard deviations, drawn every step.
        self.actuation_noise_std = _pair(params.get('actuation_noise_std', 0.0),
                                         'robot.params.actuation_noise_std')
        self.start_max_lateral = float(params.get('start_max_lateral', 0.1))
        self.start_max_heading_error = float(params.get('start_max_heading_error', 0.2))
        self.scan_angle_min = -math.pi
        self.scan_increment = 2.0 * math.pi / rays
        self.scan_angles = self.scan_angle_min + self.scan_increment * np.arange(rays)
        self.sources = {s.kind: s.name for s in spec.sources.values()}
        # The camera is rendered only for a task that has one (it costs a raycast per column).
        self.camera = TrackCamera(self.track, CameraConfig.from_params(params)) \
            if 'image' in self.sources else None
        self.pose = (0.0, 0.0, 0.0)
        self.velocity = (0.0, 0.0)

    def readings(self) -> dict:
        """Return the sensor readings of the current state, keyed by source name."""
        x, y, yaw = self.pose
        ranges = self.track.raycast(x, y, yaw, self.scan_angles, self.scan_range_max)
        if self.scan_noise_std > 0.0:
            noisy = ranges + self.np_random.normal(0.0, self.scan_noise_std, ranges.shape)
            ranges = np.where(np.isfinite(ranges), np.maximum(noisy, 0.0), ranges)
        scan = ScanReading(stamp_ns=self.stamp_ns, angle_min=self.scan_angle_min,
                           angle_increment=self.scan_increment, range_min=0.0,
                           range_max=self.scan_range_max, ranges=ranges)
        odom = OdomReading(stamp_ns=self.stamp_ns, x=x, y=y, yaw=yaw, vx=self.velocity[0],
                           vy=0.0, wz=self.velocity[1])
        out = {}
        if 'laser_scan' in self.sources:
            out[self.sources['laser_scan']] = scan
        if 'odometry' in self.sources:
            out[self.sources['odometry']] = odom
        if self.camera is not None:
            pixels = self.camera.render(x, y, yaw, self.np_random)
            out[self.sources['image']] = ImageReading(
                stamp_ns=self.stamp_ns, height=pixels.shape[0], width=pixels.shape[1],
                encoding='mono8', data=pixels)
        return out

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        if 'pose' in options:
            self.pose = tuple(float(v) for v in options['pose'])
        else:
            self.pose = self.track.sample_start(self.np_random, self.start_max_lateral,
                                                self.start_max_heading_error)
        self.velocity = (0.0, 0.0)
        return self.start_episode(), self._info(None, {})

    def step(self, action):
        command = self.command(action)
        named = dict(zip(self.spec.action.fields, command))
        v, w = named.get('linear.x', 0.0), named.get('angular.z', 0.0)
        if self.actuation_noise_std.any():
            v, w = np.array([v, w]) + self.np_random.normal(0.0, self.actuation_noise_std)
        x, y, yaw = diff_drive_step(*self.pose, v, w, self.dt_ns / 1e9)
        self.pose = (x, y, yaw)
        self.velocity = (v, w)
        obs, reward, terminated, truncated, outcome, terms = self.finish_step(command)
        return obs, reward, terminated, truncated, self._info(outcome, terms)

    def _info(self, outcome, terms) -> dict:
        projection = self.track.project(self.pose[0], self.pose[1])
        return {'outcome': outcome, 'reward_terms': terms, 'lateral': projection.lateral,
                'progress_m': self.termination.progress_m(), 'stamp_ns': self.stamp_ns,
                'collided': self.track.collides(self.pose[0], self.pose[1],
                                                self.robot_radius)}
