"""The QoS profiles every ilrl_ros node uses, kept in one place, and their overrides."""

import copy

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    qos_profile_sensor_data,
    ReliabilityPolicy,
)

# Sensor streams: best effort, keep the newest few (what real drivers offer).
SENSOR = qos_profile_sensor_data

# Sensor streams for nodes that must see every step (episode manager, reward monitor): still
# best effort, so they match any driver, but with a deep queue so a busy moment drops nothing.
SENSOR_EVERY = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)

# Commands to the robot and learning signals: reliable, a short queue.
COMMAND = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

# Per-step learning signals (episode steps, transitions): reliable and deep, so a busy
# learner loses nothing; volatile, since a late joiner has no use for old steps.
STEPS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1000,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

# Status that a late joiner must still see (latched): reliable, transient local, depth 1.
LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

# Event streams where every message matters (episode results): reliable, deep queue.
EVENTS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


# -- Overrides from parameters -------------------------------------------------------------
#
# Every publisher and subscription a SafeNode creates takes its QoS from parameters named as
# rclpy's QoSOverridingOptions names them, qos_overrides.<resolved topic>.<publisher |
# subscription>.<policy>, so a parameter file written for any ROS 2 node works here too:
#
#   policy:
#     ros__parameters:
#       qos_overrides:
#         /scan:
#           subscription: {reliability: best_effort, depth: 5}
#
# rclpy's own mechanism is not used as is: it writes the overrides into the profile it is
# given (here module constants shared by every node of the process), a second entity on the
# same topic takes the first one's values even where no override was given (the recorder
# re-subscribes with a laxer profile when a new publisher appears), its refusal of a bad
# value does not name the parameter, and its default policies leave out durability.

# The policies that may be overridden, with what each accepts.
OVERRIDE_CHOICES = {
    'reliability': ('reliable', 'best_effort', 'system_default', 'best_available'),
    'history': ('keep_last', 'keep_all', 'system_default'),
    'durability': ('volatile', 'transient_local', 'system_default', 'best_available'),
}
# depth: a whole number in this range (a queue deeper than this is a memory leak in waiting).
DEPTH_RANGE = (1, 1_000_000)
OVERRIDE_POLICIES = ('reliability', 'history', 'depth', 'durability')
_ENUMS = {'reliability': ReliabilityPolicy, 'history': HistoryPolicy,
          'durability': DurabilityPolicy}
# Infrastructure topics rclpy itself creates entities on; they are never overridden.
NOT_OVERRIDDEN = ('/parameter_events', '/rosout', '/clock')


def override_name(topic: str, entity: str, policy: str) -> str:
    """The parameter that overrides ``policy`` of a publisher or subscription on ``topic``."""
    return f'qos_overrides.{topic}.{entity}.{policy}'


def _policy_value(profile: QoSProfile, policy: str):
    value = getattr(profile, policy)
    return value if policy == 'depth' else value.name.lower()


def _checked(name: str, policy: str, value):
    """The override ``value`` of parameter ``name`` as a profile attribute, or ValueError."""
    if policy == 'depth':
        if isinstance(value, bool) or not isinstance(value, int) \
                or not DEPTH_RANGE[0] <= value <= DEPTH_RANGE[1]:
            raise ValueError(f'parameter {name} is {value!r}; expected a whole number from '
                             f'{DEPTH_RANGE[0]} to {DEPTH_RANGE[1]}')
        return value
    choices = OVERRIDE_CHOICES[policy]
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f'parameter {name} is {value!r}; expected one of '
                         f'{", ".join(choices)}')
    return _ENUMS[policy][value.upper()]


def given_overrides(node) -> dict:
    """The ``qos_overrides.*`` values this node was started with, by parameter name.

    They come from parameter files, ``-p`` and ``parameter_overrides``: rclpy keeps them in
    the node until a parameter of that name is declared, and offers no public accessor.
    """
    return {name: parameter.value
            for name, parameter in getattr(node, '_parameter_overrides', {}).items()
            if name.startswith('qos_overrides.')}


def inherited_overrides(node) -> list:
    """The node's ``qos_overrides.*`` as parameters, for a helper node to start with.

    The policy's control loop runs on a node of its own (``<name>_control``); it is given the
    policy's overrides, so they are written under the policy's name like its other parameters.
    """
    return [parameter for name, parameter in getattr(node, '_parameter_overrides', {}).items()
            if name.startswith('qos_overrides.')]


def overridden(node, entity: str, topic: str, profile: QoSProfile) -> QoSProfile:
    """A copy of ``profile`` with the node's overrides for this entity applied.

    Declares the entity's ``qos_overrides.*`` parameters (read-only, with this profile's
    values as defaults) the first time a topic and entity are seen, so ``ros2 param list``
    shows what can be overridden. A second entity on the same topic keeps its own profile
    where no override was given. A bad value raises ``ValueError`` naming the parameter.
    """
    resolved = node.resolve_topic_name(topic)
    out = QoSProfile(depth=profile) if isinstance(profile, int) else copy.copy(profile)
    if resolved in NOT_OVERRIDDEN:
        return out
    given = given_overrides(node)
    for policy in OVERRIDE_POLICIES:
        name = override_name(resolved, entity, policy)
        if name in given:
            setattr(out, policy, _checked(name, policy, given[name]))
    if out.history == HistoryPolicy.KEEP_LAST and out.depth < 1:
        raise ValueError(f'parameter {override_name(resolved, entity, "depth")}: a keep_last '
                         f'{entity} on {resolved} needs a depth of at least 1')
    for policy in OVERRIDE_POLICIES:
        name = override_name(resolved, entity, policy)
        if not node.has_parameter(name):
            node.declare_parameter(name, _policy_value(out, policy), ParameterDescriptor(
                description=f'QoS {policy} of the {entity} on {resolved}',
                read_only=True), ignore_override=True)
    return out
