"""A checkpoint as the expert (a teacher): names, rollouts, DAgger labels and refusals."""

from pathlib import Path

from hypothesis import given, strategies as st
import numpy as np
import pytest
import torch
import yaml

from ilrl_ros.core.algorithms.bc import BCConfig
from ilrl_ros.core.algorithms.dagger import DAggerConfig, run as run_dagger
from ilrl_ros.core.checkpoint import save_checkpoint
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.experts.teacher import (CheckpointExpert, make_named_expert,
                                          parse_expert_name)
from ilrl_ros.core.rollouts import rollout
from ilrl_ros.core.spec import load_spec, parse_spec, resolve_spec_path
from ilrl_ros.core.networks import MLPPolicy
from ilrl_ros.core.tasks import make_env, TrackExpert

REPO = Path(__file__).resolve().parents[2]
STUDENT = 'track_follow_camera'


def constant_checkpoint(path, task: str, value: float):
    """A real checkpoint of ``task`` whose policy always outputs ``value``."""
    spec = load_spec(task)
    policy = MLPPolicy(spec.observation.size, spec.action.size, hidden=(4,), head='gaussian')
    with torch.no_grad():
        policy.mean_head.weight.zero_()
        policy.mean_head.bias.zero_()
        policy.act_mean.copy_(torch.full((spec.action.size,), float(value)))
    return save_checkpoint(path, policy, algorithm='test-constant', spec=spec, config={},
                           provenance={'made_by': 'test_teacher_expert'})


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
    """A lidar-task checkpoint that always commands (0.1 m/s, 0.1 rad/s)."""
    return constant_checkpoint(tmp_path_factory.mktemp('teacher') / 'lidar', 'track_follow',
                               0.1)


def edited_spec(task: str, edit):
    raw = yaml.safe_load(resolve_spec_path(task).read_text())
    edit(raw)
    return parse_spec(raw)


@pytest.mark.parametrize('name, expected', [
    ('', ('scripted', '')), ('scripted', ('scripted', '')),
    ('checkpoint:/a/b', ('checkpoint', '/a/b')), ('checkpoint:x', ('checkpoint', 'x')),
    ('checkpoint:checkpoint:y', ('checkpoint', 'checkpoint:y'))])
def test_expert_names(name, expected):
    assert parse_expert_name(name) == expected


@pytest.mark.parametrize('name, message', [
    ('checkpoint:', 'the checkpoint folder is missing'),
    ('checkpoint:  ', 'the checkpoint folder is missing'),
    ('pure_pursuit', "expert 'pure_pursuit' is not known"),
    ('Scripted', "expert 'Scripted' is not known"),
    ('checkpoint:a\x00b', 'NUL'), (None, 'not a NoneType'), (3, 'not a int')])
