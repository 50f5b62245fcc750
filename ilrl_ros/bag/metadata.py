"""QoS profiles and metadata.yaml, in the layout rosbag2 (Jazzy, version 9) writes them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Optional

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
import yaml

# The rosbag2 metadata format ROS 2 Jazzy writes (QoS as a YAML list with named policies).
METADATA_VERSION = 9
METADATA_FILE = 'metadata.yaml'
# rosbag2 marks "no message yet" with the largest time point; its tools expect that value.
_NO_TIME = 2**63 - 1
_INFINITE_NS = 2**63 - 1


def _duration_dict(duration: Any) -> dict[str, int]:
    nanoseconds = getattr(duration, 'nanoseconds', duration)
    nanoseconds = min(int(nanoseconds), _INFINITE_NS)
    return {'sec': nanoseconds // 1_000_000_000, 'nsec': nanoseconds % 1_000_000_000}


def _policy_name(enum_type: type, value: Any) -> str:
    try:
        return enum_type(int(value)).name.lower()
    except ValueError:
        return 'unknown'


def _qos_dict(profile: QoSProfile) -> dict[str, Any]:
    """One QoS profile in the rosbag2 version 9 layout (policies by lower-case name)."""
    return {
        'history': _policy_name(HistoryPolicy, profile.history),
        'depth': int(profile.depth),
        'reliability': _policy_name(ReliabilityPolicy, profile.reliability),
        'durability': _policy_name(DurabilityPolicy, profile.durability),
        'deadline': _duration_dict(profile.deadline),
        'lifespan': _duration_dict(profile.lifespan),
        'liveliness': _policy_name(LivelinessPolicy, profile.liveliness),
        'liveliness_lease_duration': _duration_dict(profile.liveliness_lease_duration),
        'avoid_ros_namespace_conventions': bool(profile.avoid_ros_namespace_conventions),
    }


def qos_profiles_yaml(profiles: Iterable[QoSProfile]) -> str:
    """Serialize offered QoS profiles as rosbag2 stores them in MCAP channels; '' for none."""
    dicts = [_qos_dict(profile) for profile in profiles]
    if not dicts:
        return ''
    return yaml.safe_dump(dicts, default_flow_style=False, sort_keys=False)


def bag_metadata(
    *,
    file_name: str,
    topics: Iterable[Any],
    start_ns: Optional[int],
    end_ns: Optional[int],
    storage_identifier: str = 'mcap',
) -> dict[str, Any]:
    """Return the content of a rosbag2 ``metadata.yaml`` (version 9) for a single-file bag.

    ``topics`` are objects with ``name``, ``type_name``, ``qos_yaml`` (offered QoS as
    :func:`qos_profiles_yaml` writes it), ``type_hash`` and ``count``; ``start_ns``/``end_ns``
    are the first and last log times, or None while the bag is empty.
    """
    topics = list(topics)
    message_count = sum(topic.count for topic in topics)
    if start_ns is None or end_ns is None:
        starting_time, duration = _NO_TIME, 0
    else:
        starting_time, duration = start_ns, max(0, end_ns - start_ns)
    topics_with_message_count = []
    for topic in topics:
        offered = yaml.safe_load(topic.qos_yaml) if topic.qos_yaml else []
        topics_with_message_count.append({
            'topic_metadata': {
                'name': topic.name,
                'type': topic.type_name,
                'serialization_format': 'cdr',
                'offered_qos_profiles': offered or [],
                'type_description_hash': topic.type_hash,
            },
            'message_count': topic.count,
        })
    return {
        'rosbag2_bagfile_information': {
            'version': METADATA_VERSION,
            'storage_identifier': storage_identifier,
            'duration': {'nanoseconds': duration},
            'starting_time': {'nanoseconds_since_epoch': starting_time},
            'message_count': message_count,
            'topics_with_message_count': topics_with_message_count,
            'compression_format': '',
            'compression_mode': '',
            'relative_file_paths': [file_name],
            'files': [{
                'path': file_name,
                'starting_time': {'nanoseconds_since_epoch': starting_time},
                'duration': {'nanoseconds': duration},
                'message_count': message_count,
            }],
            'custom_data': None,
            'ros_distro': os.environ.get('ROS_DISTRO') or 'jazzy',
        },
    }


def write_metadata_file(bag_dir: Path, metadata: dict[str, Any]) -> None:
    """Replace ``bag_dir/metadata.yaml`` atomically, so a crash never leaves half a file."""
    text = yaml.safe_dump(metadata, default_flow_style=False, sort_keys=False)
    tmp_path = Path(bag_dir) / f'.{METADATA_FILE}.tmp'
    with open(tmp_path, 'w', encoding='utf-8') as tmp:
        tmp.write(text)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp_path, Path(bag_dir) / METADATA_FILE)
