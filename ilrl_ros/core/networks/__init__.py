"""Every network a checkpoint can name, the table of their types, and the builder.

A network is fully described by a small JSON-able dict (``description()``), which a
checkpoint stores so that ``build_policy`` can rebuild it without executing anything from
the file. What a deployed policy imports is this package: no training, optimizer or
environment code (the algorithms in ``core/algorithms/`` import their networks from here).
"""

import math

from ilrl_ros.core.networks.actor_critic import ActorCritic
from ilrl_ros.core.networks.actors import DeterministicActor, SquashedGaussianActor
from ilrl_ros.core.networks.linear_feedback import LinearFeedbackPolicy
from ilrl_ros.core.networks.memory import (check_memory, memory_values, MemoryActorCritic,
                                           MemoryPolicy)
from ilrl_ros.core.networks.mixture import MAX_COMPONENTS, MixtureDensityPolicy
from ilrl_ros.core.networks.mlp import (
    ACTIVATIONS,
    ConvPolicy,
    HEADS,
    make_policy,
    mlp,
    MLPPolicy,
)
from ilrl_ros.core.networks.mpc import DynamicsEnsemble, MPCPolicy, PlannerConfig
from ilrl_ros.core.networks.q_network import QPolicy
from ilrl_ros.core.spec import ACTION_MAX_SIZE, OBSERVATION_MAX_SIZE

__all__ = [
    'ACTIVATIONS', 'ActorCritic', 'build_policy', 'check_description', 'ConvPolicy',
    'DeterministicActor', 'DynamicsEnsemble', 'LinearFeedbackPolicy', 'make_policy',
    'MemoryActorCritic', 'MemoryPolicy', 'MixtureDensityPolicy', 'mlp',
    'MLPPolicy', 'MPCPolicy', 'NETWORK_TYPES', 'PlannerConfig', 'QPolicy',
    'SquashedGaussianActor',
]

# Every network a checkpoint may hold, by the ``type`` in its description. The table is fixed
# in code: a checkpoint names a type, it never supplies code. Each class has
# ``from_description(description)``, ``description()``, ``obs_dim``, ``act_dim`` and a
# ``forward(obs)`` that returns the action in the robot's units.
NETWORK_TYPES = {
    'mlp': MLPPolicy,
    'conv': ConvPolicy,
    'actor_critic': ActorCritic,
    'q_network': QPolicy,
    'deterministic_actor': DeterministicActor,
    'squashed_gaussian_actor': SquashedGaussianActor,
    'linear_feedback': LinearFeedbackPolicy,
    'mpc': MPCPolicy,
    'memory_mlp': MemoryPolicy,
    'memory_actor_critic': MemoryActorCritic,
    'mdn': MixtureDensityPolicy,
}

# What a network description may ask for. A description comes from a checkpoint's manifest,
# which may be corrupt or hostile: these bounds are checked before anything is built, so that
# no description can make the loader allocate gigabytes or plan for minutes per action.
MAX_OBSERVATION_SIZE, MAX_ACTION_SIZE = OBSERVATION_MAX_SIZE, ACTION_MAX_SIZE
"""Values in one observation and in one action: as many as a task spec may have."""
MAX_DISCRETE_ACTIONS = 1 << 16
"""Choices of a discrete action."""
MAX_LAYER_WIDTH = 1 << 16
"""Units of one hidden layer, channels of one convolution."""
MAX_LAYERS = 64
"""Hidden layers, or convolutions, in one stack."""
MAX_IMAGES = 64
"""Images in one observation."""
MAX_ENSEMBLE_SIZE = 64
"""Members of a dynamics ensemble."""
MAX_NETWORK_VALUES = 64 << 20
"""Numbers in all of a network's tensors, as estimated from above (256 MiB of float32)."""
MAX_PLAN_STEPS = 100_000
"""Model steps an MPC planner may take per action: horizon x candidates x iterations (x the
ensemble size when every candidate runs through every member); the default plans 6000."""
PLANNER_WHOLE = {'horizon': (1, 1000), 'num_candidates': (2, 100_000), 'iterations': (1, 100),
                 'seed': (0, 2 ** 63 - 1)}
PLANNER_REAL = ('elite_fraction', 'smoothing', 'init_std')
PLANNER_NAMES = ('method', 'propagation')


def _shown(value) -> str:
    """``repr(value)``, cut short: a refusal quotes the value, never megabytes of it."""
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f'... ({len(text)} characters)'


def _whole(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f'network {name} must be a whole number from {low} to {high}, got '
                         f'{_shown(value)}')
    return value


def _widths(value, name: str, min_layers: int) -> list:
    if not isinstance(value, list) or not min_layers <= len(value) <= MAX_LAYERS:
        raise ValueError(f'network {name} must be a list of {min_layers} to {MAX_LAYERS} layer '
                         f'widths, got {_shown(value)}')
    return [_whole(width, f'{name} width', 1, MAX_LAYER_WIDTH) for width in value]


def _choice(value, name: str, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f'network {name} must be one of {", ".join(allowed)}; got '
                         f'{_shown(value)}')
    return value


def _check_planner(planner, ensemble_size: int) -> None:
    if not isinstance(planner, dict):
        raise ValueError(f'network planner must be a JSON object of planner settings, got '
                         f'{_shown(planner)}')
    for key, (low, high) in PLANNER_WHOLE.items():
        if key in planner:
            _whole(planner[key], f'planner {key}', low, high)
    for key in PLANNER_REAL:
        value = planner.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f'network planner {key} must be a finite number, got '
                             f'{_shown(value)}')
    for key in PLANNER_NAMES:
        if key in planner and not isinstance(planner[key], str):
            raise ValueError(f'network planner {key} must be a name, got '
                             f'{_shown(planner[key])}')
    steps = planner.get('horizon', 15) * planner.get('num_candidates', 100) \
        * planner.get('iterations', 4)
    if planner.get('propagation') == 'each':
        steps *= ensemble_size
    if steps > MAX_PLAN_STEPS:
        raise ValueError(f'network planner would take {steps} model steps per action '
                         f'(horizon x num_candidates x iterations); at most {MAX_PLAN_STEPS}')


