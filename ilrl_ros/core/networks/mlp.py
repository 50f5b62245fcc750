"""Policy networks: an MLP or a small image CNN, deterministic or Gaussian head, normalised.

An MLP serves vector observations, ``ConvPolicy`` tasks that see a camera image. ``mlp``
builds the plain layer stacks the other networks are made of.
"""

import math

import numpy as np
import torch
from torch import nn

from ilrl_ros.core.data import Normalizer

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
