"""The ``expert`` node: the task's scripted / privileged controller on live topics.

For every new synchronised set of its inputs it publishes the action it would take on
``expert/action`` (the teacher's label, for recording and DAgger), and, while the ``drive``
parameter is true, also on the robot's command topic, so it can drive demonstrations.

With ``noise_std`` above zero the command it drives with is the clean action plus Gaussian
noise, clipped to the task's bounds, while the label on ``expert/action`` stays the clean
action: DART (Laskey et al., "DART: Noise Injection for Robust Imitation Learning", CoRL
2017) shows the learner the states it will drift into, each labelled with the expert's
correction.

The ``expert`` parameter chooses the controller: ``scripted`` (the task's scripted,
privileged expert) or ``checkpoint:<folder>``, a trained policy as the teacher
(``ilrl_ros.core.experts.teacher``). A teacher acts on the observation of the task it was
trained on, assembled from this task's topics (a lidar teacher labelling for a camera
student: learning by cheating, Chen et al. 2020); one whose action space, rate or sources do
not fit this task is refused at start with the reason.
"""

import sys

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.parameter import Parameter

from ilrl_ros import qos
from ilrl_ros.core.experts.teacher import make_named_expert, SCRIPTED
from ilrl_ros.core.observation import ObservationAssembler
from ilrl_ros.core.rollouts import noise_factor
from ilrl_ros.messages import action_message, action_message_class
from ilrl_ros.nodes.common import (accept, declare_sync_tolerance, declare_task, refuse, run,
                                   SafeNode, SourceSubscriptions)
from ilrl_ros.nodes.params import declare_params, Param


def noise_std_factor(value, action_size: int):
    """``noise_std`` (one number, or one per action field) as a noise factor, or None.

    The values are checked by ``ilrl_ros.core.rollouts.noise_factor`` (finite,
    non-negative); anything but a number or a list of ``action_size`` numbers is refused
    with what was expected.
    """
    expected = f'noise_std must be one number or a list of {action_size} numbers (one per ' \
        f'action field)'
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise ValueError(f'{expected}, got {value!r}')
    if not isinstance(value, (int, float)):
        try:
            value = [float(v) for v in value]
        except (TypeError, ValueError):
            raise ValueError(f'{expected}, got {value!r}') from None
        if len(value) != action_size:
            raise ValueError(f'{expected}, got {len(value)}: {value}')
    return noise_factor(value, action_size)


PARAMETERS = (
    Param('expert', SCRIPTED, "What labels and drives: 'scripted' (the task's scripted "
          "expert) or 'checkpoint:<folder>' (a trained teacher acting on its own task's "
          'observation, built from these topics).'),
    Param('drive', False, "Also publish on the robot's command topic (drive the robot). Can be "
          'changed at runtime.', read_only=False),
    Param('frame_id', 'base_link', 'frame_id of stamped commands.'),
    Param('noise_seed', 0, 'Seed of the DART noise generator.', low=0, high=2**63 - 1),
    Param('command_topic', '', "Where it drives while drive is true (the command arbiter's "
          "expert input in the graph); empty: the task spec's command topic."),
)
# noise_std is declared on its own: one number or one per action field (dynamic type), checked
# by noise_std_factor.


