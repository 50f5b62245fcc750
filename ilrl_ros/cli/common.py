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


def grid_cell(text: str) -> tuple:
    """An argument naming a grid cell as ``column,row``, e.g. ``1,1``."""
    try:
        column, row = (int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a cell as column,row, e.g. 1,1; got '
                                         f'{text!r}') from None
    return column, row
