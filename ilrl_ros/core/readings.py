"""Sensor readings: the ROS-free form of the messages a robot driver publishes.

The simulators produce these, the ROS side converts messages to and from them, and the
observation, reward and termination code consumes them, so the simulated and the ROS paths
compute the same numbers from the same data.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ScanReading:
    """A planar laser scan (sensor_msgs/LaserScan): ranges in metres from angle_min."""

    stamp_ns: int
    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float
    ranges: np.ndarray

    def angles(self) -> np.ndarray:
        """Return the angle of every ray, in the sensor frame."""
        return self.angle_min + self.angle_increment * np.arange(len(self.ranges))


@dataclass(frozen=True)
class OdomReading:
    """Planar pose and body-frame velocity (nav_msgs/Odometry)."""

    stamp_ns: int
    x: float
    y: float
    yaw: float
    vx: float
    vy: float
    wz: float


@dataclass(frozen=True)
class JointReading:
    """Joint positions, velocities and efforts by name (sensor_msgs/JointState)."""

    stamp_ns: int
    names: tuple
    position: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    effort: np.ndarray = field(default_factory=lambda: np.zeros(0))


# The sensor_msgs/Image encodings the core reads: channels per pixel and the pixel dtype.
IMAGE_ENCODINGS = {
    'mono8': (1, np.uint8),
    'mono16': (1, np.uint16),
    'rgb8': (3, np.uint8),
    'bgr8': (3, np.uint8),
    'rgba8': (4, np.uint8),
    'bgra8': (4, np.uint8),
}


@dataclass(frozen=True)
class ImageReading:
    """A camera image (sensor_msgs/Image) as pixels.

    ``data`` is shaped (height, width) for one-channel encodings and (height, width,
    channels) otherwise, uint8 (uint16 for mono16) in native byte order; ``encoding`` is one
    of ``IMAGE_ENCODINGS``.
    """

    stamp_ns: int
    height: int
    width: int
    encoding: str
    data: np.ndarray


# Which reading each observation/reward source kind carries, and the ROS message type
# a driver publishes it as.
READING_TYPES = {
    'laser_scan': (ScanReading, 'sensor_msgs/msg/LaserScan'),
    'odometry': (OdomReading, 'nav_msgs/msg/Odometry'),
    'joint_state': (JointReading, 'sensor_msgs/msg/JointState'),
    'image': (ImageReading, 'sensor_msgs/msg/Image'),
}
