"""bench/soak.py runs end to end: a short soak prints its table and writes valid JSON."""

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_10_s_soak_prints_its_table_and_writes_json(tmp_path):
    out = tmp_path / 'soak.json'
    command = [sys.executable, str(REPO / 'bench' / 'soak.py'), '--duration-s', '10',
               '--swap-every-s', '1', '--bad-every', '3', '--progress-s', '5',
               '--domain-id', os.environ['ROS_DOMAIN_ID'], '--out', str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'gap p50 / p99 / max (ms)' in done.stdout, done.stdout
    assert '~/status counts over the window' in done.stdout
    results = json.loads(out.read_text())
    assert results['outcome'] == 'completed'
    assert results['commands']['received'] > 0
    assert results['floor']['received'] > 0
    kinds = {s['kind'] for s in results['swaps']}
    assert 'good' in kinds and len(kinds) > 1, results['swaps']
    assert all(s['as_intended'] for s in results['swaps']), results['swaps']
    assert results['node_counts']['window']['swaps'] >= 1
    assert len(results['progress']) >= 1
