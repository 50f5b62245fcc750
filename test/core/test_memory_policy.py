"""Policies with memory: the stack's padding, the GRU's reset, sequence training, checkpoints."""

import copy

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms.bc import BCConfig, train
from ilrl_ros.core.algorithms.bc_memory import check_chunk
from ilrl_ros.core.algorithms.ppo_recurrent import RecurrentPPOConfig, sequences
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.networks import build_policy
from ilrl_ros.core.networks.memory import (check_memory, MemoryActorCritic, MemoryCore,
                                           MemoryPolicy)
from ilrl_ros.core.rl.evaluation import evaluate_policy, reset_memory
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_env

ANGLE = load_spec('pendulum_angle')


def _gru_policy(seed=0) -> MemoryPolicy:
    torch.manual_seed(seed)
    return MemoryPolicy(2, 1, hidden=(8,), memory='gru', memory_size=6).eval()


def _act(policy, obs) -> torch.Tensor:
    with torch.no_grad():
        return policy(torch.tensor([obs], dtype=torch.float32))[0]


def test_the_pendulum_angle_task_observes_cos_and_sin_only():
    assert ANGLE.observation.labels() == ['joint_states.pendulum_joint.cos',
                                          'joint_states.pendulum_joint.sin']
    obs, _ = make_env(ANGLE).reset(seed=3)
    assert obs.shape == (2,)
    assert abs(float(obs[0]) ** 2 + float(obs[1]) ** 2 - 1.0) < 1e-5


def test_the_stack_pads_the_first_step_with_the_first_observation():
    core = MemoryCore(1, 'stack', history=3)
    state = core.initial_state(1)
    windows = []
    for value, fresh in ((1.0, True), (2.0, False), (3.0, False), (4.0, False), (5.0, True)):
        features, state = core.step(torch.tensor([[value]]), state, torch.tensor([fresh]))
        windows.append(features[0].tolist())
    # Oldest first; an episode start (5.0) forgets 2, 3 and 4.
    assert windows == [[1, 1, 1], [1, 1, 2], [1, 2, 3], [2, 3, 4], [5, 5, 5]]


def test_a_stack_of_one_is_the_observation_alone():
    core = MemoryCore(2, 'stack', history=1)
    features, state = core.step(torch.tensor([[0.5, -1.0]]), core.initial_state(1),
                                torch.tensor([True]))
    assert features.tolist() == [[0.5, -1.0]] and state.shape == (1, 0)


def test_reset_makes_the_gru_policy_act_as_a_fresh_one():
    policy, fresh = _gru_policy(), _gru_policy()
    assert fresh.state_dict().keys() == policy.state_dict().keys()
    first = _act(fresh, [0.3, -0.9])
    for obs in ([1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]):
        _act(policy, obs)
    # Without a reset the memory of three steps changes the answer ...
    carried = _act(policy, [0.3, -0.9])
    assert (carried - first).abs().max() > 1e-4
    # ... after it the answer is a fresh policy's, to the last bit of float32 work.
    policy.reset()
    assert torch.allclose(_act(policy, [0.3, -0.9]), first, atol=1e-6, rtol=0.0)


def test_sequences_give_what_steps_give_with_episode_starts_inside():
    torch.manual_seed(1)
    for kind in ('gru', 'stack'):
        core = MemoryCore(3, kind, history=4, memory_size=5)
        x = torch.randn(4, 9, 3)
        fresh = torch.zeros(4, 9, dtype=torch.bool)
        fresh[:, 0] = True
        fresh[1, 4] = fresh[3, 7] = True
        whole, last = core.sequence(x, core.initial_state(4), fresh)
        state, steps = core.initial_state(4), []
        for t in range(9):
            features, state = core.step(x[:, t], state, fresh[:, t])
            steps.append(features)
        assert torch.allclose(whole, torch.stack(steps, 1), atol=1e-6)
        assert torch.allclose(last, state, atol=1e-6)


def test_sequences_cut_each_environment_in_time_order():
    x = torch.arange(12).reshape(6, 2)  # [T=6, N=2]: x[t, i] = 2 t + i
    assert sequences(x, 3).tolist() == [[0, 2, 4], [6, 8, 10], [1, 3, 5], [7, 9, 11]]
    assert sequences(x, 4).tolist() == [[0, 2, 4, 6], [1, 3, 5, 7]]  # the rest is cut


def _save_and_load(tmp_path, network):
    path = save_checkpoint(tmp_path / 'memory', network, algorithm='test', spec=ANGLE,
                           config={}, provenance={'test': True})
    return load_checkpoint(path, expected_spec=ANGLE)


@pytest.mark.parametrize('network', [
    MemoryPolicy(2, 1, hidden=(8,), memory='gru', memory_size=4),
    MemoryPolicy(2, 1, hidden=(8,), head='gaussian', memory='stack', history=3),
    MemoryActorCritic(2, 1, hidden=(8,), memory='gru', memory_size=4, action_low=[-2.0],
                      action_high=[2.0])])
def test_a_memory_checkpoint_round_trips_and_says_it_is_recurrent(tmp_path, network):
    network.eval()
    loaded = _save_and_load(tmp_path, network)
    assert loaded.recurrent and loaded.manifest['network']['memory'] == network.description()[
        'memory']
    network.reset()
    observations = [[1.0, 0.0], [0.9, 0.4], [0.7, 0.7], [0.4, 0.9]]
    expected = [_act(network, obs).numpy() for obs in observations]
    got = [loaded.act(np.array(obs)) for obs in observations]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    loaded.reset()
    np.testing.assert_allclose(loaded.act(np.array(observations[0])), expected[0], atol=1e-6)


