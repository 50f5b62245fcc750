"""The ``policy`` node: runs a learned policy in the control loop and swaps it at runtime.

It holds a loaded checkpoint, turns the newest observation into a command at the control
rate (timer mode) or on every new synchronised observation (event mode), clamps it to the
task's bounds and publishes it. Stale or malformed input, an e-stop, or a non-finite network
output make it command zero instead. ``ros2 param set /policy checkpoint <path>`` loads and
verifies a new checkpoint on the parameter service's thread, off the control path, then
swaps one reference; a bad or mismatched checkpoint is refused with the reason and the old
policy keeps running.

As the actor of online learning it explores as ``exploration`` says (set at runtime:
``none``, ``sample`` from the policy's distribution, or ``noise``; see
core/networks/exploration.py), always within the clamps. With ``teleop_topic`` set, a person
commanding on that topic takes over: while their commands keep coming (``teleop_timeout_s``)
they are what the robot is sent, clamped like the policy's, and ``policy/intervention``
names each observation a person answered, so the learner keeps those steps as
demonstrations.

It is a managed (lifecycle) node: configure loads the spec, the parameters and the
checkpoint; only while active does it command (``ros2 lifecycle set /policy deactivate``
sends one zero and then nothing); swaps work while configured. ``~/status`` says ``inactive``,
``idle``, ``waiting``, ``running``, ``stale``, ``estop`` or ``yielding``.
"""

from collections import deque
from dataclasses import dataclass
import json
import sys
import threading
import time

import numpy as np
from std_msgs.msg import Bool, String
import torch

from ilrl_ros import qos
from ilrl_ros.core.checkpoint import CheckpointError, load_checkpoint
from ilrl_ros.core.networks.exploration import explore_action, EXPLORATION_MODES
from ilrl_ros.core.observation import (ActionHistory, ObservationAssembler, ObservationError,
                                       StaleObservation)
from ilrl_ros.messages import action_from_message, action_message, action_message_class
from ilrl_ros.nodes.common import (accept, declare_sync_tolerance, declare_task, refuse, run,
                                   SafeLifecycleNode, SafeNode, SourceSubscriptions,
                                   StatusPublisher, SYNC_TOLERANCE, TASK)
from ilrl_ros.nodes.params import declare_params, Param

MODES = ('timer', 'event')
# What ~/status counts (status_counts()).
COUNTS = ('ticks', 'commands', 'zero_commands', 'stale', 'errors', 'swaps', 'refused',
          'missed_ticks', 'teleop_commands')
# Control rates the node can keep: a tick period from 10 s down to 0.1 ms.
RATE_LIMITS_HZ = (0.1, 10000.0)


def _without_node_rename(argv: list) -> list:
    """The ROS arguments of ``argv`` minus ``-r __node:=``/``__name:=`` remaps."""
    out, inside, skip_next = [], False, False
    for i, arg in enumerate(argv):
        if skip_next:
            skip_next = False
            continue
        if arg == '--ros-args':
            inside = True
            out.append(arg)
            continue
        if arg == '--':
            inside = False
            continue
        if not inside:
            continue
        if arg in ('-r', '--remap') and i + 1 < len(argv):
            rule = argv[i + 1].split(':=')[0].split(':')[-1]
            if rule in ('__node', '__name'):
                skip_next = True
                continue
        out.append(arg)
    return out


