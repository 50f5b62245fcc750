"""Message types as rosbag2 stores them: .msg definitions, type hashes, the message classes.

``message_class`` is the one way ilrl_ros turns a type name into its rclpy class.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from pathlib import Path
import re
import sys
from typing import Optional

from ilrl_ros.bag.records import BagError

# Field types of .msg files that need no definition of their own.
_PRIMITIVE_TYPES = frozenset({
    'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16',
    'int32', 'uint32', 'int64', 'uint64', 'string', 'wstring',
})
# Same rule as rosbag2's local message definition source, so our schema text matches its own.
_TYPE_NAME = re.compile(r'^([A-Za-z0-9_]+)/(?:(msg|srv)/)?([A-Za-z0-9_]+)$')
_DELIMITER = '=' * 80 + '\n'


def _split_type_name(type_name: str) -> tuple[str, str, str]:
    """Split ``pkg/msg/Type`` (or ``pkg/Type``) into package, interface kind and name."""
    match = _TYPE_NAME.match(type_name)
    if match is None:
        raise BagError(
            f'Message type {type_name!r} is not understood; expected a name like '
            "'sensor_msgs/msg/LaserScan'.")
    package, kind, name = match.groups()
    return package, kind or 'msg', name


def _share_dirs(package: str) -> list[Path]:
    """Candidate ``share/<package>`` directories, most authoritative first."""
    candidates: list[Path] = []
    if os.environ.get('AMENT_PREFIX_PATH'):
        try:
            from ament_index_python.packages import get_package_share_directory

            candidates.append(Path(get_package_share_directory(package)))
        except Exception:  # noqa: BLE001 - any ament index problem just means "look elsewhere"
            pass
        for prefix in os.environ['AMENT_PREFIX_PATH'].split(os.pathsep):
            if prefix:
                candidates.append(Path(prefix) / 'share' / package)
    candidates.append(Path(sys.prefix) / 'share' / package)
    # Wheels and colcon installs put share/ a few levels above the Python package
    # (<prefix>/lib/pythonX.Y/site-packages/<package>), so walk up from the import location.
    try:
        module = importlib.import_module(package)
        module_dir = Path(module.__file__).resolve().parent if module.__file__ else None
    except ImportError:
        module_dir = None
    if module_dir is not None:
        for parent in module_dir.parents:
            candidates.append(parent / 'share' / package)
    unique: list[Path] = []
    for candidate in candidates:
        if candidate not in unique and candidate.is_dir():
            unique.append(candidate)
    return unique


def find_interface_file(type_name: str, extension: str = '.msg') -> Optional[Path]:
    """Find the installed interface file of ``type_name`` (e.g. its ``.msg`` or ``.json``).

    Looks in the ament index when ``AMENT_PREFIX_PATH`` is set, then in ``sys.prefix/share`` and
    in the ``share`` directories above the package's import location (pip/venv installs).
    Returns None if no such file is installed.
    """
    package, kind, name = _split_type_name(type_name)
    for share in _share_dirs(package):
        path = share / kind / f'{name}{extension}'
        if path.is_file():
            return path
    return None


def _msg_dependencies(text: str, package: str) -> list[str]:
    """Non-primitive field types of a .msg text, as ``pkg/Type``, sorted like rosbag2 does."""
    dependencies = set()
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) < 2 or tokens[0].startswith('#'):
            continue
        field_type = re.sub(r'\[[^\]]*\]$', '', tokens[0]).split('<=')[0]
        if field_type in _PRIMITIVE_TYPES or not re.fullmatch(r'[A-Za-z0-9_/]+', field_type):
            continue
        dependencies.add(field_type if '/' in field_type else f'{package}/{field_type}')
    return sorted(dependencies)


# Python message classes describe their fields with IDL names; .msg files use these.
_IDL_TO_MSG = {
    'boolean': 'bool', 'octet': 'byte', 'float': 'float32', 'double': 'float64',
    'long double': 'float64', 'char': 'uint8', 'wchar': 'uint16',
}


def _msg_field_type(idl_type: str) -> str:
    """Translate one ``get_fields_and_field_types()`` entry into .msg field syntax."""
    match = re.fullmatch(r'sequence<(.+?)(?:,\s*(\d+))?>', idl_type)
    if match:
        element, bound = match.groups()
        return f'{_msg_field_type(element)}[{"<=" + bound if bound else ""}]'
    match = re.fullmatch(r'(.+)\[(\d+)\]', idl_type)
    if match:
        return f'{_msg_field_type(match.group(1))}[{match.group(2)}]'
    match = re.fullmatch(r'(w?string)<(\d+)>', idl_type)
    if match:
        return f'{match.group(1)}<={match.group(2)}'
    return _IDL_TO_MSG.get(idl_type, idl_type)


def _definition_from_class(type_name: str) -> Optional[str]:
    """Build a .msg text from the importable Python class (no comments or constants)."""
    try:
        fields = message_class(type_name).get_fields_and_field_types()
    except BagError:
        return None
    return ''.join(f'{_msg_field_type(field_type)} {field}\n'
                   for field, field_type in fields.items())


def _load_msg_text(type_name: str) -> Optional[str]:
    path = find_interface_file(type_name, '.msg')
    if path is not None:
        return path.read_text(encoding='utf-8')
    return _definition_from_class(type_name)


@functools.lru_cache(maxsize=None)
def message_definition(type_name: str) -> str:
    """Full ``ros2msg`` schema text of ``type_name``, in the rosbag2 (and MCAP) convention.

    The type's own .msg text, then for each nested type, depth first and each type once: a line
    of 80 ``=``, a line ``MSG: pkg/Type``, and that type's .msg text. Where a .msg file is not
    installed, the text is rebuilt from the Python message class.
    """
    seen: set[str] = set()

    def append(name: str, depth: int) -> str:
        if depth > 50:
            raise BagError(f'Message type {type_name!r} nests types more than 50 levels deep.')
        text = _load_msg_text(name)
        if text is None:
            raise BagError(
                f'No definition of message type {name!r} (needed by {type_name!r}) was found: '
                'no .msg file under any share/ directory and no importable Python class; '
                'install the message package or source its workspace.')
        package = _split_type_name(name)[0]
        result = text
        for dependency in _msg_dependencies(text, package):
            if dependency not in seen:
                seen.add(dependency)
                result += '\n' + _DELIMITER + f'MSG: {dependency}\n' + append(dependency,
                                                                             depth + 1)
        return result

    return append(type_name, 0)


@functools.lru_cache(maxsize=None)
def type_description_hash(type_name: str) -> str:
    """Return the ``RIHS01_...`` hash from the installed type description (.json), or ''."""
    path = find_interface_file(type_name, '.json')
    if path is None:
        return ''
    try:
        hashes = json.loads(path.read_text(encoding='utf-8')).get('type_hashes', [])
    except (OSError, ValueError):
        return ''
    for entry in hashes:
        if entry.get('type_name') == type_name:
            return entry.get('hash_string', '')
    return ''


@functools.lru_cache(maxsize=None)
def message_class(type_name: str) -> type:
    """Return the rclpy message class of ``type_name`` (``pkg/msg/Type``) from ``pkg.msg``.

    Raises :class:`BagError` (a ``ValueError``) saying whether the name, the package or the
    type is what is wrong.
    """
    package, kind, name = _split_type_name(type_name)
    try:
        module = importlib.import_module(f'{package}.{kind}')
    except ImportError as error:
        raise BagError(
            f'Cannot load message type {type_name!r}: Python package {package!r} is not '
            'importable; install it or source the workspace that builds it.') from error
    found = getattr(module, name, None)
    if found is None:
        raise BagError(
            f'Cannot load message type {type_name!r}: {package}.{kind} has no {name!r}; check '
            'the name, or install a version of the package that has it (a bag may have been '
            'recorded with a newer one).')
    return found
