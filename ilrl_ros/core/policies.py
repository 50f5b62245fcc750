"""Policy networks: an MLP or a small image CNN, deterministic or Gaussian head, normalised.

An MLP serves vector observations, ``ConvPolicy`` tasks that see a camera image. A network is
fully described by a small JSON-able dict (``description()``), which a checkpoint stores so
the network can be rebuilt without executing anything from the file.
"""

import importlib
import math

import numpy as np
import torch
from torch import nn

from ilrl_ros.core.data import Normalizer
from ilrl_ros.core.spec import ACTION_MAX_SIZE, OBSERVATION_MAX_SIZE

ACTIVATIONS = {'relu': nn.ReLU, 'tanh': nn.Tanh, 'elu': nn.ELU}
HEADS = ('deterministic', 'gaussian')
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def mlp(sizes: list, activation: str) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none at the end)."""
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class _PolicyHead(nn.Module):
    """What MLPPolicy and ConvPolicy share: normalisation buffers, the MLP and the head.

    Subclasses build their inputs to the MLP, call ``_build_mlp(inputs)`` and define
    ``features(obs)``. The network works in normalised action units; ``forward`` returns the
    mean action in the robot's units (de-normalised), which is what the policy node commands.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden, activation: str, head: str):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f'head {head!r} is not one of {HEADS}')
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation {activation!r} is not one of {tuple(ACTIVATIONS)}')
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden, self.activation, self.head = tuple(int(h) for h in hidden), activation, head
        self.register_buffer('obs_mean', torch.zeros(self.obs_dim))
        self.register_buffer('obs_std', torch.ones(self.obs_dim))
        self.register_buffer('act_mean', torch.zeros(self.act_dim))
        self.register_buffer('act_std', torch.ones(self.act_dim))

    def _build_mlp(self, inputs: int) -> None:
        self.body = mlp([int(inputs), *self.hidden], self.activation)
        self.body.append(ACTIVATIONS[self.activation]())
        self.mean_head = nn.Linear(self.hidden[-1], self.act_dim)
        if self.head == 'gaussian':
            self.log_std_head = nn.Linear(self.hidden[-1], self.act_dim)

    def set_normalization(self, obs_norm, act_norm) -> None:
        for name, value in (('obs_mean', obs_norm.mean), ('obs_std', obs_norm.std),
                            ('act_mean', act_norm.mean), ('act_std', act_norm.std)):
            getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32))

    def normalized_distribution(self, obs: torch.Tensor):
        """Return (mean, log_std or None) in normalised action units."""
        h = self.features(obs)
        mean = self.mean_head(h)
        if self.head == 'gaussian':
            log_std = self.log_std_head(h).clamp(LOG_STD_MIN, LOG_STD_MAX)
            return mean, log_std
        return mean, None

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.act_mean) / self.act_std

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _ = self.normalized_distribution(obs)
        return mean * self.act_std + self.act_mean


class MLPPolicy(_PolicyHead):
    """pi(a | s): normalise s, an MLP, then a deterministic or diagonal-Gaussian head."""

    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), activation='relu',
                 head='deterministic'):
        super().__init__(obs_dim, act_dim, hidden, activation, head)
        self._build_mlp(self.obs_dim)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body((obs - self.obs_mean) / self.obs_std)

    def description(self) -> dict:
        return {'type': 'mlp', 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
                'hidden': list(self.hidden), 'activation': self.activation, 'head': self.head}

    @classmethod
    def from_description(cls, description: dict) -> 'MLPPolicy':
        return cls(obs_dim=description['obs_dim'], act_dim=description['act_dim'],
                   hidden=description['hidden'], activation=description['activation'],
                   head=description['head'])


