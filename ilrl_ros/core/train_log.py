"""Training logs a person can look at: TensorBoard events, a CSV file and a PNG of curves."""

import csv
import logging
import math
from pathlib import Path
import sys

logger = logging.getLogger(__name__)


def console_progress(label: str):
    """A ``progress(step, total, metrics)`` callback that prints training progress.

    On a terminal the line updates in place; in a log every report is a line of its own.
    """
    live = sys.stdout.isatty()

    def report(step, total, metrics):
        text = ' '.join(f'{k.split("/")[-1]}={v:.4g}' for k, v in metrics.items())
        line = f'{label}: step {step}/{total} {text}'
        if live:
            print('\r' + line, end='' if step < total else '\n', flush=True)
        else:
            print('    ' + line, flush=True)
    return report


class TrainingLog:
    """Collects ``train/...`` and ``eval/...`` scalars; writes them on ``close()``.

    With ``log_dir`` unset it only keeps the scalars in memory (``rows``).
    """

    def __init__(self, log_dir=None):
        self.log_dir = Path(log_dir) if log_dir else None
        self.rows: list = []
        self._tb = None
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(self.log_dir))
            except ImportError:
                logger.warning('tensorboard is not installed; writing CSV and PNG logs only')

    def scalar(self, name: str, value: float, step: int) -> None:
        self.rows.append({'step': int(step), 'name': name, 'value': float(value)})
        if self._tb is not None:
            self._tb.add_scalar(name, float(value), int(step))

    def series(self, name: str) -> tuple:
        points = [(r['step'], r['value']) for r in self.rows if r['name'] == name]
        return [p[0] for p in points], [p[1] for p in points]

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if not self.log_dir or not self.rows:
            return
        with open(self.log_dir / 'metrics.csv', 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=['step', 'name', 'value'])
            writer.writeheader()
            writer.writerows(self.rows)
        self.plot(self.log_dir / 'curves.png')

    def plot(self, path) -> None:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        names = sorted({r['name'] for r in self.rows})
        cols = min(3, len(names))
        rows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            steps, values = self.series(name)
            ax.plot(steps, values, marker='.' if len(steps) < 30 else None)
            ax.set_title(name)
            ax.set_xlabel('step')
            ax.grid(alpha=0.3)
            if name.endswith('loss') and min(values) > 0:
                ax.set_yscale('log')
        for ax in list(axes.flat)[len(names):]:
            ax.axis('off')
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
