"""The ``expert`` node: the task's scripted / privileged controller on live topics.

For every new synchronised set of its inputs it publishes the action it would take on
``expert/action`` (the teacher's label, for recording and DAgger), and, while the ``drive``
parameter is true, also on the robot's command topic, so it can drive demonstrations.
"""

from rclpy.node import Node

from ilrl_ros import qos
from ilrl_ros.core.observation import ObservationAssembler
from ilrl_ros.core.tasks import make_expert
from ilrl_ros.messages import action_message, action_message_class
from ilrl_ros.nodes.common import (accept, declare, declare_sync_tolerance, declare_task, refuse,
                                   run, SourceSubscriptions)


class Expert(Node):
    """Publish the expert's action for the current state; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('expert', **kwargs)
        self.spec = declare_task(self)
        self.drive = declare(self, 'drive', False, "Also publish on the robot's command topic "
                             '(drive the robot). Can be changed at runtime.')
        self.frame_id = declare(self, 'frame_id', 'base_link', 'frame_id of stamped commands.',
                                read_only=True)
        self.controller = make_expert(self.spec)
        self.assembler = ObservationAssembler(self.spec, sources=self.controller.sources,
                                              sync_tolerance_s=declare_sync_tolerance(self))
        message = action_message_class(self.spec.action)
        self.label_pub = self.create_publisher(message, 'expert/action', qos.COMMAND)
        self.command_pub = self.create_publisher(message, self.spec.action.topic, qos.COMMAND)
        self.sources = SourceSubscriptions(self, self.spec, self.controller.sources,
                                           self._on_reading, self._on_error)
        self.labels = 0
        self._answer_repeat = False
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(f'expert for task {self.spec.name!r}, drive={self.drive}')

    def _on_set_parameters(self, parameters):
        for parameter in parameters:
            if parameter.name == 'drive':
                if not isinstance(parameter.value, bool):
                    return refuse('drive must be true or false')
                # A lock-step robot waits for a command: answer its repeated observation.
                self._answer_repeat = parameter.value and not self.drive
                self.drive = parameter.value
                self.get_logger().info(f'drive={self.drive}')
        return accept()

    def _on_error(self, source: str, text: str) -> None:
        self.get_logger().error(f'no expert action: {text}', throttle_duration_sec=1.0)

    def _on_reading(self, source: str, reading) -> None:
        self.assembler.update(source, reading)
        found = self.assembler.poll_readings()
        if found is None and self._answer_repeat and self.assembler.complete_set():
            found = self.assembler.readings(), self.assembler.newest_stamp_ns()
        if found is None:
            return
        self._answer_repeat = False
        readings, stamp = found
        try:
            action = self.spec.action.clip(self.controller.act(readings))
        except ValueError as error:
            self._on_error(source, str(error))
            return
        msg = action_message(self.spec.action, action, stamp, self.frame_id)
        self.label_pub.publish(msg)
        self.labels += 1
        if self.drive:
            self.command_pub.publish(msg)


def main(args=None):
    run(lambda: Expert(), args)


if __name__ == '__main__':
    main()
