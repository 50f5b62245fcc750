"""A small forward-looking camera for the track robot, rendered from the corridor's geometry.

The pixels-to-steering input of the ALVINN / DAVE-2 story, drawn the way Wolfenstein 3D drew
its mazes: one ray per image column (``Track.raycast``), the wall it hits drawn as a vertical
strip whose height falls with the distance along the optical axis, shaded towards a fog grey
with distance, over a plain sky and a floor that darkens towards the horizon. The left wall
(in the direction of travel) is bright and the right wall dark, so the picture tells which
side the robot is drifting to even when it faces one wall. Output: mono8, (height, width).
"""

from dataclasses import dataclass
from functools import lru_cache
import math

import numpy as np

from ilrl_ros.core.world.track_geometry import Track

# The scene, in metres: a camera on a TurtleBot3-sized robot, corridor walls half a metre high.
MOUNT_HEIGHT_M = 0.15
WALL_HEIGHT_M = 0.5
# Walls further than this are not drawn (the floor and sky meet at the horizon there).
MAX_RANGE_M = 5.0
# Grey levels. Walls fade from their own shade to FOG over about FADE_M metres.
SKY = 200.0
FLOOR_NEAR = 70.0
FOG = 128.0
LEFT_WALL = 240.0
RIGHT_WALL = 20.0
FADE_M = 2.0


@dataclass(frozen=True)
class CameraConfig:
    """The camera's image size, field of view and noise (task spec ``robot.params``)."""

    width: int = 64
    """Image width in pixels (``camera_width``)."""
    height: int = 48
    """Image height in pixels (``camera_height``)."""
    fov_deg: float = 90.0
    """Horizontal field of view in degrees (``camera_fov_deg``); pixels are square."""
    noise_std: float = 0.0
    """Standard deviation of Gaussian pixel noise in grey levels (``camera_noise_std``)."""

    def __post_init__(self):
        for name in ('width', 'height'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 4 <= value <= 1024:
                raise ValueError(f'robot.params.camera_{name}: expected a whole number of '
                                 f'pixels from 4 to 1024, got {value!r}')
        if not 10.0 <= self.fov_deg <= 170.0:
            raise ValueError(f'robot.params.camera_fov_deg: expected 10 to 170 degrees, got '
                             f'{self.fov_deg!r}')
        if not (math.isfinite(self.noise_std) and self.noise_std >= 0.0):
            raise ValueError(f'robot.params.camera_noise_std: expected a grey-level standard '
                             f'deviation >= 0, got {self.noise_std!r}')

    @classmethod
    def from_params(cls, params: dict) -> 'CameraConfig':
        """Read ``camera_*`` entries of a task's ``robot.params`` (defaults where absent)."""
        def number(key, default, kind):
            value = params.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f'robot.params.{key}: expected a number, got {value!r}')
            if kind is int and value != int(value):
                raise ValueError(f'robot.params.{key}: expected a whole number, got {value!r}')
            return kind(value)
        return cls(width=number('camera_width', cls.width, int),
                   height=number('camera_height', cls.height, int),
                   fov_deg=number('camera_fov_deg', cls.fov_deg, float),
                   noise_std=number('camera_noise_std', cls.noise_std, float))


@lru_cache(maxsize=16)
def _wall_side_grid(track: Track):
    """A grid over the track marking cells that hold the left wall (+1) or right wall (-1).

    ``raycast`` returns only a range; looking the hit point up here says which wall it was.
    Cells are at most a sixth of the width, and each wall vertex marks its 3x3 neighbourhood,
    so every point of a wall segment (vertices are ~1 cm apart) finds its label.
    """
    cell = min(0.05, track.width / 6.0)
    walls = np.vstack([track.left_wall, track.right_wall])
    origin = walls.min(axis=0) - 3.0 * cell
    shape = np.ceil((walls.max(axis=0) - origin) / cell).astype(int) + 3
    grid = np.zeros(shape, dtype=np.int8)
    for wall, label in ((track.left_wall, 1), (track.right_wall, -1)):
        index = np.floor((wall - origin) / cell).astype(int)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                grid[index[:, 0] + dx, index[:, 1] + dy] = label
    grid.setflags(write=False)
    return origin, cell, grid


