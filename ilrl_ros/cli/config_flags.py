"""Command-line flags generated from an algorithm's config dataclass, one per field.

Each field ``name`` becomes ``--name`` (underscores as dashes) with the field's docstring as
its help, parsed by the type of its default: numbers, words, ``true``/``false`` switches
(``--name`` / ``--no-name``), comma-separated widths for tuples, ``none`` where the default
is None. A field that is itself a config (BC inside RWR, the planner inside MBRL) gives
flags for its own fields, with its name as a prefix unless told to flatten it. A flag left
out keeps the preset's value: only given flags become overrides, and the config's own
validation says what is wrong with a value.
"""

import argparse
import ast
import dataclasses
import inspect
import textwrap


def field_docs(config_class) -> dict:
    """The docstring under each field of a dataclass (and of its dataclass bases)."""
    docs = {}
    for klass in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for field, doc in zip(body, body[1:]):
            if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) \
                    and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) \
                    and isinstance(doc.value.value, str):
                docs[field.target.id] = ' '.join(doc.value.value.split())
    return docs


def _numbers(kind):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v) for v in text.split(',') if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'expected {kind.__name__} values separated by commas, e.g. 256,256; got '
                f'{text!r}') from None
    return parse


def _optional(kind):
    def parse(text: str):
        if text.strip().lower() == 'none':
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected a {kind.__name__} or none; got '
                                             f'{text!r}') from None
    return parse


def device_setting(text: str) -> str:
    """Parse ``--device``: auto, cpu, cuda or cuda:N.

    Only the form: whether the GPU is there is asked when training starts, and that error
    names the devices this machine has.
    """
    from ilrl_ros.core.device import check_device_setting
    try:
        check_device_setting('--device', text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected auto, cpu, cuda or cuda:N; got '
                                         f'{text!r}') from None
    return text.strip().lower()


def add_device_flag(parser, what: str = 'training') -> None:
    """``--device`` for a verb whose settings are not a config's fields (``ilrl dagger``)."""
    parser.add_argument('--device', type=device_setting, default='cpu', metavar='DEVICE',
                        help=f'where {what} runs: cpu, cuda, cuda:N or auto (a GPU when there '
                        'is one); checkpoints hold CPU tensors either way (default: '
                        '%(default)s)')


def _kind(field: dataclasses.Field, default):
    """How to parse a field's flag, from its default (and its annotation when that is None)."""
    if field.name == 'device':
        return device_setting
    if isinstance(default, bool):
        return None
    if isinstance(default, tuple):
        kind = int if all(isinstance(v, int) for v in default) and default else float
        return _numbers(kind)
    if default is None:
        annotation = field.type if isinstance(field.type, type) else {
            'int': int, 'float': float, 'str': str}.get(str(field.type), float)
        return _optional(annotation)
    return type(default)


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def add_config_flags(parser, config_class, *, skip=(), flatten=(), prefix: str = '',
                     title: str = None) -> list:
    """Add a flag per field of ``config_class`` to ``parser``.

    Returns what ``config_overrides`` needs to read the given flags back. ``skip`` names
    fields that have a flag of another name already (``--steps`` for ``total_steps``); a
    field whose flag the verb defines itself keeps the verb's. Nested config fields in
    ``flatten`` get their flags without a prefix.
    """
    group = parser.add_argument_group(
        title or f'{config_class.__name__} settings (any left out keep the default or preset)')
    docs = field_docs(config_class)
    specs = []
    for field in dataclasses.fields(config_class):
        if field.name in skip:
            continue
        default = _default(field)
        if dataclasses.is_dataclass(default):
            nested_prefix = '' if field.name in flatten else f'{prefix}{field.name}_'
            nested = add_config_flags(parser, type(default), prefix=nested_prefix,
                                      title=f'{field.name}: {docs.get(field.name, "")}')
            specs.append((field.name, nested))
            continue
        dest = f'config__{prefix}{field.name}'
        flag = '--' + f'{prefix}{field.name}'.replace('_', '-')
        if flag in parser._option_string_actions:
            continue
        help_text = (docs.get(field.name, field.name) + f' (default: {default!r})').replace(
            '%', '%%')
        kind = _kind(field, default)
        if kind is None:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=kind, default=argparse.SUPPRESS,
                               metavar=f'{prefix}{field.name}'.upper(), help=help_text)
        specs.append((field.name, dest))
    return specs


def config_overrides(args, specs: list) -> dict:
    """The fields whose flags were given, by name; a nested config's as a dict of its own."""
    out = {}
    for name, spec in specs:
        if isinstance(spec, list):
            nested = config_overrides(args, spec)
            if nested:
                out[name] = nested
        elif hasattr(args, spec):
            out[name] = getattr(args, spec)
    return out
