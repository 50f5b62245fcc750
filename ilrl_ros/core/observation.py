"""Turn the newest sensor readings into the task's observation vector, or say why not.

``extract_observation`` is the pure function the simulators and the dataset converter use;
``ObservationAssembler`` adds what a live loop needs: the newest reading per source, stamp
synchronisation, and staleness, so that stale or malformed input is caught here and never
reaches a policy as numbers. ``ActionHistory`` appends the last commands sent when the spec
asks for them (``observation.action_history``).
"""

from dataclasses import dataclass
from functools import lru_cache
import math

import numpy as np

from ilrl_ros.core.readings import (IMAGE_ENCODINGS, ImageReading, JointReading, OdomReading,
                                    READING_TYPES, ScanReading)
from ilrl_ros.core.spec import action_history_labels, ObservationField, TaskSpec


class ObservationError(ValueError):
    """An input cannot be turned into an observation; the message names it and why."""


class StaleObservation(ObservationError):
    """An input is missing or older than the spec allows."""


class FutureStamp(ObservationError):
    """A reading is stamped further ahead of the node's clock than the tolerance allows."""


# The largest magnitude a reading's value may have before it is taken for garbage rather
# than a measurement: 1000 km of odometry, 1e6 rad/s, a joint wound 160 000 turns. Finite
# values beyond it (an overflowed counter, an uninitialised field) would otherwise pass as
# numbers and saturate the policy's input normalisation.
MAX_ABS_VALUE = 1e6


def _scan_bins(field: ObservationField, scan: ScanReading) -> np.ndarray:
    ranges = np.asarray(scan.ranges, dtype=np.float64)
    if ranges.ndim != 1 or ranges.size == 0:
        raise ObservationError(f'source {field.source!r}: the scan has no ranges')
    if not (math.isfinite(scan.angle_min) and math.isfinite(scan.angle_increment)) \
            or scan.angle_increment == 0.0:
        raise ObservationError(
            f'source {field.source!r}: angle_min/angle_increment must be finite and the '
            f'increment non-zero, got {scan.angle_min}, {scan.angle_increment}')
    sweep = abs(scan.angle_increment) * ranges.size
    if abs(scan.angle_min) > 4.0 * math.pi or sweep > 4.0 * math.pi:
        raise ObservationError(
            f'source {field.source!r}: the scan starts at {scan.angle_min} rad and sweeps '
            f'{sweep} rad over {ranges.size} rays; expected angles within +/-4 pi rad')
    if not math.isfinite(scan.range_min) or scan.range_min < 0.0:
        raise ObservationError(f'source {field.source!r}: range_min is {scan.range_min}; '
                               f'expected a finite distance >= 0 m')
    if np.isnan(ranges).any():
        bad = int(np.isnan(ranges).sum())
        raise ObservationError(f'source {field.source!r}: {bad} of {ranges.size} ranges are '
                               f'NaN (an erroneous measurement; expected a range or +/-inf)')
    # REP 117: +inf means no return within range, -inf an object closer than range_min.
    # Finite readings below range_min are invalid returns, counted as nothing seen.
    values = np.where(np.isneginf(ranges), 0.0, ranges)
    values = np.where(np.isfinite(values) & (values < scan.range_min) & (values > 0.0),
                      np.inf, values)
    values = np.minimum(values, field.max_range)
    width = 2.0 * math.pi / field.bins
    angles = np.mod(scan.angles() + math.pi, 2.0 * math.pi)
    index = np.minimum((angles / width).astype(np.int64), field.bins - 1)
    out = np.full(field.bins, np.inf)
    np.minimum.at(out, index, values)
    empty = np.flatnonzero(np.isinf(out))
    if empty.size:
        raise ObservationError(
            f'source {field.source!r}: scan sectors {empty.tolist()} of {field.bins} contain '
            f'no ray; the spec expects a 360-degree scan '
            f'(got {ranges.size} rays from {scan.angle_min:.3f} rad)')
    return out


