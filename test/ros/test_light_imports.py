"""Nodes that run no network, and `ilrl` commands that train nothing, start without torch.

Importing torch costs 1.2-1.4 s of CPU and 190 MB per process; a launch starts up to nine
node processes, and a fleet nine per robot. Only the policy and the learner need it, and
the `ilrl` verbs that train.
"""

import contextlib
import functools
import io
import json
import subprocess
import sys

from hypothesis import given, settings, strategies as st
from ilrl_testing import REPO

from ilrl_ros.cli import build_parser, command_of
from ilrl_ros.nodes.start import NODES

NEED_TORCH = {'policy', 'learner'}


def test_only_the_policy_and_the_learner_import_torch():
    light = [node for node in NODES if node not in NEED_TORCH]
    code = ('import importlib, json, sys\n'
            'out = {}\n'
            'for node in sys.argv[1:]:\n'
            "    importlib.import_module('ilrl_ros.nodes.' + node)\n"
            "    out[node] = 'torch' in sys.modules\n"
            'print(json.dumps(out))')
    done = subprocess.run([sys.executable, '-c', code, *light], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {node: False for node in light}, \
        f'these nodes load torch (or a node before them did): {loaded}'


def test_ilrl_commands_that_train_nothing_load_no_torch():
    code = ('import sys\n'
            'from ilrl_ros.cli import main\n'
            'for argv in (["--help"], ["collect", "--help"], ["convert", "--help"]):\n'
            '    try:\n'
            '        main(argv)\n'
            '    except SystemExit:\n'
            '        pass\n'
            'print("torch" in sys.modules)')
    done = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == 'False', done.stdout[-500:]


WORDS = ('train', 'learn', 'collect', 'sim', 'info', '--help', '-h', 'bc', 'sac', 'awr',
         '--task', 'pendulum', '--data', 'd.npz', '-o', 'out', '--steps', '10', '--lr')


@settings(max_examples=40)
@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=5))
def test_the_parser_without_unused_verbs_parses_any_command_line_as_the_whole_one(argv):
    def parse(parser):
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            try:
                return vars(parser.parse_args(argv))
            except SystemExit as stop:
                return ('exit', stop.code)

    assert parse(_parser(command_of(argv))) == parse(_parser(None))


@functools.lru_cache(maxsize=None)
def _parser(command):
    """Parsers are built once per verb (the whole one, for None): parsing leaves them as is."""
    return build_parser(command)