class Expert(SafeNode):
    """Publish the expert's action for the current state; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('expert', **kwargs)
        self.spec = declare_task(self)
        values = declare_params(self, PARAMETERS)
        self.drive, self.frame_id = values['drive'], values['frame_id']
        seed = values['noise_seed']
        noise = self.declare_parameter('noise_std', 0.0, ParameterDescriptor(
            description='DART: standard deviation of Gaussian noise added to the command the '
            'expert drives with (one number, or one per action field); the label on '
            'expert/action stays clean. Can be changed at runtime.',
            dynamic_typing=True)).value
        try:
            self._noise = noise_std_factor(noise, self.spec.action.size)
        except ValueError as error:
            self.get_logger().fatal(str(error))
            raise
        self._rng = np.random.default_rng(seed)
        try:
            self.controller = make_named_expert(self.spec, values['expert'])
        except ValueError as error:
            self.get_logger().fatal(str(error))
            raise
        self.assembler = ObservationAssembler(self.spec, sources=self.controller.sources,
                                              sync_tolerance_s=declare_sync_tolerance(self))
        message = action_message_class(self.spec.action)
        self.label_pub = self.create_publisher(message, 'expert/action', qos.COMMAND)
        self.command_pub = self.create_publisher(
            message, values['command_topic'] or self.spec.action.topic, qos.COMMAND)
        self.sources = SourceSubscriptions(self, self.spec, self.controller.sources,
                                           self._on_reading, self._on_error)
        self.labels = 0
        self._answer_repeat = False
        # Whether the last command this node drove with was not zero: undone on stop/fault.
        self._moving = False
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(f'expert {values["expert"]!r} for task {self.spec.name!r}, '
                               f'drive={self.drive}, '
                               f'noise_std={self.noise_std.tolist()}')

    @property
    def noise_std(self) -> np.ndarray:
        """The standard deviation of the noise on each action field (zeros: none)."""
        if self._noise is None:
            return np.zeros(self.spec.action.size)
        return np.sqrt(np.diag(self._noise @ self._noise.T))

    def _on_set_parameters(self, parameters):
        # Check everything first, so that a refused change leaves every value as it was.
        changes = {}
        for parameter in parameters:
            if parameter.name == 'noise_std':
                if parameter.type_ not in (Parameter.Type.DOUBLE, Parameter.Type.INTEGER,
                                           Parameter.Type.DOUBLE_ARRAY,
                                           Parameter.Type.INTEGER_ARRAY):
                    return refuse(f'noise_std must be a number or a list of '
                                  f'{self.spec.action.size} numbers, got {parameter.value!r}')
                try:
                    changes['noise_std'] = noise_std_factor(parameter.value,
                                                            self.spec.action.size)
                except ValueError as error:
                    return refuse(str(error))
            elif parameter.name == 'drive':
                if not isinstance(parameter.value, bool):
                    return refuse('drive must be true or false')
                changes['drive'] = parameter.value
        if 'noise_std' in changes:
            self._noise = changes['noise_std']
            self.get_logger().info(f'noise_std={self.noise_std.tolist()}')
        if 'drive' in changes:
            # A lock-step robot waits for a command: answer its repeated observation.
            self._answer_repeat = changes['drive'] and not self.drive
            self.drive = changes['drive']
            self.get_logger().info(f'drive={self.drive}')
            if not self.drive:
                self.fail_safe()
        return accept()

    def fail_safe(self) -> None:
        """Command zero if the expert's last drive command was not zero."""
        if self._moving:
            zero = np.zeros(self.spec.action.size)
            self.command_pub.publish(action_message(self.spec.action, zero,
                                                    max(0, self.assembler.newest_stamp_ns()),
                                                    self.frame_id))
            self._moving = False

    def command_publishers(self) -> tuple:
        return (self.command_pub,)

    def _on_error(self, source: str, text: str) -> None:
        self.get_logger().error(f'no expert action: {text}', throttle_duration_sec=1.0)
        # Input it cannot read leaves the expert without an action: hold the robot still.
        self.fail_safe()

    def _on_reading(self, source: str, reading) -> None:
        self.assembler.update(source, reading, self.get_clock().now().nanoseconds)
        found = self.assembler.poll_readings()
        if found is None and self._answer_repeat and self.assembler.complete_set():
            found = self.assembler.readings(), self.assembler.newest_stamp_ns()
        if found is None:
            return
        self._answer_repeat = False
        readings, stamp = found
        try:
            action = self.spec.action.clip(self.controller.act(readings))
        except (ArithmeticError, ValueError, TypeError, IndexError) as error:
            self._on_error(source, f'{type(error).__name__}: {error}')
            return
        msg = action_message(self.spec.action, action, stamp, self.frame_id)
        self.label_pub.publish(msg)
        self.labels += 1
        if self.drive:
            factor = self._noise
            if factor is not None:
                # DART: drive with the noisy action; the label above stays clean.
                noisy = action + factor @ self._rng.standard_normal(len(action))
                action = self.spec.action.clip(noisy)
                msg = action_message(self.spec.action, action, stamp, self.frame_id)
            if self.stopping:
                return
            self.command_pub.publish(msg)
            self._moving = bool(np.any(action != 0.0))


def main(args=None) -> int:
    return run(lambda: Expert(), args, name='expert')


if __name__ == '__main__':
    sys.exit(main())