def _odom_values(field: ObservationField, odom: OdomReading) -> np.ndarray:
    named = {'x': odom.x, 'y': odom.y, 'yaw': odom.yaw, 'cos_yaw': math.cos(odom.yaw),
             'sin_yaw': math.sin(odom.yaw), 'vx': odom.vx, 'vy': odom.vy, 'wz': odom.wz}
    return np.array([named[c] for c in field.components], dtype=np.float64)


def _joint_values(field: ObservationField, joints: JointReading) -> np.ndarray:
    names = list(joints.names)
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ObservationError(f'source {field.source!r}: joints {twice} are named more than '
                               f'once in one message; expected each joint once')
    out = []
    for joint in field.joints:
        if joint not in names:
            raise ObservationError(f'source {field.source!r}: joint {joint!r} is not in the '
                                   f'message (it names {names})')
        i = names.index(joint)
        for component in field.components:
            array = {'position': joints.position, 'cos': joints.position,
                     'sin': joints.position, 'velocity': joints.velocity,
                     'effort': joints.effort}[component]
            kind = 'position' if component in ('cos', 'sin') else component
            if len(array) != len(names):
                raise ObservationError(
                    f'source {field.source!r}: {len(names)} joint names but {len(array)} '
                    f'{kind} values; expected one per name')
            value = float(array[i])
            if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
                raise ObservationError(f'source {field.source!r}: joint {joint!r} {kind} is '
                                       f'{value}; expected a finite number within '
                                       f'+/-{MAX_ABS_VALUE:g}')
            if component == 'cos':
                value = math.cos(value)
            elif component == 'sin':
                value = math.sin(value)
            out.append(value)
    return np.array(out, dtype=np.float64)


# ITU-R BT.601 luma weights (R, G, B), as most camera drivers and OpenCV convert to grey.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def image_pixels(image: ImageReading, where: str = 'image') -> np.ndarray:
    """Return the image's pixels shaped (height, width, channels), checked against its encoding.

    ``where`` names the input in error messages (e.g. ``source 'camera'``).
    """
    if image.encoding not in IMAGE_ENCODINGS:
        raise ObservationError(f'{where}: image encoding {image.encoding!r} is not supported; '
                               f'expected one of {", ".join(IMAGE_ENCODINGS)}')
    channels, dtype = IMAGE_ENCODINGS[image.encoding]
    height, width = int(image.height), int(image.width)
    if height <= 0 or width <= 0:
        raise ObservationError(f'{where}: the image is {height}x{width} pixels; expected a '
                               f'height and width of at least 1')
    data = np.asarray(image.data)
    if data.dtype != dtype:
        raise ObservationError(f'{where}: {image.encoding} pixels must be '
                               f'{np.dtype(dtype).name}, got {data.dtype.name}')
    needed = height * width * channels
    if data.size != needed:
        raise ObservationError(f'{where}: the image has {data.size} values; a {height}x{width} '
                               f'{image.encoding} image has {needed} '
                               f'({channels} per pixel)')
    allowed = [(height, width, channels)] + ([(height, width)] if channels == 1 else [])
    if data.shape not in allowed:
        raise ObservationError(f'{where}: the image array is shaped {data.shape}; expected '
                               f'({height}, {width}, {channels})'
                               + (f' or ({height}, {width})' if channels == 1 else ''))
    return data.reshape(height, width, channels)


def image_to_gray(image: ImageReading, where: str = 'image') -> np.ndarray:
    """Grey levels of an image as floats in [0, 255], shaped (height, width).

    Colour is reduced with the BT.601 luma weights (alpha ignored); mono16 is divided by 257
    so that every encoding spans the same 0-255 range.
    """
    pixels = image_pixels(image, where)
    encoding = image.encoding
    if encoding == 'mono8':
        return pixels[:, :, 0].astype(np.float64)
    if encoding == 'mono16':
        return pixels[:, :, 0].astype(np.float64) / 257.0
    order = (0, 1, 2) if encoding.startswith('rgb') else (2, 1, 0)
    weights = np.zeros(pixels.shape[2])
    weights[list(order)] = LUMA_WEIGHTS
    return pixels.astype(np.float64) @ weights


