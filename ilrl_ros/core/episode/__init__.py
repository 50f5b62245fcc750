"""What defines an episode of a task: its reward, its end, and what it came to.

``reward`` holds the reward terms, ``termination`` the termination conditions, both computed
from sensor readings through ``measures``. The simulators, the reward monitor node and the
episode manager node all use them, so a return or an outcome means the same thing in
simulation and over ROS 2. This module holds the outcomes and the episode's result.
"""

from dataclasses import dataclass

SUCCESS, FAILURE, TIMEOUT = 'success', 'failure', 'timeout'
# Ends decided outside the task's own conditions: the safe set was left, the e-stop was
# pressed, or someone (an operator, a learner, a policy swap) restarted the episode.
UNSAFE, ESTOP, ABORTED = 'unsafe', 'estop', 'aborted'
# Outcomes that end the task itself (terminated, no bootstrapping past them); the others cut
# it short (truncated): a timeout, an e-stop, an abort.
TERMINAL_OUTCOMES = (SUCCESS, FAILURE, UNSAFE)


def end_flags(outcome, timed_out: bool) -> tuple:
    """(terminated, truncated) of a step with ``outcome`` (None: the episode goes on).

    An outcome reached at the time limit (a timeout, or a success judged at the timeout)
    truncates: the task would have gone on. Success and failure conditions, and leaving the
    safe set, terminate.
    """
    if outcome is None:
        return False, False
    if timed_out or outcome not in TERMINAL_OUTCOMES:
        return False, True
    return True, False


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