def conv_encoder(channels: tuple, activation: str) -> nn.Sequential:
    """A stack of stride-2 convolutions over a one-channel image, flattened at the end.

    The first layer is 5x5, the others 3x3 (the shape of DAVE-2's strided layers, scaled
    down); each halves the image, rounding up, so any image of 4 pixels or more fits.
    """
    layers, previous = [], 1
    for i, out in enumerate(channels):
        kernel = 5 if i == 0 else 3
        layers += [nn.Conv2d(previous, int(out), kernel, stride=2, padding=kernel // 2),
                   ACTIVATIONS[activation]()]
        previous = int(out)
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def pooled_image_normalization(mean, std, layout) -> tuple:
    """Per-dimension (mean, std) with each image's pixels sharing one pooled mean and std.

    A pixel that never changes in the training images (the sky) would otherwise get the
    floor std and amplify any later pixel noise a thousand-fold; one mean and std per image
    (those of all its pixels together) keeps the input scale sane and pixel contrasts intact.
    """
    mean = np.array(mean, dtype=np.float64, copy=True)
    std = np.array(std, dtype=np.float64, copy=True)
    for start, height, width in layout:
        pixels = slice(start, start + height * width)
        m, s = mean[pixels], std[pixels]
        pooled_mean = float(m.mean())
        pooled_var = float(np.mean(s ** 2 + m ** 2)) - pooled_mean ** 2
        mean[pixels] = pooled_mean
        std[pixels] = max(math.sqrt(max(pooled_var, 0.0)), 1e-3)
    return mean, std


def check_image_layout(layout, obs_dim: int) -> tuple:
    """Return ``layout`` as ((start, height, width), ...), or raise if it does not fit."""
    try:
        out = tuple((int(start), int(height), int(width)) for start, height, width in layout)
    except (TypeError, ValueError):
        raise ValueError(f'image_layout must be a list of [start, height, width], got '
                         f'{layout!r}') from None
    if not out:
        raise ValueError('a conv policy needs at least one image in its image_layout')
    end = 0
    for start, height, width in sorted(out):
        if height < 1 or width < 1 or start < end or start + height * width > obs_dim:
            raise ValueError(f'image_layout {list(map(list, out))} does not fit an observation '
                             f'of {obs_dim} values (images must not overlap or run past it)')
        end = start + height * width
    return out


class ConvPolicy(_PolicyHead):
    """pi(a | s) from camera pixels and a vector: a small CNN per image, an MLP, then a head.

    End-to-end pixels to steering, as ALVINN (Pomerleau, "ALVINN: An Autonomous Land Vehicle
    in a Neural Network", NIPS 1988) and DAVE-2 (Bojarski et al., "End to End Learning for
    Self-Driving Cars", arXiv:1604.07316, 2016) do, at toy size. The observation is the task's
    flat vector; ``image_layout`` (from ``ObservationSpec.image_layout()``) says which slices
    are images. Each image goes through its own stride-2 conv stack; the features of all
    images and the remaining (vector) entries are concatenated and go through the MLP and the
    deterministic or Gaussian head, as in ``MLPPolicy``. Inputs are normalised per dimension
    by buffers, with one pooled mean and std per image (``set_normalization``).
    """

    def __init__(self, obs_dim: int, act_dim: int, image_layout, hidden=(256, 256),
                 activation='relu', head='deterministic', channels=(16, 32, 32)):
        super().__init__(obs_dim, act_dim, hidden, activation, head)
        self.image_layout = check_image_layout(image_layout, self.obs_dim)
        self.channels = tuple(int(c) for c in channels)
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f'channels must be positive layer widths, got {channels!r}')
        self.encoders = nn.ModuleList(conv_encoder(self.channels, activation)
                                      for _ in self.image_layout)
        with torch.no_grad():
            features = sum(encoder(torch.zeros(1, 1, h, w)).shape[1]
                           for encoder, (_, h, w) in zip(self.encoders, self.image_layout))
        is_vector = np.ones(self.obs_dim, dtype=bool)
        for start, h, w in self.image_layout:
            is_vector[start:start + h * w] = False
        self.register_buffer('vector_index', torch.from_numpy(np.flatnonzero(is_vector)),
                             persistent=False)
        self._build_mlp(features + int(is_vector.sum()))

    def set_normalization(self, obs_norm, act_norm) -> None:
        mean, std = pooled_image_normalization(obs_norm.mean, obs_norm.std, self.image_layout)
        super().set_normalization(Normalizer(mean=mean, std=std), act_norm)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        x = (obs - self.obs_mean) / self.obs_std
        batch = x.shape[0]
        parts = [encoder(x[:, start:start + h * w].reshape(batch, 1, h, w))
                 for encoder, (start, h, w) in zip(self.encoders, self.image_layout)]
        parts.append(x[:, self.vector_index])
        return self.body(torch.cat(parts, dim=1))

    def description(self) -> dict:
        return {'type': 'conv', 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
                'image_layout': [list(item) for item in self.image_layout],
                'channels': list(self.channels), 'hidden': list(self.hidden),
                'activation': self.activation, 'head': self.head}

    @classmethod
    def from_description(cls, description: dict) -> 'ConvPolicy':
        return cls(obs_dim=description['obs_dim'], act_dim=description['act_dim'],
                   image_layout=description['image_layout'], hidden=description['hidden'],
                   activation=description['activation'], head=description['head'],
                   channels=description['channels'])


