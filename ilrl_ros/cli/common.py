"""Argument types and help texts that several ``ilrl`` verbs share."""

import argparse

MINARI_ROOT_HELP = ('Minari datasets folder (default: $MINARI_DATASETS_PATH, else '
                    '~/.minari/datasets)')


def floats(text: str) -> tuple:
    """An argument of comma-separated numbers, e.g. ``0.02,0.3``."""
    try:
        return tuple(float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected numbers separated by commas, e.g. '
                                         f'0.02,0.3; got {text!r}') from None
