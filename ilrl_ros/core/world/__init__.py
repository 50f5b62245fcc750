"""The geometry and dynamics of the simulated worlds, below both the simulators and the rewards.

``track_geometry`` (the corridor, its walls and the differential-drive step) and
``pendulum_dynamics`` (Pendulum-v1 as pure functions) are used by the gymnasium environments
in ``core/envs``, by the experts, and by the reward terms and termination conditions, so
none of those has to import another to share them.
"""

from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.world.obstacles import ObstacleCourse, parse_obstacles
from ilrl_ros.core.world.track_geometry import make_track, Track


def make_world(spec: TaskSpec) -> Track | ObstacleCourse | None:
    """Return the known map of a task (the track its robot follows), or None if it has none.

    Privileged reward terms and termination conditions (track progress, a completed lap),
    the simulator and the pure-pursuit expert all build the track from the spec here.
    """
    if spec.sim == 'track_follow':
        track = make_track(spec.sim_params.get('track', 'default'),
                           width=float(spec.sim_params.get('width', 1.0)))
        if 'obstacles' in spec.sim_params:
            # Posts in the corridor (track_obstacle): the lidar, collisions and starts see them.
            robot_radius = float(spec.sim_params.get('robot_radius', 0.105))
            return ObstacleCourse(track, parse_obstacles(
                track, spec.sim_params['obstacles'], robot_radius))
        return track
    return None
