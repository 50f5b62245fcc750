"""Record and read rosbag2-compatible bags (MCAP, and sqlite3 for reading) without the ros2 CLI.

``BagWriter`` writes a bag directory that ``ros2 bag info/play``, the ``mcap`` CLI, Foxglove and
``rosbags`` open as they would one written by ``ros2 bag record -s mcap``, and that survives its
writer being killed: everything up to the last flush stays readable. ``open_bag`` reads such
bags back (also half-written ones), and bags that ``ros2 bag record`` wrote, checking every
MCAP chunk against its CRC: a damaged chunk is skipped, and the reader lists it in ``losses``.
``reindex_bag`` rewrites a bag cut short or damaged into a complete one (as ``ros2 bag
reindex`` does), so that other tools read it too.

Example::

    with BagWriter('bags/demo_001', flush_interval_s=1.0) as bag:
        bag.add_topic('/scan', 'sensor_msgs/msg/LaserScan')
        bag.write('/scan', serialize_message(scan), log_time_ns=now_ns)

    reader = open_bag('bags/demo_001')
    for message in reader.messages(['/scan']):
        scan = reader.deserialize(message)

The modules, by concern: ``records`` (errors, topics, messages, damaged parts), ``schema``
(message definitions, type hashes, ``message_class``), ``metadata`` (QoS and metadata.yaml),
``writer``, ``mcap_reader`` and ``sqlite_reader`` (one file each), ``reader`` (``open_bag``:
a bag directory as one bag) and ``reindex``.
"""


import importlib

# Where each public name lives. They are loaded on first use, so that a module that needs
# one piece (ilrl_ros.messages takes message_class from schema) does not load the MCAP and
# sqlite readers and the writer with it.
_HOMES = {
    'BagError': 'records',
    'BagLoss': 'records',
    'BagMessage': 'records',
    'BagMessageError': 'records',
    'TopicInfo': 'records',
    'format_log_time': 'records',
    'find_interface_file': 'schema',
    'message_class': 'schema',
    'message_definition': 'schema',
    'type_description_hash': 'schema',
    'bag_metadata': 'metadata',
    'qos_profiles_yaml': 'metadata',
    'write_metadata_file': 'metadata',
    'BagWriter': 'writer',
    'BagReader': 'reader',
    'open_bag': 'reader',
    'Reindexed': 'reindex',
    'reindex_bag': 'reindex',
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'{__name__}.{home}'), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