class TrackCamera:
    """Renders what a forward-looking pinhole camera on the robot sees of the corridor."""

    def __init__(self, track: Track, config: CameraConfig = CameraConfig()):
        self.track = track
        self.config = config
        width, height = config.width, config.height
        # Focal length in pixels, and each column's ray angle (column 0 is on the left, so
        # its angle is positive: counter-clockwise from the heading).
        self.focal = 0.5 * width / math.tan(0.5 * math.radians(config.fov_deg))
        offsets = np.arange(width) + 0.5 - 0.5 * width
        self.angles = -np.arctan(offsets / self.focal)
        self._cos = np.cos(self.angles)
        self.horizon = 0.5 * height
        self._rows = np.arange(height, dtype=np.float64)[:, None]
        self._grid = _wall_side_grid(track)
        self.background = self._background()

    def _background(self) -> np.ndarray:
        """Sky above the horizon, a floor fading into fog towards it (blended where split)."""
        height, width = self.config.height, self.config.width
        rows = np.arange(height, dtype=np.float64)
        below = np.clip(rows + 1.0 - np.maximum(rows, self.horizon), 0.0, 1.0)
        centre = np.maximum(rows + 0.5, self.horizon + 0.5) - self.horizon
        floor_distance = self.focal * MOUNT_HEIGHT_M / centre
        floor = FOG + (FLOOR_NEAR - FOG) * np.exp(-floor_distance / FADE_M)
        column = SKY * (1.0 - below) + floor * below
        out = np.repeat(column[:, None], width, axis=1)
        out.setflags(write=False)
        return out

    def columns(self, x: float, y: float, yaw: float):
        """Per column: the depth (along the optical axis) of the wall hit, and its side.

        Depth is ``inf`` where no wall lies within ``MAX_RANGE_M``; side is +1 for the left
        wall, -1 for the right wall and 0 where nothing was hit.
        """
        ranges = self.track.raycast(x, y, yaw, self.angles, MAX_RANGE_M)
        hit = np.isfinite(ranges)
        side = np.zeros(ranges.size, dtype=np.int8)
        if hit.any():
            origin, cell, grid = self._grid
            world = yaw + self.angles[hit]
            points = np.column_stack([x + ranges[hit] * np.cos(world),
                                      y + ranges[hit] * np.sin(world)])
            index = np.floor((points - origin) / cell).astype(int)
            index = np.clip(index, 0, np.array(grid.shape) - 1)
            side[hit] = grid[index[:, 0], index[:, 1]]
        # Perpendicular depth, not the range, keeps straight walls straight (no fish-eye).
        return ranges * self._cos, side

    def draw(self, depth: np.ndarray, side: np.ndarray) -> np.ndarray:
        """Grey levels (float, (height, width)) of walls at ``depth`` over the background."""
        with np.errstate(divide='ignore'):
            inverse = np.where(np.isfinite(depth), 1.0 / np.maximum(depth, 1e-6), 0.0)
        top = self.horizon - self.focal * (WALL_HEIGHT_M - MOUNT_HEIGHT_M) * inverse
        bottom = self.horizon + self.focal * MOUNT_HEIGHT_M * inverse
        # The fraction of each pixel row the wall strip covers: smooth edges, so the image
        # changes continuously with the pose.
        rows = self._rows
        cover = np.clip(np.minimum(rows + 1.0, bottom) - np.maximum(rows, top), 0.0, 1.0)
        base = np.where(side > 0, LEFT_WALL, np.where(side < 0, RIGHT_WALL, FOG))
        shade = FOG + (base - FOG) * np.exp(-np.where(np.isfinite(depth), depth, 0.0) / FADE_M)
        return self.background * (1.0 - cover) + shade * cover

    def render(self, x: float, y: float, yaw: float, rng: np.random.Generator = None):
        """The mono8 image, shaped (height, width), seen from pose ``(x, y, yaw)``.

        ``rng`` draws the pixel noise when ``noise_std`` > 0 (required then).
        """
        image = self.draw(*self.columns(x, y, yaw))
        if self.config.noise_std > 0.0:
            if rng is None:
                raise ValueError('TrackCamera.render: camera_noise_std > 0 needs an rng')
            image = image + rng.normal(0.0, self.config.noise_std, image.shape)
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)