def make_policy(spec, obs_dim: int, act_dim: int, hidden=(256, 256), activation='relu',
                head='deterministic'):
    """The policy network for a task: ``ConvPolicy`` if it sees an image, else ``MLPPolicy``."""
    layout = spec.observation.image_layout()
    if layout:
        if obs_dim != spec.observation.size:
            raise ValueError(f'the observations have {obs_dim} values; task {spec.name!r} '
                             f'has {spec.observation.size}, so its images cannot be located')
        return ConvPolicy(obs_dim, act_dim, layout, hidden=hidden, activation=activation,
                          head=head)
    return MLPPolicy(obs_dim, act_dim, hidden=hidden, activation=activation, head=head)


# Every network a checkpoint may hold, by the ``type`` in its description. The table is fixed
# in code: a checkpoint names a type, it never supplies code. Each class has
# ``from_description(description)``, ``description()``, ``obs_dim``, ``act_dim`` and a
# ``forward(obs)`` that returns the action in the robot's units.
NETWORK_TYPES = {
    'mlp': 'ilrl_ros.core.policies:MLPPolicy',
    'conv': 'ilrl_ros.core.policies:ConvPolicy',
    'actor_critic': 'ilrl_ros.core.algorithms.actor_critic:ActorCritic',
    'q_network': 'ilrl_ros.core.algorithms.dqn:QPolicy',
    'deterministic_actor': 'ilrl_ros.core.algorithms.td3:DeterministicActor',
    'squashed_gaussian_actor': 'ilrl_ros.core.algorithms.sac:SquashedGaussianActor',
    'linear_feedback': 'ilrl_ros.core.algorithms.lqr:LinearFeedbackPolicy',
    'mpc': 'ilrl_ros.core.algorithms.mbrl:MPCPolicy',
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
                  obs_dim if 'ensemble_size' in d else 0)
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
    values = _values_bound(description, hidden, channels, layout)
    if values > MAX_NETWORK_VALUES:
        raise ValueError(f'the network described would hold up to {values} numbers; at most '
                         f'{MAX_NETWORK_VALUES} are built')


def build_policy(description: dict):
    """Rebuild a network from its ``description()`` (as stored in a checkpoint).

    Whatever is wrong with the description, the error is a ValueError that says what.
    """
    check_description(description)
    module_name, class_name = NETWORK_TYPES[description['type']].split(':')
    network_class = getattr(importlib.import_module(module_name), class_name)
    try:
        return network_class.from_description(description)
    except KeyError as error:
        raise ValueError(f'network description lacks {error.args[0]!r}') from None
    except ValueError:
        raise
    except Exception as error:
        raise ValueError(f'network {description["type"]!r} cannot be built from its '
                         f'description: {type(error).__name__}: {error}') from None
