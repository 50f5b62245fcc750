"""The ``observation`` node: the assembled observation vector, published for inspection.

It builds s_t from the spec's source topics exactly as the policy node does and publishes
it on ``observation`` (std_msgs/Float32MultiArray, the layout's label naming the task).
Stale or malformed input is reported on ``~/status`` (latched, and once a second whatever
happens: a healthy graph's status says so too) and in the log, never published as numbers.
"""

import sys

from std_msgs.msg import Float32MultiArray, MultiArrayDimension

from ilrl_ros import qos
from ilrl_ros.core.observation import ObservationAssembler, ObservationError
from ilrl_ros.nodes.common import (declare_sync_tolerance, declare_task, run, SafeNode,
                                   SourceSubscriptions, StatusPublisher)


class ObservationPublisher(SafeNode):
    """Publish the observation vector; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('observation', **kwargs)
        self.spec = declare_task(self)
        self.assembler = ObservationAssembler(self.spec,
                                              sync_tolerance_s=declare_sync_tolerance(self))
        self.pub = self.create_publisher(Float32MultiArray, 'observation', qos.SENSOR)
        self.published = 0
        self.rejected = 0
        self.last_error = ''
        self.status = StatusPublisher(self, self._status_fields, 1.0)
        self.sources = SourceSubscriptions(self, self.spec, self.assembler.sources,
                                           self._on_reading, self._on_error)
        # The fields built from the sensors; a policy's action history is not shown here.
        self._layout = [MultiArrayDimension(label=self.spec.name,
                                            size=self.spec.observation.fields_size,
                                            stride=self.spec.observation.fields_size)]
        self.get_logger().info(f'observation for task {self.spec.name!r}: '
                               f'{self.spec.observation.fields_size} values')

    def _status_fields(self) -> dict:
        return dict(published=self.published, rejected=self.rejected,
                    last_error=self.last_error)

    def _on_error(self, source: str, text: str) -> None:
        self.rejected += 1
        self.last_error = text
        self.get_logger().error(text, throttle_duration_sec=1.0)
        self.status.publish_current()

    def on_fault(self, where: str, error: BaseException) -> None:
        super().on_fault(where, error)
        self._on_error('', self.last_fault)

    def _on_reading(self, source: str, reading) -> None:
        self.assembler.update(source, reading, self.get_clock().now().nanoseconds)
        try:
            observation = self.assembler.poll()
        except ObservationError as error:
            self._on_error(source, str(error))
            return
        if observation is None:
            return
        msg = Float32MultiArray(data=observation.vector.tolist())
        msg.layout.dim = self._layout
        self.pub.publish(msg)
        self.published += 1


def main(args=None) -> int:
    return run(lambda: ObservationPublisher(), args, name='observation')


if __name__ == '__main__':
    sys.exit(main())
