"""Helpers of the fuzz tests that mutate JSON documents (manifests, specs); no ROS."""


def paths_of(document) -> list:
    """Every key path in a JSON document (lists by index), found without recursion."""
    found, stack = [], [((), document)]
    while stack:
        path, node = stack.pop()
        slots = node.items() if isinstance(node, dict) else \
            enumerate(node) if isinstance(node, list) else ()
        for key, child in slots:
            found.append(path + (key,))
            stack.append((path + (key,), child))
    return found


def at(document, path: tuple):
    """The value at a key path of ``paths_of``."""
    for key in path:
        document = document[key]
    return document
