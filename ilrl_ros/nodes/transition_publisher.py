"""The ``transition_publisher`` node: the running loop's transitions, for a learner anywhere.

It listens to the loop (the spec's sensors, assembled as the policy assembles them; the
command topic; the reward monitor's ``reward/terms``; the episode manager's ``episode/step``)
and publishes each completed transition (s, a, r, s', terminated, truncated, stamps, and
whether a person drove the step) on ``transitions`` (layout in ilrl_ros/transitions.py),
reliable and deep. A learner on this machine or another subscribes to that one topic; a
recorder that records it keeps the run for offline training.
"""

from dataclasses import dataclass
import sys

from std_msgs.msg import Float64MultiArray

from ilrl_ros import qos
from ilrl_ros.nodes.common import declare_task, run, SafeNode, StatusPublisher
from ilrl_ros.nodes.params import declare_params, Param
from ilrl_ros.transitions import LoopListener, TOPIC, to_message

PARAMETERS = (
    Param('intervention_topic', 'policy/intervention', 'Where the actor names the '
          'observations a person answered (its teleop takeover): those steps are marked '
          'intervened (demonstrations). Empty: none.'),
    Param('status_period_s', 1.0, 'Period of ~/status.', low=0.01, high=3600.0),
)


@dataclass(frozen=True)
class TransitionPublisherParams:
    """The transition publisher's parameters (PARAMETERS, by name)."""

    intervention_topic: str
    status_period_s: float


class TransitionPublisher(SafeNode):
    """Publish the loop's transitions; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('transition_publisher', **kwargs)
        self.spec = declare_task(self)
        self.params = TransitionPublisherParams(**declare_params(self, PARAMETERS))
        self.listener = LoopListener(self, self.spec, listen_commands=True,
                                     intervention_topic=self.params.intervention_topic)
        self.publisher = self.create_publisher(Float64MultiArray, TOPIC, qos.STEPS)
        self.published = self.intervened = 0
        # Latched, and every status_period_s of the steady clock: a paused simulation does not
        # silence it.
        self.status = StatusPublisher(self, self._status_fields, self.params.status_period_s)
        # Pairing runs on a timer, apart from the subscriptions: a burst of messages is
        # paired in one pass.
        self.create_timer(0.005, self._on_pair)
        self.get_logger().info(f'transitions of task {self.spec.name!r} on '
                               f'{self.publisher.topic_name}')

    def _on_pair(self) -> None:
        with self.listener.lock:
            transitions = self.listener.builder.poll()
        for transition in transitions:
            self.publisher.publish(to_message(transition))
            self.published += 1
            self.intervened += transition.intervened

    def _status_fields(self) -> dict:
        builder = self.listener.builder
        return dict(published=self.published, intervened=self.intervened, lost=builder.lost,
                    input_errors=self.listener.errors, last_error=self.listener.last_error)


def main(args=None) -> int:
    return run(lambda: TransitionPublisher(), args, name='transition_publisher')


if __name__ == '__main__':
    sys.exit(main())