def test_evaluate_policy_clears_the_memory_as_each_episode_starts():
    class Counting:
        recurrent = True
        resets = 0

        def reset(self):
            self.resets += 1

        def act(self, obs):
            return np.zeros(1)

    learner = Counting()
    evaluate_policy(make_env(ANGLE), learner, episodes=2, max_episode_steps=3)
    assert learner.resets == 2
    memoryless = Counting()
    memoryless.recurrent = False
    reset_memory(memoryless)
    assert memoryless.resets == 0


def _previous_observation_data(episodes=6, steps=40, seed=0) -> Demonstrations:
    """The action is the first observation of the previous step (the first step: its own).

    No function of the current observation gives it; one step of memory gives it exactly.
    """
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1.0, 1.0, (episodes, steps, 2)).astype(np.float32)
    act = np.concatenate([obs[:, :1, :1], obs[:, :-1, :1]], axis=1)
    n = episodes * steps
    return Demonstrations(observations=obs.reshape(n, 2), actions=act.reshape(n, 1),
                          episode=np.repeat(np.arange(episodes), steps),
                          stamp_ns=np.arange(n), reward=np.full(n, np.nan),
                          spec_json=ANGLE.to_json())


@pytest.mark.slow
def test_memory_learns_what_one_observation_cannot_say():
    data = _previous_observation_data()
    errors = {}
    for memory in ('none', 'stack', 'gru'):
        config = BCConfig(memory=memory, history=2, memory_size=16, hidden=(32,),
                          head='deterministic', steps=200, lr=3e-3, chunk=20, batch_size=80,
                          val_fraction=0.2, log_every=200)
        errors[memory] = train(data, config).val_loss
    # Uniform targets on [-1, 1] normalised: the memoryless error is about 1 (the variance);
    # a stack of 2 holds the answer, a GRU learns to keep it.
    assert errors['none'] > 0.6, errors
    assert errors['stack'] < 0.1, errors
    assert errors['gru'] < 0.3, errors


def test_a_trained_memory_policy_starts_each_episode_fresh():
    data = _previous_observation_data(episodes=3, steps=10)
    policy = train(data, BCConfig(memory='gru', memory_size=4, hidden=(8,), steps=3,
                                  chunk=4, val_fraction=0.0, log_every=3)).policy
    assert isinstance(policy, MemoryPolicy) and policy._state is None


finite = st.one_of(st.integers(-10, 100_000), st.floats(allow_nan=True), st.text(max_size=3),
                   st.none(), st.booleans())


@settings(max_examples=60, deadline=None)
@given(memory=st.one_of(st.sampled_from(['stack', 'gru']), st.text(max_size=6), st.none()),
       history=finite, memory_size=finite)
def test_bad_memory_settings_are_refused_by_name(memory, history, memory_size):
    good_memory = memory in ('stack', 'gru')
    good_history = isinstance(history, int) and not isinstance(history, bool) \
        and 1 <= history <= 64
    good_size = isinstance(memory_size, int) and not isinstance(memory_size, bool) \
        and 1 <= memory_size <= 4096
    description = {'type': 'memory_mlp', 'obs_dim': 2, 'act_dim': 1, 'hidden': [4],
                   'activation': 'relu', 'head': 'deterministic', 'memory': memory,
                   'history': history, 'memory_size': memory_size}
    if good_memory and good_history and good_size:
        check_memory(memory, history, memory_size)
        assert build_policy(description).recurrent
        return
    name = 'memory' if not good_memory else 'history' if not good_history else 'memory_size'
    with pytest.raises(ValueError, match=name):
        check_memory(memory, history, memory_size)
    with pytest.raises(ValueError, match=name):
        build_policy(description)
    if good_memory:
        with pytest.raises(ValueError, match=name):
            RecurrentPPOConfig(memory=memory, history=history, memory_size=memory_size)


@settings(max_examples=40, deadline=None)
@given(chunk=finite)
def test_a_bad_chunk_is_refused(chunk):
    if isinstance(chunk, int) and not isinstance(chunk, bool) and 1 <= chunk <= 10_000:
        assert check_chunk(chunk) == chunk
        return
    with pytest.raises(ValueError, match='chunk'):
        check_chunk(chunk)
    data = _previous_observation_data(episodes=2, steps=4)
    with pytest.raises(ValueError, match='chunk'):
        train(data, BCConfig(memory='gru', chunk=chunk, steps=1))


def test_bc_with_memory_refuses_sample_weights_and_the_mdn_head():
    data = _previous_observation_data(episodes=2, steps=4)
    with pytest.raises(ValueError, match='weights'):
        train(data, BCConfig(memory='stack', steps=1), weights=np.ones(len(data)))
    with pytest.raises(ValueError, match='head'):
        train(data, BCConfig(memory='stack', head='mdn', steps=1))


def test_a_huge_memory_is_refused_before_it_is_built():
    description = {'type': 'memory_actor_critic', 'obs_dim': 4096, 'act_dim': 1,
                   'hidden': [4096, 4096], 'activation': 'tanh', 'memory': 'stack',
                   'history': 64, 'memory_size': 1}
    with pytest.raises(ValueError, match='numbers'):
        build_policy(copy.deepcopy(description))
