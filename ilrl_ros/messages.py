"""Conversions between ROS 2 messages and the core's readings and action vectors.

The only place that knows both sides: nodes, the bag converter and the mock robot all go
through it, so a message means the same numbers everywhere.
"""

import math
import re
import sys

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist, TwistStamped
import numpy as np
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from ilrl_ros.bag.schema import message_class
from ilrl_ros.core.image_codec import decode_image, encode_image
from ilrl_ros.core.observation import MAX_ABS_VALUE, ObservationError
from ilrl_ros.core.readings import (IMAGE_ENCODINGS, ImageReading, JointReading, OdomReading,
                                    READING_TYPES, ScanReading)
from ilrl_ros.core.spec import ActionSpec


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def image_from_message(msg, where: str = 'image') -> ImageReading:
    """Decode a sensor_msgs/Image into pixels, checking its encoding, step and data length."""
    encoding = msg.encoding
    if encoding not in IMAGE_ENCODINGS:
        raise ObservationError(f'{where}: image encoding {encoding!r} is not supported; '
                               f'expected one of {", ".join(IMAGE_ENCODINGS)}')
    channels, dtype = IMAGE_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if height <= 0 or width <= 0:
        raise ObservationError(f'{where}: the image is {height}x{width} pixels; expected a '
                               f'height and width of at least 1')
    if step < row_bytes:
        raise ObservationError(f'{where}: step is {step} bytes, shorter than a row of '
                               f'{width} {encoding} pixels ({row_bytes} bytes)')
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != step * height:
        raise ObservationError(f'{where}: the image data has {data.size} bytes; {height} rows '
                               f'of step {step} need {step * height}')
    rows = data.reshape(height, step)[:, :row_bytes]
    if np.dtype(dtype).itemsize > 1:
        wire = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
        pixels = np.ascontiguousarray(rows).view(wire).astype(dtype)
    else:
        pixels = rows.copy()
    pixels = pixels.reshape((height, width) if channels == 1 else (height, width, channels))
    return ImageReading(stamp_ns=stamp_to_ns(msg.header.stamp), height=height, width=width,
                        encoding=encoding, data=pixels)