@lru_cache(maxsize=64)
def area_weights(size_in: int, size_out: int) -> np.ndarray:
    """The (size_out, size_in) matrix that area-averages a line of pixels to a new length.

    Output pixel i covers input coordinates [i * r, (i + 1) * r) with r = size_in / size_out;
    its value is the mean of the input over that interval, each input pixel weighted by how
    much of it the interval covers (a shrink averages whole and partial pixels; a stretch
    repeats them).
    """
    ratio = size_in / size_out
    low = np.arange(size_out)[:, None] * ratio
    pixel = np.arange(size_in)[None, :]
    overlap = np.clip(np.minimum(low + ratio, pixel + 1) - np.maximum(low, pixel), 0.0, None)
    weights = overlap / ratio
    weights.setflags(write=False)
    return weights


def resize_area(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a (H, W) image to (height, width) by area averaging.

    When H and W are multiples of the new size this is the plain block mean; otherwise each
    output pixel averages the input area it covers (``area_weights`` along each axis).
    """
    in_h, in_w = gray.shape
    if (in_h, in_w) == (height, width):
        return np.asarray(gray, dtype=np.float64)
    if in_h % height == 0 and in_w % width == 0:
        return gray.reshape(height, in_h // height, width, in_w // width).mean(axis=(1, 3))
    return area_weights(in_h, height) @ gray @ area_weights(in_w, width).T


def _image_values(field: ObservationField, image: ImageReading) -> np.ndarray:
    gray = image_to_gray(image, f'source {field.source!r}')
    return resize_area(gray, field.height, field.width).reshape(-1)


def extract_field(field: ObservationField, reading) -> np.ndarray:
    """Return one field's scaled values from its source's reading."""
    expected = READING_TYPES[field.kind][0]
    if not isinstance(reading, expected):
        raise ObservationError(f'source {field.source!r}: expected a {expected.__name__}, '
                               f'got {type(reading).__name__}')
    try:
        if field.kind == 'laser_scan':
            raw = _scan_bins(field, reading)
        elif field.kind == 'odometry':
            raw = _odom_values(field, reading)
        elif field.kind == 'image':
            raw = _image_values(field, reading)
        else:
            raw = _joint_values(field, reading)
    except ObservationError:
        raise
    except (ArithmeticError, ValueError, TypeError, IndexError, AttributeError) as error:
        # Whatever a malformed reading trips over deeper down is still a refused input.
        raise ObservationError(f'source {field.source!r}: the reading cannot be read as '
                               f'{", ".join(field.labels())} ({type(error).__name__}: '
                               f'{error})') from None
    if not np.all(np.isfinite(raw)):
        raise ObservationError(f'source {field.source!r}: non-finite values {raw.tolist()} '
                               f'in {", ".join(field.labels())}')
    if field.kind != 'image' and np.any(np.abs(raw) > MAX_ABS_VALUE):
        worst = float(raw[np.argmax(np.abs(raw))])
        raise ObservationError(f'source {field.source!r}: value {worst:g} in '
                               f'{", ".join(field.labels())} is beyond +/-{MAX_ABS_VALUE:g}; '
                               f'expected a physical measurement')
    with np.errstate(over='raise', invalid='raise'):
        try:
            values = (raw - field.offset) * field.scale
        except FloatingPointError as error:
            raise ObservationError(f'source {field.source!r}: scaling {raw.tolist()} '
                                   f'overflows ({error})') from None
    return values


def extract_observation(spec: TaskSpec, readings: dict) -> np.ndarray:
    """Build the observation fields from a reading per source (the spec's field order).

    The vector has ``spec.observation.fields_size`` values; a policy's input also has the
    action history, appended by ``ActionHistory.augment`` (when the spec has one).
    """
    parts = []
    for field in spec.observation.fields:
        if field.source not in readings:
            raise StaleObservation(f'source {field.source!r} '
                                   f'({spec.sources[field.source].topic}) has no reading')
        parts.append(extract_field(field, readings[field.source]))
    with np.errstate(over='ignore'):
        vector = np.concatenate(parts).astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise ObservationError(f'the observation of task {spec.name!r} does not fit in float32 '
                               f'(scaled values beyond 3.4e38)')
    return vector


class ActionHistory:
    """The last ``observation.action_history`` commands, appended to the observation.

    With a delay between command and effect the sensors alone do not tell a policy what is
    still to come; the commands already sent do. ``push`` each command as it is sent (it is
    clipped to the action bounds, as the robot takes it), ``augment`` each observation before
    the policy sees it, ``reset`` at an episode's start (the history is then all zeros). The
    appended values are the full action vectors, oldest first, in the spec's action order and
    robot units; ``labels()`` names them. With ``action_history: 0`` ``augment`` returns the
    vector unchanged.
    """

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.length = spec.observation.action_history
        self._commands = np.zeros((self.length, spec.action.size), dtype=np.float64)

    @property
    def size(self) -> int:
        """How many values ``augment`` appends."""
        return self._commands.size

    def labels(self) -> list:
        return action_history_labels(self.length, self.spec.action.fields)

    def reset(self) -> None:
        self._commands[:] = 0.0

    def push(self, action) -> None:
        """Remember a command sent (the oldest one is forgotten)."""
        command = self.spec.action.clip(self.spec.action.check(action, 'the command'))
        if self.length:
            self._commands[:-1] = self._commands[1:]
            self._commands[-1] = command

    def values(self) -> np.ndarray:
        """The remembered commands, oldest first, as one float32 vector."""
        return self._commands.reshape(-1).astype(np.float32)

    def augment(self, vector: np.ndarray) -> np.ndarray:
        """The observation fields followed by the remembered commands."""
        if not self.length:
            return vector
        vector = np.asarray(vector)
        expected = self.spec.observation.fields_size
        if vector.shape != (expected,):
            raise ValueError(f'the observation fields of task {self.spec.name!r} have '
                             f'{expected} values, got an array shaped {vector.shape}')
        return np.concatenate([vector.astype(np.float32, copy=False), self.values()])


@dataclass(frozen=True)
class Observation:
    """An assembled observation vector and the stamp of the newest input in it."""

    vector: np.ndarray
    stamp_ns: int


class ObservationAssembler:
    """Holds the newest reading of each source and assembles observations from them.

    ``poll()`` is for event-driven loops: it returns a new observation once every source has
    a reading whose stamp agrees with the newest within the spec's sync tolerance, and
    nothing until a newer set is complete. ``latest(now_ns)`` is for timer-driven loops: it
    returns the current observation, or raises ``StaleObservation`` when an input is missing
    or older than ``max_age_s``.

    Time is checked both ways when the caller passes its clock to ``update``: a reading
    stamped more than ``future_tolerance_s`` ahead of it is refused (``FutureStamp``) and
    never becomes the newest, and an input is stale once its newest reading is older than
    ``max_age_s`` by its stamp *or* by its arrival, so no stamp can keep it fresh.
    """

    def __init__(self, spec: TaskSpec, sources: tuple = (), sync_tolerance_s: float = None,
                 future_tolerance_s: float = None):
        self.spec = spec
        self.sources = tuple(sources) or spec.observation.sources
        self._readings: dict = {}
        self._arrivals: dict = {}
        self._last_emitted_ns = -1
        if sync_tolerance_s is None or sync_tolerance_s < 0.0:
            sync_tolerance_s = spec.observation.sync_tolerance_s
        self._tolerance_ns = int(sync_tolerance_s * 1e9)
        self._max_age_ns = int(spec.observation.max_age_s * 1e9)
        # Clocks of a driver and of this node agree to within a few milliseconds with NTP or
        # chrony, and a simulator's /clock may reach a node one step after its sensors: the
        # default tolerance is the staleness limit, the same window both ways.
        if future_tolerance_s is None or future_tolerance_s < 0.0:
            future_tolerance_s = spec.observation.max_age_s
        self.future_tolerance_s = float(future_tolerance_s)
        self._future_ns = int(self.future_tolerance_s * 1e9)

    def update(self, source: str, reading, now_ns: int = None) -> None:
        """Store a source's newest reading (an older stamp than the stored one is ignored).

        With ``now_ns`` (the node's clock when the reading arrived) a reading stamped more
        than the future tolerance ahead is refused with ``FutureStamp``. A clock that has not
        started (0, simulated time before the first /clock) checks nothing.
        """
        if source not in self.sources:
            raise KeyError(f'source {source!r} is not one this assembler reads')
        if now_ns is not None and now_ns > 0 and reading.stamp_ns - now_ns > self._future_ns:
            topic = self.spec.sources[source].topic
            raise FutureStamp(
                f'{topic!r} (source {source!r}) is stamped '
                f"{(reading.stamp_ns - now_ns) / 1e9:.3f} s ahead of this node's clock; the "
                f"limit is {self.future_tolerance_s:g} s (is the driver's clock, or "
                f"use_sim_time, set as this node's?)")
        old = self._readings.get(source)
        if reading.stamp_ns <= self._last_emitted_ns and old is None:
            return
        if old is None or reading.stamp_ns >= old.stamp_ns:
            self._readings[source] = reading
            self._arrivals[source] = reading.stamp_ns if now_ns is None else now_ns

    def clear(self, not_before_ns: int = -1) -> None:
        """Forget readings (with ``not_before_ns``: only older ones, and ignore such from now on).

        Used after a reset, so nothing from before it is reused.
        """
        self._readings = {k: r for k, r in self._readings.items()
                          if 0 <= not_before_ns <= r.stamp_ns}
        self._arrivals = {k: t for k, t in self._arrivals.items() if k in self._readings}
        self._last_emitted_ns = max(self._last_emitted_ns, not_before_ns - 1)

    def readings(self) -> dict:
        return dict(self._readings)

    def newest_stamp_ns(self) -> int:
        return max((r.stamp_ns for r in self._readings.values()), default=-1)

    def silent_for_ns(self, now_ns: int) -> int:
        """How long, by stamp or by arrival, since the freshest reading; -1 if none yet."""
        if not self._readings:
            return -1
        newest_arrival = max(self._arrivals.values())
        return max(now_ns - self.newest_stamp_ns(), now_ns - newest_arrival, 0)

    def complete_set(self) -> bool:
        """Whether every source has a reading and all stamps agree within tolerance."""
        if len(self._readings) < len(self.sources):
            return False
        stamps = [self._readings[s].stamp_ns for s in self.sources]
        return max(stamps) - min(stamps) <= self._tolerance_ns

    def poll_readings(self):
        """Return (readings, stamp_ns) once per new synchronised set, else None."""
        if not self.complete_set():
            return None
        stamp = self.newest_stamp_ns()
        if stamp <= self._last_emitted_ns:
            return None
        self._last_emitted_ns = stamp
        return dict(self._readings), stamp

    def poll(self):
        """Return a new synchronised Observation, or None when no new complete set exists."""
        found = self.poll_readings()
        if found is None:
            return None
        readings, stamp = found
        return Observation(vector=extract_observation(self.spec, readings), stamp_ns=stamp)

    def latest(self, now_ns: int) -> Observation:
        """Return the observation from the newest readings if every input is fresh enough."""
        for source in self.sources:
            topic = self.spec.sources[source].topic
            reading = self._readings.get(source)
            if reading is None:
                raise StaleObservation(f'no message yet on {topic!r} (source {source!r})')
            age = now_ns - reading.stamp_ns
            if age > self._max_age_ns:
                raise StaleObservation(
                    f'{topic!r} is {age / 1e9:.3f} s old; the task allows '
                    f'{self.spec.observation.max_age_s:.3f} s (observation.max_age_s)')
            waited = now_ns - self._arrivals[source]
            if waited > self._max_age_ns:
                raise StaleObservation(
                    f'nothing new on {topic!r} for {waited / 1e9:.3f} s; the task allows '
                    f'{self.spec.observation.max_age_s:.3f} s (observation.max_age_s)')
        return Observation(vector=extract_observation(self.spec, self._readings),
                           stamp_ns=self.newest_stamp_ns())