def _halved(size: int, times: int) -> int:
    for _ in range(times):
        size = (size + 1) // 2
    return size


def _values_bound(d: dict, hidden: list, channels: list, layout: list) -> int:
    """An upper bound on the numbers in the tensors of the network ``d`` describes.

    Every network here is one or two MLP stacks (actor and critic, or mean and log-std
    heads), per ensemble member (an ensemble predicts observations), after an optional
    stride-2 conv stack per image; counting the stack twice, from the widest input to the
    widest output, bounds them all.
    """
    obs_dim, act_dim = d['obs_dim'], d['act_dim']
    outputs = max(act_dim, d.get('n_actions') or 0, d.get('num_actions') or 0,
                  obs_dim if 'ensemble_size' in d else 0,
                  (d.get('components') or 0) * (2 * act_dim + 1))
    # Image pixels reach the MLP only as conv features.
    inputs = max(obs_dim - sum(height * width for _, height, width in layout), 0) + act_dim
    conv = 0
    for _, height, width in layout:
        previous = 1
        for i, out in enumerate(channels):
            conv += (25 if i == 0 else 9) * previous * out + out
            previous = out
        if channels:
            inputs += channels[-1] * _halved(height, len(channels)) * _halved(width, len(channels))
    sizes = [inputs, *hidden, outputs]
    stack = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    tables = (d.get('n_actions') or 0) * act_dim + 8 * (inputs + outputs)
    return (d.get('ensemble_size') or 1) * (2 * stack + conv) + tables


def check_description(description) -> None:
    """Raise a ValueError naming the first field of a network description that cannot be built.

    Checks the types and ranges of every field a network type reads, and that the network
    would fit in ``MAX_NETWORK_VALUES`` numbers, without building anything. What a type's own
    constructor checks (a known state map, reward or action kind; an image layout that fits
    the observation) is left to it.
    """
    if not isinstance(description, dict):
        raise ValueError(f'the network description must be a JSON object with a type, got '
                         f'{_shown(description)}')
    _choice(description.get('type'), 'type', sorted(NETWORK_TYPES))
    for key in ('obs_dim', 'act_dim'):
        if key not in description:
            raise ValueError(f'network description lacks {key!r}')
    _whole(description['obs_dim'], 'obs_dim', 1, MAX_OBSERVATION_SIZE)
    _whole(description['act_dim'], 'act_dim', 1, MAX_ACTION_SIZE)
    for key in ('n_actions', 'num_actions'):
        if description.get(key) is not None:
            _whole(description[key], key, 1, MAX_DISCRETE_ACTIONS)
    if 'components' in description:
        _whole(description['components'], 'components', 1, MAX_COMPONENTS)
    ensemble_size = 1
    if 'ensemble_size' in description:
        ensemble_size = _whole(description['ensemble_size'], 'ensemble_size', 1,
                               MAX_ENSEMBLE_SIZE)
    hidden = _widths(description['hidden'], 'hidden', 0) if 'hidden' in description else []
    channels = _widths(description['channels'], 'channels', 1) \
        if 'channels' in description else []
    if 'activation' in description:
        _choice(description['activation'], 'activation', tuple(ACTIVATIONS))
    if 'head' in description:
        _choice(description['head'], 'head', HEADS)
    for key in ('normalize_obs', 'normalize_observations'):
        if key in description and not isinstance(description[key], bool):
            raise ValueError(f'network {key} must be true or false, got '
                             f'{_shown(description[key])}')
    for key in ('action_kind', 'state_map', 'reward'):
        if key in description and not isinstance(description[key], str):
            raise ValueError(f'network {key} must be a name, got {_shown(description[key])}')
    layout = []
    if 'image_layout' in description:
        images = description['image_layout']
        if not isinstance(images, list) or len(images) > MAX_IMAGES or not all(
                isinstance(image, list) and len(image) == 3 for image in images):
            raise ValueError(f'network image_layout must be a list of at most {MAX_IMAGES} '
                             f'[start, height, width], got {_shown(images)}')
        layout = [(_whole(start, 'image start', 0, MAX_OBSERVATION_SIZE),
                   _whole(height, 'image height', 1, MAX_OBSERVATION_SIZE),
                   _whole(width, 'image width', 1, MAX_OBSERVATION_SIZE))
                  for start, height, width in images]
    if 'planner' in description:
        _check_planner(description['planner'], ensemble_size)
    if description['type'].startswith('memory_'):
        check_memory(description.get('memory'), description.get('history'),
                     description.get('memory_size'))
    values = _values_bound(description, hidden, channels, layout) + memory_values(description)
    if values > MAX_NETWORK_VALUES:
        raise ValueError(f'the network described would hold up to {values} numbers; at most '
                         f'{MAX_NETWORK_VALUES} are built')


def build_policy(description: dict):
    """Rebuild a network from its ``description()`` (as stored in a checkpoint).

    Whatever is wrong with the description, the error is a ValueError that says what.
    """
    check_description(description)
    network_class = NETWORK_TYPES[description['type']]
    try:
        return network_class.from_description(description)
    except KeyError as error:
        raise ValueError(f'network description lacks {error.args[0]!r}') from None
    except ValueError:
        raise
    except Exception as error:
        raise ValueError(f'network {description["type"]!r} cannot be built from its '
                         f'description: {type(error).__name__}: {error}') from None