def test_bad_expert_names_are_refused_with_what_was_expected(name, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_expert_name(name)
    assert "expected 'scripted'" in str(error.value) and 'checkpoint:<folder>' in str(error.value)


@given(st.one_of(st.text(max_size=40), st.binary(max_size=10), st.integers(), st.none(),
                 st.lists(st.text(max_size=3), max_size=2)))
def test_any_expert_parameter_is_parsed_or_refused_with_a_value_error(value):
    try:
        kind, path = parse_expert_name(value)
    except ValueError as error:
        assert 'expert' in str(error) and 'checkpoint:<folder>' in str(error)
        return
    assert isinstance(value, str)
    if kind == 'scripted':
        assert value in ('', 'scripted') and path == ''
    else:
        assert kind == 'checkpoint' and value == 'checkpoint:' + path and path.strip()


def test_the_scripted_name_is_the_tasks_expert():
    assert isinstance(make_named_expert(load_spec('track_follow'), 'scripted'), TrackExpert)


def test_a_lidar_teacher_drives_the_camera_robot_and_labels_its_states(teacher):
    spec = load_spec(STUDENT)
    expert = make_named_expert(spec, f'checkpoint:{teacher}')
    assert isinstance(expert, CheckpointExpert)
    # The teacher reads the lidar and odometry of the camera robot, not its camera.
    assert expert.sources == ('scan', 'odom') and expert.spec.name == 'track_follow'
    result = rollout(make_env(spec), expert, steps=30, seed=4)
    data = result.data
    # The rows hold the student's observation (32x24 image + 2 odometry values), the labels
    # the teacher's constant action, which is also what was executed (beta = 1).
    assert data.observations.shape == (30, 32 * 24 + 2)
    np.testing.assert_allclose(data.actions, np.full((30, 2), 0.1), atol=1e-6)
    np.testing.assert_allclose(result.executed, np.full((30, 2), 0.1), atol=1e-6)
    # 0.1 m/s for 3 s, the robot's speed shows in the student's odometry column (vx scaled).
    vx_scale = spec.observation.fields[1].scale[0]
    assert data.observations[-1, -2] == pytest.approx(0.1 * vx_scale, rel=0.05)


def test_the_teacher_labels_the_states_a_student_drives_into(teacher):
    spec = load_spec(STUDENT)
    expert = make_named_expert(spec, f'checkpoint:{teacher}')
    # DAgger's later rounds: the learner drives (here: stands still), the teacher labels.
    result = rollout(make_env(spec), expert, lambda obs: np.zeros(2), steps=20, beta=0.0,
                     seed=1)
    np.testing.assert_allclose(result.executed, 0.0)
    np.testing.assert_allclose(result.data.actions, 0.1, atol=1e-6)
    assert not result.from_expert.any()


@pytest.fixture(scope='module')
def teacher_dagger(teacher):
    # Two rounds: the teacher drives round 1, the learner round 2, the teacher labels all
    # (a lidar student here, so that the fits are quick).
    spec = load_spec('track_follow')
    config = DAggerConfig(rounds=2, round_steps=(20, 20), eval_episodes=0,
                          bc=BCConfig(steps=3, batch_size=8, hidden=(8,), log_every=3,
                                      val_fraction=0.0))
    return run_dagger(spec, config, expert=make_named_expert(spec, f'checkpoint:{teacher}'))


def test_dagger_rounds_with_a_teacher(teacher_dagger):
    result = teacher_dagger
    assert [r['dataset_size'] for r in result.rounds] == [20, 40]
    assert [r['expert_fraction'] for r in result.rounds] == [1.0, 0.0]
    np.testing.assert_allclose(result.data.actions, 0.1, atol=1e-6)
    assert result.data.observations.shape == (40, 38)


def test_a_teacher_with_another_action_space_is_refused_naming_both(tmp_path):
    pendulum = constant_checkpoint(tmp_path / 'pendulum', 'pendulum', 1.0)
    with pytest.raises(ValueError) as error:
        make_named_expert(load_spec(STUDENT), f'checkpoint:{pendulum}')
    text = str(error.value)
    assert "task 'pendulum'" in text and f"student task '{STUDENT}'" in text
    assert 'float64_multi_array [pendulum_joint]' in text and 'twist [linear.x, angular.z]' in text
    # Same fields, other bounds: refused too, with both bounds.
    slow = edited_spec(STUDENT, lambda raw: raw['action'].update(high=[0.1, 2.84]))
    teacher = constant_checkpoint(tmp_path / 'lidar', 'track_follow', 0.0)
    with pytest.raises(ValueError, match=r'\[0.22, 2.84\].*\[0.1, 2.84\]'):
        CheckpointExpert(slow, str(teacher))


def test_a_teacher_needs_the_students_sources_and_rate(teacher):
    def rename(raw):
        raw['sources']['lidar'] = raw['sources'].pop('scan')
        for item in raw['reward'] + raw['termination']['failure']:
            if item.get('source') == 'scan':
                item['source'] = 'lidar'
    no_scan = edited_spec(STUDENT, rename)
    with pytest.raises(ValueError, match="reads source 'scan' \\(laser_scan\\), which the "
                       f"student task '{STUDENT}' does not have; it has camera"):
        make_named_expert(no_scan, f'checkpoint:{teacher}')
    fast = edited_spec(STUDENT, lambda raw: raw.update(control_rate_hz=20.0))
    with pytest.raises(ValueError, match='acts at 10 Hz but the student task'):
        make_named_expert(fast, f'checkpoint:{teacher}')


def test_a_missing_teacher_checkpoint_is_refused(tmp_path):
    with pytest.raises(ValueError, match='nothing'):
        make_named_expert(load_spec(STUDENT), f'checkpoint:{tmp_path / "nothing"}')


def test_collect_with_a_teacher_from_the_command_line(teacher, tmp_path, capsys):
    from ilrl_ros.cli import main
    out = tmp_path / 'taught.npz'
    assert main(['collect', '--task', STUDENT, '--steps', '15', '--expert',
                 f'checkpoint:{teacher}', '-o', str(out)]) == 0
    data = Demonstrations.load(out)
    assert data.observations.shape == (15, 770)
    np.testing.assert_allclose(data.actions, 0.1, atol=1e-6)
    assert main(['collect', '--task', 'pendulum', '--steps', '5', '--expert',
                 f'checkpoint:{teacher}', '-o', str(tmp_path / 'x.npz')]) == 2
    assert "student task 'pendulum'" in capsys.readouterr().err
    assert not (tmp_path / 'x.npz').exists()
    assert main(['dagger', '--sim', '--task', 'pendulum', '--expert', 'teacher']) == 2
    assert "expert 'teacher' is not known" in capsys.readouterr().err
    # On a graph running already, the expert node's own parameter chooses the expert.
    assert main(['dagger', '--expert', f'checkpoint:{teacher}']) == 2
    assert "expert node's `expert` parameter" in capsys.readouterr().err
