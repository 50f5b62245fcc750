"""The QoS profiles every ilrl_ros node uses, kept in one place."""

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
