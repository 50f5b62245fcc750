"""QoS overrides from parameters: every publisher and subscription of a SafeNode takes them.

The parameters are rclpy's (``qos_overrides.<topic>.<publisher|subscription>.<policy>``), so
a driver's QoS can be matched from the parameter file; tested here with real nodes over DDS.
"""

from hypothesis import given, strategies as st
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
import pytest
from std_msgs.msg import String

from ilrl_ros import qos
from ilrl_ros.nodes.common import SafeNode, Spinner, stop_nodes
from ilrl_ros.nodes.policy import Policy
from ilrl_testing import wait_for

BEST_EFFORT_ONLY = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABILITY = 'qos_overrides./chatter.subscription.reliability'


def test_an_overridden_subscription_matches_a_best_effort_only_publisher(ros_context):
    talker = Node('talker', context=ros_context)
    publisher = talker.create_publisher(String, 'chatter', BEST_EFFORT_ONLY)
    listener = SafeNode('listener', context=ros_context, parameter_overrides=[
        Parameter(RELIABILITY, value='best_effort'),
        Parameter('qos_overrides./chatter.subscription.depth', value=3)])
    plain = SafeNode('plain', context=ros_context)
    heard, unmatched = [], []
    subscription = listener.create_subscription(String, 'chatter', heard.append, qos.COMMAND)
    # The same reliable profile without the override: a best-effort publisher is not matched.
    plain.create_subscription(String, 'chatter', unmatched.append, qos.COMMAND)
    spinner = Spinner([talker, listener, plain], context=ros_context).start()
    try:
        def spoken():
            publisher.publish(String(data='hello'))
            return heard
        wait_for(spoken, 10.0, 'the overridden subscription to hear the best-effort talker')
        (info,) = [i for i in talker.get_subscriptions_info_by_topic('/chatter')
                   if i.node_name == 'listener']
        assert info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        assert subscription.qos_profile.depth == 3   # the queue is local: not in discovery
        assert listener.get_parameter(RELIABILITY).value == 'best_effort'
        assert plain.get_parameter(RELIABILITY).value == 'reliable'   # the code's profile
        assert not unmatched
        # The shared profile constant itself is left alone.
        assert qos.COMMAND.reliability == ReliabilityPolicy.RELIABLE and qos.COMMAND.depth == 10
    finally:
        stop_nodes([talker, listener, plain], spinner)


def test_two_entities_on_one_topic_share_overrides_but_keep_their_own_defaults(ros_context):
    node = SafeNode('twice', context=ros_context, parameter_overrides=[
        Parameter('qos_overrides./a.subscription.reliability', value='best_effort')])
    try:
        first = node.create_subscription(String, 'a', lambda m: None, qos.COMMAND)
        second = node.create_subscription(String, 'a', lambda m: None, qos.LATCHED)
        assert first.qos_profile.reliability == second.qos_profile.reliability \
            == ReliabilityPolicy.BEST_EFFORT
        # Durability was not overridden: each keeps the profile it asked for.
        assert first.qos_profile.durability == DurabilityPolicy.VOLATILE
        assert second.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
        publisher = node.create_publisher(String, '~/status', qos.LATCHED)
        assert publisher.topic_name == '/twice/status'
        assert node.has_parameter('qos_overrides./twice/status.publisher.durability')
    finally:
        node.destroy_node()


def test_the_policy_hands_its_overrides_to_its_control_node(ros_context):
    policy = Policy(context=ros_context, parameter_overrides=[
        Parameter('task', value='track_follow'),
        Parameter('qos_overrides./scan.subscription.reliability', value='reliable'),
        Parameter('qos_overrides./scan.subscription.depth', value=7),
        Parameter('qos_overrides./cmd_vel.publisher.depth', value=2)])
    try:
        infos = {i.node_name: i.qos_profile
                 for i in policy.get_subscriptions_info_by_topic('/scan')}
        assert infos['policy_control'].reliability == ReliabilityPolicy.RELIABLE
        (scan,) = [s for s in policy.sources.subscriptions if s.topic_name == '/scan']
        assert scan.qos_profile.depth == 7
        assert policy.command_pub.qos_profile.depth == 2
        # odom was not overridden: the sensor default, best effort.
        (odom,) = policy.get_subscriptions_info_by_topic('/odom')
        assert odom.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    finally:
        for node in policy.executor_nodes:
            node.destroy_node()


@pytest.mark.parametrize('policy, value, expected', [
    ('reliability', 'sometimes', 'expected one of reliable, best_effort'),
    ('durability', 3, 'expected one of volatile, transient_local'),
    ('depth', 0, 'expected a whole number from 1 to 1000000'),
    ('depth', 'ten', 'expected a whole number'),
    ('history', 'keep_most', 'expected one of keep_last, keep_all'),
])
def test_a_bad_override_is_a_start_up_error_naming_the_parameter(ros_context, policy, value,
                                                                 expected):
    name = f'qos_overrides./odom.subscription.{policy}'
    with pytest.raises(ValueError) as error:
        Policy(context=ros_context, parameter_overrides=[
            Parameter('task', value='track_follow'), Parameter(name, value=value)])
    assert f'parameter {name} is {value!r}; {expected}' in str(error.value)


def test_an_override_wins_over_the_recorders_adapted_qos(ros_context, tmp_path):
    from ilrl_ros.nodes.demo_recorder import DemoRecorder
    talker = Node('talker', context=ros_context)
    recorder = DemoRecorder(context=ros_context, parameter_overrides=[
        Parameter('topics', value=['/reliable']), Parameter('output_dir', value=str(tmp_path)),
        Parameter('bag_name', value='demo'), Parameter('discovery_period_s', value=0.1),
        Parameter('qos_overrides./reliable.subscription.reliability', value='best_effort')])
    spinner = Spinner([talker, recorder], context=ros_context).start()
    try:
        # The publisher offers reliable, so the recorder would ask for reliable; the
        # parameter file says best effort, and that is what it asks for.
        publisher = talker.create_publisher(String, '/reliable', qos.COMMAND)
        wait_for(lambda: publisher.get_subscription_count(), 10.0, 'the recorder to subscribe')
        (info,) = talker.get_subscriptions_info_by_topic('/reliable')
        assert info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    finally:
        stop_nodes([talker, recorder], spinner)


@given(st.sampled_from(qos.OVERRIDE_POLICIES),
       st.one_of(st.text(max_size=20), st.integers(-10, 2_000_000), st.booleans(),
                 st.floats(allow_nan=True), st.none(),
                 st.sampled_from([c for cs in qos.OVERRIDE_CHOICES.values() for c in cs]
                                 + ['RELIABLE', 'Best_Effort'])))
def test_any_override_value_is_a_policy_or_an_error_naming_the_parameter(policy, value):
    """Whatever a parameter file holds, an override is a valid policy value or refused."""
    name = qos.override_name('/scan', 'subscription', policy)
    try:
        checked = qos._checked(name, policy, value)
    except ValueError as error:
        assert name in str(error) and 'expected' in str(error)
        return
    profile = QoSProfile(depth=10)
    setattr(profile, policy, checked)  # rclpy accepts it as that policy
    if policy == 'depth':
        assert qos.DEPTH_RANGE[0] <= profile.depth <= qos.DEPTH_RANGE[1]
    else:
        assert str(value).lower() in qos.OVERRIDE_CHOICES[policy]