def compressed_image_from_message(msg, where: str = 'image') -> ImageReading:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG) into pixels, as ``Image`` gives them.

    The format is told by the data itself, so a driver's ``format`` string ("jpeg", "bgr8;
    jpeg compressed bgr8", ...) need not be parsed; it is quoted when the data is refused.
    """
    try:
        return decode_image(msg.data, stamp_to_ns(msg.header.stamp), where)
    except ObservationError as error:
        raise ObservationError(f'{error} (message format {msg.format!r})') from None


def reading_from_message(kind: str, msg, source: str = ''):
    """Convert a LaserScan / Odometry / JointState / Image message into the core's reading.

    An image source takes a sensor_msgs/CompressedImage too (its spec's ``format``: jpeg or
    png), decoded to the same reading.

    Total over every message rclpy can deliver: whatever is wrong with the message (non-finite
    or overflowing values, a quaternion of norm 1e200, lengths that disagree, joints named
    twice) is an ``ObservationError`` naming the source and what was expected.
    """
    if kind not in READING_TYPES:
        raise ValueError(f'unknown source kind {kind!r}; expected one of {tuple(READING_TYPES)}')
    where = f'source {source!r}: ' if source else ''
    try:
        return _reading(kind, msg, where, source)
    except ObservationError:
        raise
    except (ArithmeticError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ObservationError(f'{where}the {READING_TYPES[kind][1]} message cannot be read '
                               f'({type(error).__name__}: {error})') from None


def _reading(kind: str, msg, where: str, source: str):
    stamp = stamp_to_ns(msg.header.stamp)
    if kind == 'laser_scan':
        return ScanReading(stamp_ns=stamp, angle_min=float(msg.angle_min),
                           angle_increment=float(msg.angle_increment),
                           range_min=float(msg.range_min), range_max=float(msg.range_max),
                           ranges=np.asarray(msg.ranges, dtype=np.float64))
    if kind == 'odometry':
        p, q, t = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
        values = (p.x, p.y, q.x, q.y, q.z, q.w, t.linear.x, t.linear.y, t.angular.z)
        if not all(math.isfinite(v) for v in values):
            raise ObservationError(f'{where}odometry has non-finite pose or twist values')
        if max(abs(v) for v in values) > MAX_ABS_VALUE:
            raise ObservationError(f'{where}odometry has pose or twist values beyond '
                                   f'+/-{MAX_ABS_VALUE:g} ({[float(v) for v in values]}); '
                                   f'expected a physical pose and velocity')
        norm = math.hypot(q.x, q.y, q.z, q.w)
        if abs(norm - 1.0) > 1e-3:
            raise ObservationError(f'{where}odometry orientation is not a unit quaternion '
                                   f'(norm {norm:.4g})')
        return OdomReading(stamp_ns=stamp, x=p.x, y=p.y, yaw=yaw_from_quaternion(
            q.x, q.y, q.z, q.w), vx=t.linear.x, vy=t.linear.y, wz=t.angular.z)
    if kind == 'image':
        where = f'source {source!r}' if source else 'image'
        if isinstance(msg, CompressedImage):
            return compressed_image_from_message(msg, where)
        return image_from_message(msg, where)
    names = tuple(msg.name)
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ObservationError(f'{where}joint_state names joints {twice} more than once; '
                               f'expected each joint once')
    return JointReading(stamp_ns=stamp, names=names,
                        position=np.asarray(msg.position, dtype=np.float64),
                        velocity=np.asarray(msg.velocity, dtype=np.float64),
                        effort=np.asarray(msg.effort, dtype=np.float64))


def message_from_reading(reading, frame_id: str, child_frame_id: str = 'base_link',
                         image_format: str = 'raw'):
    """Build the message a robot driver would publish for a reading (mock robot side).

    An image is a sensor_msgs/Image, or with ``image_format`` jpeg or png a
    sensor_msgs/CompressedImage as image_transport's compressed transport sends it.
    """
    if isinstance(reading, ImageReading) and image_format != 'raw':
        msg = CompressedImage()
        msg.format = f'{reading.encoding}; {image_format} compressed {reading.encoding}'
        msg.data = encode_image(reading, image_format)
    elif isinstance(reading, ScanReading):
        from sensor_msgs.msg import LaserScan
        msg = LaserScan()
        msg.angle_min = float(reading.angle_min)
        msg.angle_increment = float(reading.angle_increment)
        msg.angle_max = float(reading.angle_min + reading.angle_increment *
                              (len(reading.ranges) - 1))
        msg.range_min, msg.range_max = float(reading.range_min), float(reading.range_max)
        msg.ranges = np.asarray(reading.ranges, dtype=np.float32).tolist()
    elif isinstance(reading, OdomReading):
        from nav_msgs.msg import Odometry
        msg = Odometry()
        msg.child_frame_id = child_frame_id
        msg.pose.pose.position.x, msg.pose.pose.position.y = reading.x, reading.y
        msg.pose.pose.orientation.z = math.sin(reading.yaw / 2.0)
        msg.pose.pose.orientation.w = math.cos(reading.yaw / 2.0)
        msg.twist.twist.linear.x, msg.twist.twist.linear.y = reading.vx, reading.vy
        msg.twist.twist.angular.z = reading.wz
    elif isinstance(reading, JointReading):
        from sensor_msgs.msg import JointState
        msg = JointState()
        msg.name = list(reading.names)
        msg.position = [float(v) for v in reading.position]
        msg.velocity = [float(v) for v in reading.velocity]
        msg.effort = [float(v) for v in reading.effort]
    elif isinstance(reading, ImageReading):
        from sensor_msgs.msg import Image
        if reading.encoding not in IMAGE_ENCODINGS:
            raise ValueError(f'image encoding {reading.encoding!r} is not one of '
                             f'{", ".join(IMAGE_ENCODINGS)}')
        channels, dtype = IMAGE_ENCODINGS[reading.encoding]
        pixels = np.ascontiguousarray(reading.data, dtype=dtype)
        if pixels.size != reading.height * reading.width * channels:
            raise ValueError(f'image data has {pixels.size} values; a {reading.height}x'
                             f'{reading.width} {reading.encoding} image has '
                             f'{reading.height * reading.width * channels}')
        msg = Image()
        msg.height, msg.width, msg.encoding = reading.height, reading.width, reading.encoding
        msg.is_bigendian = int(sys.byteorder == 'big' and pixels.itemsize > 1)
        msg.step = reading.width * channels * pixels.itemsize
        msg.data = pixels.tobytes()
    else:
        raise TypeError(f'no message for a {type(reading).__name__}')
    msg.header.stamp = ns_to_stamp(reading.stamp_ns)
    msg.header.frame_id = frame_id
    return msg


def action_message(spec: ActionSpec, action: np.ndarray, stamp_ns: int = 0,
                   frame_id: str = 'base_link'):
    """Build the command message for an action vector (already checked and clamped).

    ``stamp_ns``: the stamp of the observation the command answers; a TwistStamped carries it
    in its header, a Float64MultiArray in its layout (``STAMP_LABEL``; 0 leaves it unstamped).
    """
    if spec.type == 'twist':
        msg = TwistStamped() if spec.stamped else Twist()
        twist = msg.twist if spec.stamped else msg
        for name, value in zip(spec.fields, action):
            group, axis = name.split('.')
            setattr(getattr(twist, group), axis, float(value))
        if spec.stamped:
            msg.header.stamp = ns_to_stamp(stamp_ns)
            msg.header.frame_id = frame_id
        return msg
    msg = Float64MultiArray()
    msg.data = [float(v) for v in action]
    if stamp_ns:
        # ros2_control's forward command controller reads only ``data``; the one layout
        # dimension still describes it (a vector of its size) and names the observation.
        size = len(msg.data)
        msg.layout.dim = [MultiArrayDimension(label=f'{STAMP_LABEL}{int(stamp_ns)}',
                                              size=size, stride=size)]
    return msg


STAMP_LABEL = 'stamp_ns='
"""How a Float64MultiArray command names the observation it answers: its layout has one
dimension, of the data's size, labelled ``stamp_ns=<the observation's stamp in ns>`` (a
decimal integer from 1 to 2**63 - 1, no sign, no leading zero), e.g. ``stamp_ns=1500000000``."""
_STAMP_VALUE = re.compile(r'[1-9][0-9]{0,18}')
_INT64_MAX = 2 ** 63 - 1


def command_stamp_ns(spec: ActionSpec, msg):
    """The stamp of the observation a command answers, in ns, or None for an unstamped one.

    TwistStamped: its header stamp (0 when unset). Float64MultiArray: the ``stamp_ns=`` label
    of its layout (see ``STAMP_LABEL``); a command with no such label (a real driver stack, a
    bag recorded before commands were stamped) is unstamped. A layout that claims a stamp but
    cannot be read is a ``ValueError`` naming the topic, the label and the expected form:
    such a command is refused, never paired with a guessed observation.
    """
    if spec.type == 'twist':
        header = getattr(msg, 'header', None)
        return stamp_to_ns(header.stamp) if header is not None else None
    dims = list(msg.layout.dim)
    claims = [d for d in dims if 'stamp_ns' in str(d.label).lower()]
    if not claims:
        return None
    expected = (f'one layout dimension labelled {STAMP_LABEL}<ns> (a decimal integer from 1 '
                f'to {_INT64_MAX}) whose size is the number of values')
    if len(dims) != 1:
        raise ValueError(f'command on {spec.topic!r} has layout labels '
                         f'{[str(d.label) for d in dims]}; a stamped command has {expected}')
    label, size = str(dims[0].label), int(dims[0].size)
    value = label[len(STAMP_LABEL):] if label.startswith(STAMP_LABEL) else None
    if value is None or not _STAMP_VALUE.fullmatch(value) or int(value) > _INT64_MAX:
        raise ValueError(f'command on {spec.topic!r} has the layout label {label!r}, which is '
                         f'not a stamp; expected {expected}')
    if size != len(msg.data):
        raise ValueError(f'command on {spec.topic!r} is stamped {label!r} over {size} values '
                         f'but carries {len(msg.data)}; expected {expected}')
    return int(value)


def action_from_message(spec: ActionSpec, msg) -> np.ndarray:
    """Read the action vector back out of a command message (robot and bag side).

    A Float64MultiArray whose layout claims a stamp it does not carry readably is refused
    (``ValueError``, see ``command_stamp_ns``), as one of the wrong size is.
    """
    if spec.type == 'twist':
        twist = msg.twist if spec.stamped else msg
        return np.array([getattr(getattr(twist, name.split('.')[0]), name.split('.')[1])
                         for name in spec.fields], dtype=np.float64)
    data = np.asarray(msg.data, dtype=np.float64)
    if data.size != spec.size:
        raise ValueError(f'command on {spec.topic!r} has {data.size} values; the task expects '
                         f'{spec.size} ({", ".join(spec.fields)})')
    command_stamp_ns(spec, msg)
    return data


def action_message_class(spec: ActionSpec):
    return message_class(spec.message_type)