PARAMETERS = (
    Param('mode', 'timer', 'timer: act at control_rate_hz on the newest observation; event: '
          'act on every new synchronised observation.', choices=MODES),
    Param('control_rate_hz', 0.0, "Control rate in timer mode (and the watchdog rate); 0 takes "
          "the task spec's rate.", low=RATE_LIMITS_HZ[0], high=RATE_LIMITS_HZ[1], also=(0.0,)),
    Param('max_observation_age_s', 0.0, 'An input older than this is stale and the robot is '
          "sent zero; 0 takes the spec's observation.max_age_s.", low=0.001, high=3600.0,
          also=(0.0,)),
    Param('frame_id', 'base_link', 'frame_id of stamped commands.'),
    Param('status_period_s', 1.0, 'Period of ~/status.', low=0.01, high=3600.0),
    Param('checkpoint', '', 'Checkpoint folder to run. Set it at runtime to swap policies; a '
          'bad or mismatched checkpoint is refused and the running one kept. Empty: command '
          'nothing.', read_only=False),
    Param('exploration', 'none', 'How the policy explores while it learns online: none (its '
          'deterministic action), sample (from its own distribution) or noise (Gaussian noise '
          'of exploration_noise times half the action range; epsilon-greedy for a Q-network). '
          'Settable at runtime; never past the clamps.', read_only=False,
          choices=EXPLORATION_MODES),
    Param('exploration_noise', 0.1, 'Noise scale of exploration: noise (fraction of half the '
          'action range, or epsilon for a Q-network).', read_only=False, low=0.0, high=1.0),
    Param('exploration_seed', 0, 'Seed of the exploration noise.', low=0, high=2**31 - 1),
    Param('teleop_topic', '', "A person's command topic (the task's command type): while "
          'commands arrive on it they drive the robot instead of the policy. Empty: none.'),
    Param('teleop_timeout_s', 0.5, 'A teleop command older than this no longer drives.',
          low=0.01, high=60.0),
    Param('command_topic', '', "Where the commands go (the command arbiter's policy input in "
          "the graph); empty: the task spec's command topic."),
)


@dataclass(frozen=True)
class PolicyParams:
    """The policy node's start-up parameters, with the task spec's values filled in."""

    mode: str
    rate_hz: float
    max_age_s: float
    frame_id: str
    status_period_s: float


