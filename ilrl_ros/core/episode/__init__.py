"""What defines an episode of a task: its reward, its end, and what it came to.

``reward`` holds the reward terms, ``termination`` the termination conditions, both computed
from sensor readings through ``measures``. The simulators, the reward monitor node and the
episode manager node all use them, so a return or an outcome means the same thing in
simulation and over ROS 2. This module holds the outcomes and the episode's result.
"""

from dataclasses import dataclass

SUCCESS, FAILURE, TIMEOUT = 'success', 'failure', 'timeout'


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode came to, in the form the episode manager publishes."""

    episode: int
    outcome: str
    episode_return: float
    length: int
    duration_s: float
    policy: str = ''

    def as_dict(self) -> dict:
        return {'episode': self.episode, 'outcome': self.outcome,
                'success': self.outcome == SUCCESS, 'return': self.episode_return,
                'length': self.length, 'duration_s': self.duration_s, 'policy': self.policy}
