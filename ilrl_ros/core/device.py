"""Which torch device a training run uses: one resolver for every trainer's ``device`` setting.

``'cpu'`` (every trainer's default: small networks train as fast there, and a run is
repeatable bit for bit), ``'cuda'`` / ``'cuda:N'`` (a GPU, refused with the reason when
there is none), or ``'auto'`` (the first GPU when torch sees one, else the CPU). A trainer
builds its networks on the CPU from the seeded generator, then moves them, so a seed starts
from the same weights on every device; checkpoints always hold CPU tensors. Torch is
imported when a device is resolved, not with this module: configs check their setting with
``check_device_setting`` without it (the tabular algorithms' commands start faster).
"""

import re

DEVICE_CHOICES = ('auto', 'cpu', 'cuda')
"""What the ``--device`` flag offers (``cuda:N`` names the N-th GPU as well)."""

_PATTERN = re.compile(r'^(auto|cpu|cuda(:\d+)?)$')


def available_devices() -> list:
    """The devices this process can train on: 'cpu' and each GPU torch sees."""
    import torch
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ['cpu', *(f'cuda:{i}' for i in range(gpus))]


def resolve_device(device='cpu'):
    """The ``torch.device`` for a ``device`` setting: 'auto', 'cpu', 'cuda' or 'cuda:N'.

    A ``torch.device`` passes through (checked like its name). A GPU that is not there is a
    ``ValueError`` naming the setting and the devices this machine has.
    """
    import torch
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not _PATTERN.match(device.strip().lower()):
        raise ValueError(f'device (--device) must be auto, cpu, cuda or cuda:N, got '
                         f'{device!r}')
    name = device.strip().lower()
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cpu':
        return torch.device('cpu')
    available = available_devices()
    if not torch.cuda.is_available():
        raise ValueError(f'device (--device) {device!r} asks for CUDA, but this PyTorch '
                         f'({torch.__version__}) sees no CUDA GPU; available: '
                         f'{", ".join(available)} (use --device cpu or auto)')
    index = int(name.split(':')[1]) if ':' in name else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ValueError(f'device (--device) {device!r} names GPU {index}, but this machine '
                         f'has {torch.cuda.device_count()}; available: '
                         f'{", ".join(available)}')
    return torch.device('cuda', index)


def check_device_setting(owner: str, device) -> None:
    """Refuse a ``device`` setting that is not a known form (configs' ``__post_init__``).

    Only the form: whether a GPU is there is asked when training starts, so a config that
    names 'cuda' can still be written, saved and read on a machine without one.
    """
    if type(device).__name__ == 'device':  # a torch.device, checked when resolved
        device = str(device)
    if not isinstance(device, str) or not _PATTERN.match(device.strip().lower()):
        raise ValueError(f'{owner}.device must be auto, cpu, cuda or cuda:N, got {device!r}')