class Policy(SafeLifecycleNode):
    """Run a checkpoint in the loop; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('policy', **kwargs)
        # Declared now, so that `ros2 param` shows them before configure; configure reads them.
        values = declare_params(self, (TASK, SYNC_TOLERANCE, *PARAMETERS))
        self._policy = None
        self._estop = False
        self._yielding = False
        self._stale_now = False
        self._last_obs_stamp_ns = None
        self._exploration = values['exploration']
        self._last_error = ''
        self._counts = dict.fromkeys(COUNTS, 0)
        # Commands go out on the control node's thread, transitions (deactivate: the last
        # zero) on this node's: checking ``active`` and publishing are one step.
        self._send_lock = threading.Lock()
        # The control loop lives on a node of its own, spun by its own executor thread, so
        # that loading a checkpoint in this node's parameter callback never delays a tick.
        # It takes the process's ROS arguments (topic remaps, parameter files) except a node
        # rename, which `ros2 launch ... name:=` passes to every node of the process; and
        # this node's own (in-process graphs: a namespaced robot's /clock remap).
        self.control = SafeNode(f'{self.get_name()}_control', on_fault=self.on_fault,
                                namespace=self.get_namespace(), context=self.context,
                                start_parameter_services=False, use_global_arguments=False,
                                cli_args=_without_node_rename(sys.argv)
                                + _without_node_rename(kwargs.get('cli_args') or []),
                                parameter_overrides=[self.get_parameter('use_sim_time'),
                                                     *qos.inherited_overrides(self)])
        self.executor_nodes = (self.control, self)
        self.status = StatusPublisher(self, self._status_fields, values['status_period_s'])
        self.start_lifecycle()

    # Lifecycle -----------------------------------------------------------------------------

    def configure(self) -> None:
        """Load the spec, the parameters and the start-up checkpoint; create the loop."""
        self.spec = declare_task(self)
        values = declare_params(self, PARAMETERS)
        self.params = PolicyParams(
            mode=values['mode'], rate_hz=values['control_rate_hz'] or self.spec.control_rate_hz,
            max_age_s=values['max_observation_age_s'] or self.spec.observation.max_age_s,
            frame_id=values['frame_id'], status_period_s=values['status_period_s'])
        # One thread for inference keeps latency flat and leaves cores to the robot.
        torch.set_num_threads(1)
        self._policy = None
        self._estop = False
        self._exploration = values['exploration']
        self._exploration_noise = values['exploration_noise']
        self._rng = np.random.default_rng(values['exploration_seed'])
        self._teleop = None
        self._teleop_ns = None
        self._teleop_timeout_ns = int(values['teleop_timeout_s'] * 1e9)
        self._answer_repeat = False
        self._last_obs_stamp_ns = None
        self._counts = dict.fromkeys(COUNTS, 0)
        self._last_error = ''
        self._last_tick_ns = None
        self._stale_now = False
        # Whether the last command this node sent was not zero: the one it must undo on stop.
        self._moving = False
        # What the spec asks of each command besides the bounds: at most max_delta from the
        # previous one, and (action_history) the last commands appended to the observation.
        self._previous_command = None
        self.history = ActionHistory(self.spec)
        self._sent = deque(maxlen=64)   # (observation stamp, command) of recent commands
        # While the episode manager's reset controller drives, this node stays silent.
        self._yielding = False
        self._zero = np.zeros(self.spec.action.size)

        self.assembler = ObservationAssembler(self.spec,
                                              sync_tolerance_s=declare_sync_tolerance(self))
        self._max_age_ns = int(self.params.max_age_s * 1e9)
        self._period_ns = int(1e9 / self.params.rate_hz)
        self.command_pub = self.control.create_publisher(
            action_message_class(self.spec.action),
            values['command_topic'] or self.spec.action.topic, qos.COMMAND)
        self.sources = SourceSubscriptions(self.control, self.spec, self.assembler.sources,
                                           self._on_reading, self._on_input_error)
        self.control.create_subscription(Bool, 'e_stop', self._on_estop, qos.COMMAND)
        self.control.create_subscription(String, 'episode/event', self._on_episode_event,
                                         qos.EVENTS)
        if values['teleop_topic']:
            self.control.create_subscription(action_message_class(self.spec.action),
                                             values['teleop_topic'], self._on_teleop,
                                             qos.COMMAND)
        self.intervention_pub = self.control.create_publisher(
            String, f'{self.get_name()}/intervention', qos.STEPS)
        self.control.create_timer(1.0 / self.params.rate_hz, self._on_tick)

        # A checkpoint is loaded and verified when it is set (on-set: a refusal changes
        # nothing) and swapped in once the parameter holds it (post-set).
        self._staged = None
        checkpoint = values['checkpoint']
        if checkpoint:
            try:
                self._swap_in(load_checkpoint(checkpoint, expected_spec=self.spec))
            except Exception as error:  # noqa: BLE001 - any failure: start idle, say why
                self._counts['refused'] += 1
                self._note_error(f'start-up checkpoint refused, starting idle: '
                                 f'{_reason(error)}')
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)
        self.get_logger().info(
            f'policy for task {self.spec.name!r}: {self.params.mode} mode at '
            f'{self.params.rate_hz:g} Hz, commanding {self.spec.action.message_type} on '
            f'{self.command_pub.topic_name}, checkpoint {checkpoint or "(none)"}')
        self._publish_status()

    def activate(self) -> None:
        """Command from the next observation on."""
        # The gap while inactive is no missed tick; a lock-step robot waits for an answer to
        # the observation it last published.
        self._last_tick_ns = None
        self._answer_repeat = True
        self._publish_status()

    def deactivate(self) -> None:
        """Command zero once and nothing after it until activated again."""
        self._send(self._zero, self._last_obs_stamp_ns, zero=True, force=True)
        self._publish_status()

    def cleanup(self) -> None:
        """Unload the checkpoint (configure loads it again)."""
        self._policy = None
        self._staged = None
        self._last_obs_stamp_ns = None
        self._publish_status()

    # Checkpoints ---------------------------------------------------------------------------

    def _swap_in(self, loaded) -> None:
        # The control callbacks read self._policy once per tick: assigning it is the swap.
        self._policy = loaded
        loaded.reset()  # a recurrent policy starts with no memory of the probes or of the past
        # A lock-step robot waits for a command before it publishes again: answer the
        # observation it is waiting on as soon as it is repeated.
        self._answer_repeat = True
        self._counts['swaps'] += 1
        self.get_logger().info(f'now running checkpoint {loaded.path} '
                               f'({loaded.manifest["algorithm"]})')

    def _on_set_parameters(self, parameters):
        """Validate: load and verify a new checkpoint, off the control path; swap nothing."""
        for parameter in parameters:
            if parameter.name != 'checkpoint' or not parameter.value:
                continue
            try:
                loaded = load_checkpoint(parameter.value, expected_spec=self.spec)
            except Exception as error:  # noqa: BLE001 - any failure is a refusal
                self._counts['refused'] += 1
                self._note_error(f'refused checkpoint: {_reason(error)}')
                self._publish_status()
                return refuse(_reason(error))
            self._staged = (parameter.value, loaded)
        return accept()

    def _after_set_parameters(self, parameters) -> None:
        """Apply: swap in the checkpoint verified in on-set, or clear it; exploration."""
        for parameter in parameters:
            if parameter.name == 'exploration':
                self._exploration = parameter.value
            elif parameter.name == 'exploration_noise':
                self._exploration_noise = parameter.value
            if parameter.name != 'checkpoint':
                continue
            staged, self._staged = self._staged, None
            if not parameter.value:
                self._policy = None
                self._send(self._zero, self._last_obs_stamp_ns, zero=True)
                self.get_logger().info('checkpoint cleared: commanding nothing')
            elif staged is not None and staged[0] == parameter.value:
                self._swap_in(staged[1])
            self._publish_status()

    # Inputs --------------------------------------------------------------------------------

    def _note_error(self, text: str) -> None:
        self._last_error = text
        self._counts['errors'] += 1
        self.get_logger().error(text, throttle_duration_sec=1.0)

    def on_fault(self, where: str, error: BaseException) -> None:
        """The barrier of this node and its control node: report, count, command zero."""
        self._note_error(f'{where} raised {type(error).__name__}: {error}; commanding zero')
        self.fail_safe()

    def fail_safe(self) -> None:
        """Command zero if the last command was not zero (a policy that never drove sends none).

        On stop it does so in any state the node is configured in, active or not.
        """
        if not self.configured:
            return  # no spec, no command publisher: this node never commanded anything
        if self._moving or (self.stopping and self._policy is not None):
            self._send(self._zero, self._last_obs_stamp_ns, zero=True, force=self.stopping)

    def command_publishers(self) -> tuple:
        return (self.command_pub,) if self.configured else ()

    def _on_input_error(self, source: str, text: str) -> None:
        # A malformed message invalidates what the robot was doing: hold it still.
        self._note_error(text)
        if self._policy is not None:
            self._send(self._zero, self._last_obs_stamp_ns, zero=True)

    def _on_estop(self, msg: Bool) -> None:
        if msg.data and not self._estop:
            self.get_logger().warn('e-stop engaged: commanding zero')
        elif not msg.data and self._estop:
            self.get_logger().info('e-stop released')
        self._estop = bool(msg.data)
        if self._estop:
            self._send(self._zero, self._last_obs_stamp_ns, zero=True)

    def _on_teleop(self, msg) -> None:
        try:
            command = self.spec.action.clip(action_from_message(self.spec.action, msg))
        except ValueError as error:
            self._note_error(f'teleop command refused: {error}')
            return
        self._teleop = command
        self._teleop_ns = self.control.get_clock().now().nanoseconds

    def _teleop_command(self):
        """The person's command while they drive (fresh enough), else None."""
        if self._teleop_ns is None:
            return None
        if self.control.get_clock().now().nanoseconds - self._teleop_ns \
                > self._teleop_timeout_ns:
            return None
        return self._teleop

    def _on_episode_event(self, msg: String) -> None:
        try:
            event = json.loads(msg.data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self._note_error(f'episode/event is not a JSON object: {msg.data[:200]!r}')
            return
        if event.get('event') == 'reset' and event.get('by'):
            self._yielding = True
            self.get_logger().info(f'the reset controller ({event["by"]}) drives; waiting')
        elif event.get('event') == 'start':
            was_yielding, self._yielding = self._yielding, False
            start_ns = int(event.get('stamp_ns', 0))
            self._begin_episode(start_ns)
            if was_yielding:
                self._answer_first_observation(start_ns)

    def _answer_first_observation(self, start_ns: int) -> None:
        """Answer the episode's first observation if it came while a reset controller drove.

        It reached this node before the start event, while it still yielded; a lock-step robot
        waits for its answer and would otherwise stall.
        """
        if self.params.mode != 'event' or not self.active or not self.assembler.complete_set():
            return
        try:
            observation = self.assembler.latest(self.control.get_clock().now().nanoseconds)
        except ObservationError:
            return  # stale or incomplete: the robot's next message is answered as usual
        if observation.stamp_ns < start_ns or any(stamp == observation.stamp_ns
                                                  for stamp, _ in self._sent):
            return
        self._answer_repeat = False
        self._act(observation)

    def _begin_episode(self, start_ns: int) -> None:
        """A new episode: no command before it limits the next or stays in the history.

        Commands already sent for the episode's first observations (the start event may come
        after them) are kept.
        """
        self.history.reset()
        self._previous_command = None
        # A policy with memory forgets the last episode (networks/memory.py).
        if self._policy is not None:
            self._policy.reset()
        for stamp, command in self._sent:
            if stamp >= start_ns:
                self.history.push(command)
                self._previous_command = command

    def _on_reading(self, source: str, reading) -> None:
        self.assembler.update(source, reading, self.control.get_clock().now().nanoseconds)
        if self.params.mode != 'event' or not self.active:
            return
        try:
            observation = self.assembler.poll()
            if observation is None and self._answer_repeat and self.assembler.complete_set():
                observation = self.assembler.latest(self.control.get_clock().now().nanoseconds)
        except ObservationError as error:
            self._on_input_error(source, str(error))
            return
        if observation is None:
            return
        self._answer_repeat = False
        age = self.control.get_clock().now().nanoseconds - observation.stamp_ns
        if age > self._max_age_ns:
            self._stale(f'observation stamped {age / 1e9:.3f} s ago; the limit is '
                        f'{self.params.max_age_s:g} s')
            return
        self._act(observation)

    # Control -------------------------------------------------------------------------------

    def _on_tick(self) -> None:
        if not self.active:
            return
        # The timer's own clock: simulated time, with use_sim_time, that a paused /clock stops.
        now = self.control.get_clock().now().nanoseconds
        if self._last_tick_ns is not None and now - self._last_tick_ns > 1.5 * self._period_ns:
            self._counts['missed_ticks'] += int((now - self._last_tick_ns) / self._period_ns
                                                - 0.5)
        self._last_tick_ns = now
        if self._policy is None:
            return
        # Before the first complete observation this node has commanded nothing: there is
        # nothing to hold, and its status says it is waiting.
        waiting = self._last_obs_stamp_ns is None and not self._moving
        if self.params.mode == 'event':
            # Watchdog: in event mode the tick only checks that observations keep coming.
            silent = self.assembler.silent_for_ns(now)
            if not waiting and (silent < 0 or silent > self._max_age_ns):
                self._stale(f'no observation for more than {self.params.max_age_s:g} s')
            return
        try:
            observation = self.assembler.latest(now)
        except StaleObservation as error:
            if not waiting:
                self._stale(str(error))
            return
        except ObservationError as error:
            self._on_input_error('', str(error))
            return
        self._act(observation)

    def _stale(self, text: str) -> None:
        if self._policy is None:
            return
        self._counts['stale'] += 1
        self._stale_now = True
        # A policy with memory saw no step of the gap: its memory would join observations
        # from before and after it as if they were one period apart (a stacked velocity
        # spanning the gap). It starts again as at an episode start.
        self._policy.reset()
        self.get_logger().warn(f'stale input, commanding zero: {text}',
                               throttle_duration_sec=1.0)
        self._send(self._zero, self._last_obs_stamp_ns, zero=True)

    def _act(self, observation) -> None:
        policy = self._policy
        if policy is None:
            return
        self._counts['ticks'] += 1
        self._stale_now = False
        self._last_obs_stamp_ns = observation.stamp_ns
        if self._estop:
            self._send(self._zero, observation.stamp_ns, zero=True)
            return
        if self._yielding:
            return
        teleop = self._teleop_command()
        if teleop is not None:
            self._counts['teleop_commands'] += 1
            # Said before the command goes: a learner marks the step a person drove.
            self.intervention_pub.publish(String(data=json.dumps(
                {'stamp_ns': observation.stamp_ns})))
            self._send(self.spec.action.limit_change(self._previous_command, teleop),
                       observation.stamp_ns)
            return
        try:
            action = self.spec.action.clip(
                self._action(policy, self.history.augment(observation.vector)))
            action = self.spec.action.limit_change(self._previous_command, action)
        except Exception as error:  # noqa: BLE001 - no command from a failed inference
            self._note_error(f'policy {policy.name} produced no usable action: '
                             f'{_reason(error)}')
            self._send(self._zero, observation.stamp_ns, zero=True)
            return
        self._send(action, observation.stamp_ns)

    def _action(self, policy, vector: np.ndarray) -> np.ndarray:
        mode = self._exploration
        if mode == 'none':
            return policy.act(vector)
        if vector.shape != (policy.network.obs_dim,):
            raise ValueError(f'observation has shape {vector.shape}; the policy expects '
                             f'({policy.network.obs_dim},)')
        return explore_action(policy.network, vector, mode, self._exploration_noise,
                              self.spec.action.low, self.spec.action.high, self._rng)

    def _send(self, action: np.ndarray, stamp_ns, zero: bool = False,
              force: bool = False) -> None:
        """Publish a command stamped ``stamp_ns`` (None: now), only while active or ``force``."""
        with self._send_lock:
            if not (self.active or force):
                return  # inactive: nothing from this node commands the robot
            if self.stopping and not zero:
                return  # once stopping, the zero command is the last word
            if not stamp_ns:
                # A zero before any observation answers none: it carries the time it is sent.
                stamp_ns = self.control.get_clock().now().nanoseconds or time.time_ns()
            self.command_pub.publish(action_message(self.spec.action, action, stamp_ns,
                                                    self.params.frame_id))
            self._moving = not zero and bool(np.any(action != 0.0))
            self._previous_command = np.array(action, dtype=np.float64)
            self.history.push(action)
            self._sent.append((stamp_ns, self._previous_command))
            self._counts['zero_commands' if zero else 'commands'] += 1

    def state(self) -> str:
        """What the node does now (``~/status`` state).

        inactive (not active), idle (no checkpoint), waiting (no observation yet), running,
        stale, estop, or yielding (to the episode manager's reset controller).
        """
        if not self.active:
            return 'inactive'
        if self._policy is None:
            return 'idle'
        if self._estop:
            return 'estop'
        if self._yielding:
            return 'yielding'
        if self._stale_now:
            return 'stale'
        return 'waiting' if self._last_obs_stamp_ns is None else 'running'

    def _status_fields(self) -> dict:
        policy = self._policy
        return dict(state=self.state(), lifecycle=self.lifecycle_state,
                    checkpoint=str(policy.path) if policy else '',
                    exploration=self._exploration,
                    algorithm=policy.manifest['algorithm'] if policy else '',
                    last_error=self._last_error, **self._counts)

    def _publish_status(self) -> None:
        self.status.publish_current()

    def status_counts(self) -> dict:
        """Ticks, commands, zero commands, stale inputs, errors, swaps, refusals, missed ticks."""
        return dict(self._counts)

    @property
    def current_checkpoint(self):
        policy = self._policy
        return policy.path if policy else None


def _reason(error: BaseException) -> str:
    """An exception as a refusal reason: its own sentence, or its type where that says more."""
    if isinstance(error, CheckpointError):
        return str(error)
    return f'{type(error).__name__}: {error}'


def main(args=None) -> int:
    # A checkpoint loads on the parameter thread; a 1 ms switch interval (default 5 ms)
    # bounds how long that thread can hold the control thread off the interpreter.
    sys.setswitchinterval(0.001)
    return run(lambda: Policy(), args, name='policy')


if __name__ == '__main__':
    sys.exit(main())
