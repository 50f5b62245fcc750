"""The MuJoCo robot: gymnasium's MuJoCo environments behind joint states and efforts.

Its readings are the model's own state, its spec-driven reward and end are gymnasium's, its
experts solve the tasks, and a spec it cannot run is refused by name.
"""

import copy
import math
import subprocess
import sys

import gymnasium as gym
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from ilrl_ros.core.envs.mujoco_robot import make_mujoco_env
from ilrl_ros.core.episode.measures import fingertip_distance, joint_effort
from ilrl_ros.core.experts.two_link_reach import two_link_ik
from ilrl_ros.core.readings import JointReading
from ilrl_ros.core.spec import load_spec, parse_spec, SpecError
from ilrl_ros.core.tasks import make_env, make_expert, make_simulator

pytest.importorskip('mujoco')
_REACHER_SPEC = load_spec('mujoco_reacher')
# One simulator for the property tests: building one per example would cost a model load each.
_REACHER_ENV = make_env(_REACHER_SPEC)


@pytest.fixture(scope='module')
def reacher_spec():
    return load_spec('mujoco_reacher')


@pytest.fixture(scope='module')
def pendulum_spec():
    return load_spec('mujoco_inverted_pendulum')


def test_reacher_readings_are_the_model_state_and_its_reward_is_gymnasiums(reacher_spec):
    ours = make_env(reacher_spec)
    reference = gym.make('Reacher-v5').unwrapped
    ours.reset(seed=5)
    reference.reset(seed=5)
    rng = np.random.default_rng(5)
    for _ in range(20):
        # Efforts beyond the +-1 bounds, which both clip (gymnasium: the motors' ctrlrange).
        action = rng.uniform(-1.5, 1.5, 2)
        _, reward, _, _, info = ours.step(action)
        _, expected_reward, _, _, _ = reference.step(np.clip(action, -1.0, 1.0))
        joints = ours.current_readings()['joint_states']
        assert joints.names == ('joint0', 'joint1', 'target_x', 'target_y')
        np.testing.assert_allclose(joints.position, reference.data.qpos, atol=1e-12)
        np.testing.assert_allclose(joints.velocity, reference.data.qvel, atol=1e-12)
        # The efforts applied: 200 N m (the motors' gear) per unit of command; none on the
        # target's slides.
        np.testing.assert_allclose(joints.effort, [*(200.0 * np.clip(action, -1, 1)), 0, 0],
                                   atol=1e-9)
        # The spec's reward (fingertip distance by the arm's kinematics, plus the effort
        # cost) is gymnasium's, which measures the distance between the bodies in MuJoCo:
        # as MuJoCo left them, one 0.01 s substep before the step's final state (mj_step
        # integrates after computing positions), a few micrometres off.
        assert reward == pytest.approx(expected_reward, abs=1e-4)
        assert info['gymnasium']['reward'] == pytest.approx(expected_reward, abs=1e-12)


def test_inverted_pendulum_matches_gymnasium_to_its_fall(pendulum_spec):
    ours = make_env(pendulum_spec)
    reference = gym.make('InvertedPendulum-v5')
    for seed in (0, 1):
        obs, _ = ours.reset(seed=seed)
        expected, _ = reference.reset(seed=seed)
        np.testing.assert_allclose(obs, expected, atol=1e-6)
        rng = np.random.default_rng(seed)
        total = expected_total = 0.0
        for _ in range(1000):
            action = rng.uniform(-0.5, 0.5, 1)
            obs, reward, terminated, truncated, info = ours.step(action)
            expected, expected_reward, expected_end, _, _ = reference.step(action)
            np.testing.assert_allclose(obs, expected, atol=1e-5)
            total += reward
            expected_total += expected_reward
            assert terminated == expected_end
            if terminated or truncated:
                break
        # Random pushes topple the pole within a second; each step upright scores 1.
        assert info['outcome'] == 'failure' and 5 <= total == expected_total < 50


def test_reacher_expert_touches_the_target(reacher_spec):
    env = make_env(reacher_spec)
    expert = make_expert(reacher_spec)
    returns = []
    for seed in range(5):
        env.reset(seed=seed)
        done, total = False, 0.0
        while not done:
            _, reward, terminated, truncated, info = env.step(
                expert.act(env.current_readings()))
            total += reward
            done = terminated or truncated
        assert info['outcome'] == 'success'
        returns.append(total)
    # Random efforts score about -43 per episode (measured: 1000 episodes of the two motors
    # drawn uniformly in [-1, 1]); SAC's published Reacher returns are about -4.
    assert -8.0 < np.mean(returns) < -2.0


def test_lqr_expert_balances_the_pole_for_the_whole_episode(pendulum_spec):
    env = make_env(pendulum_spec)
    expert = make_expert(pendulum_spec)
    env.reset(seed=3)
    done, total = False, 0.0
    while not done:
        _, reward, terminated, truncated, info = env.step(expert.act(env.current_readings()))
        total += reward
        done = terminated or truncated
    assert (info['outcome'], total) == ('success', 1000.0)


