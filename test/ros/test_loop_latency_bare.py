"""The latency benchmark's bare floor imports nothing of ilrl_ros: that makes it a floor."""

import ast
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

REPO = Path(__file__).resolve().parents[2]
BARE = REPO / 'bench' / 'latency' / 'bare.py'


def _ilrl_imports(tree: ast.AST) -> list:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or '')
    return sorted(n for n in names if n.split('.')[0] == 'ilrl_ros')


def test_no_import_statement_of_bare_names_ilrl_ros():
    """Also those inside functions, which importing the module does not run."""
    assert _ilrl_imports(ast.parse(BARE.read_text())) == []


def test_importing_the_bare_module_loads_nothing_of_ilrl_ros():
    # ilrl_ros is importable in the child (the checkout is on its path): nothing may take it.
    code = ('import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import latency.bare; '
            "print([m for m in sys.modules if m.split('.')[0] == 'ilrl_ros'])")
    done = subprocess.run([sys.executable, '-c', code, str(REPO), str(REPO / 'bench')],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == '[]', done.stdout + done.stderr


@pytest.mark.slow
def test_the_running_floor_reports_no_ilrl_ros_in_its_process(tmp_path):
    """The floor as the driver starts it: it builds its network from the plan and says so."""
    sys.path.insert(0, str(REPO / 'bench'))
    try:
        from latency.sut import bare_plan, make_checkpoint, sut_command
    finally:
        sys.path.remove(str(REPO / 'bench'))
    from ilrl_ros.core.spec import load_spec

    spec = load_spec('track_follow')
    checkpoint = make_checkpoint(spec, tmp_path, [8], 0)
    plan_path = tmp_path / 'plan.json'
    plan_path.write_text(json.dumps(bare_plan(spec, checkpoint)))
    command = sut_command('bare', 'track_follow', checkpoint, plan_path)
    assert command[1] == str(BARE)
    env = dict(os.environ, PYTHONPATH=str(REPO), RCUTILS_LOGGING_BUFFERED_STREAM='0')
    log_path = tmp_path / 'bare.log'
    with open(log_path, 'wb') as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                 env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 60.0
            while 'floor ready' not in log_path.read_text() and child.poll() is None:
                if time.monotonic() > deadline:
                    pytest.fail(f'the bare floor did not start:\n{log_path.read_text()}')
                time.sleep(0.1)
        finally:
            child.send_signal(signal.SIGTERM)
            code = child.wait(timeout=20)
    text = log_path.read_text()
    assert code == 0, text
    assert 'bare floor ready; ilrl_ros imported in this process: no' in text, text