def test_two_link_ik_puts_the_tip_on_the_point():
    assert two_link_ik(0.21, 0.0, 0.1, 0.11) == pytest.approx((0.0, 0.0), abs=1e-6)
    # Elbow at a right angle: the tip at (0.1, 0.11); the hint picks the elbow's sign.
    assert two_link_ik(0.1, 0.11, 0.1, 0.11, elbow_hint=1.0) == \
        pytest.approx((0.0, math.pi / 2))
    shoulder, elbow = two_link_ik(0.1, 0.11, 0.1, 0.11, elbow_hint=-1.0)
    tip = (0.1 * math.cos(shoulder) + 0.11 * math.cos(shoulder + elbow),
           0.1 * math.sin(shoulder) + 0.11 * math.sin(shoulder + elbow))
    assert elbow < 0 and tip == pytest.approx((0.1, 0.11))


def _variant(spec, **changes):
    raw = copy.deepcopy(spec.raw)
    for path, value in changes.items():
        *parents, key = path.split('__')
        node = raw
        for parent in parents:
            node = node[int(parent)] if parent.isdigit() else node[parent]
        node[key] = value
    return raw


def test_a_spec_the_model_cannot_run_is_refused_by_name(reacher_spec):
    with pytest.raises(SpecError, match=r"robot.params.env: 'Reacher-v9' is not one of .*"
                                        r'Reacher-v5'):
        parse_spec(_variant(reacher_spec, robot__params__env='Reacher-v9'))
    with pytest.raises(SpecError, match='robot.params.env: missing'):
        parse_spec(_variant(reacher_spec, robot__params={}))
    refused = {
        'the actuated joint\\(s\\) joint1 of Reacher-v5 are missing':
            dict(action__fields=['joint0'], action__low=[-1.0], action__high=[1.0]),
        "'target_x' is not a joint an actuator of Reacher-v5 drives":
            dict(action__fields=['joint0', 'target_x']),
        'control_rate_hz: 20 Hz, but Reacher-v5 steps every 0.02 s; expected 50 Hz':
            dict(control_rate_hz=20.0),
        "exceed its actuator's control range \\[-1, 1\\]": dict(action__high=[2.0, 1.0]),
        'the arm of Reacher-v5 has links \\(0.1, 0.11\\)': dict(reward__0__link1=0.2),
        "'wrist' is not a joint of Reacher-v5": dict(reward__0__elbow='wrist'),
    }
    for message, changes in refused.items():
        spec = parse_spec(_variant(reacher_spec, **changes))
        with pytest.raises(SpecError, match=message):
            make_simulator(spec)


def test_a_missing_mujoco_is_named_when_a_mujoco_task_is_built(monkeypatch, reacher_spec):
    # As if mujoco were not installed: importing it raises ImportError.
    monkeypatch.setitem(sys.modules, 'mujoco', None)
    with pytest.raises(ImportError, match="needs the Python package 'mujoco'"):
        make_mujoco_env('Reacher-v5')
    with pytest.raises(ImportError, match='pip install -r requirements.txt'):
        make_env(reacher_spec)


def test_mujoco_is_imported_only_when_a_mujoco_task_is_built():
    # A fresh interpreter: loading the spec and the task modules leaves MuJoCo unloaded.
    code = ('import sys; from ilrl_ros.core.spec import load_spec; '
            'import ilrl_ros.core.tasks; '
            "spec = load_spec('mujoco_reacher'); print('mujoco' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == ['False']


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=60, deadline=None)
@given(actions=st.lists(st.lists(finite_or_not, min_size=1, max_size=3), min_size=1,
                        max_size=5))
def test_any_effort_command_is_refused_by_name_or_applied_within_the_bounds(actions):
    env = _REACHER_ENV
    env.reset(seed=0)
    for action in actions:
        if len(action) != 2 or not np.all(np.isfinite(action)):
            with pytest.raises(ValueError, match='task expects 2 .joint0, joint1.|not finite'):
                env.step(action)
            continue
        env.step(action)
        joints = env.current_readings()['joint_states']
        assert np.all(np.isfinite(joints.position)) and np.all(np.isfinite(joints.velocity))
        np.testing.assert_allclose(joints.effort[:2], 200.0 * np.clip(action, -1.0, 1.0),
                                   atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(names=st.lists(st.sampled_from(['joint0', 'joint1', 'target_x', 'target_y', 'x']),
                      max_size=5),
       values=st.lists(finite_or_not, max_size=5))
def test_fingertip_and_effort_measures_refuse_bad_joint_states_by_name(names, values):
    reading = JointReading(stamp_ns=1, names=tuple(names), position=np.array(values),
                           velocity=np.array(values), effort=np.array(values))
    term = _REACHER_SPEC.reward[0]
    for measure in (lambda: fingertip_distance(reading, term),
                    lambda: joint_effort(reading, 'joint0')):
        try:
            value = measure()
        except ValueError as error:
            assert 'joint' in str(error)
        else:
            assert math.isfinite(value)
