"""How a deployed policy explores: each mode, each network, and always finite."""

from hypothesis import given, strategies as st
import numpy as np
import pytest
import torch

from ilrl_ros.core.networks import (ActorCritic, DeterministicActor, MLPPolicy, QPolicy,
                                    SquashedGaussianActor)
from ilrl_ros.core.networks.exploration import explore_action

LOW, HIGH = np.array([-2.0]), np.array([2.0])


def _networks():
    torch.manual_seed(0)
    table = np.linspace(-2.0, 2.0, 5, dtype=np.float32)[:, None]
    return {
        'sac': SquashedGaussianActor(3, 1, LOW, HIGH, hidden=(16,)),
        'td3': DeterministicActor(3, 1, LOW, HIGH, hidden=(16,)),
        'bc': MLPPolicy(3, 1, hidden=(16,), head='gaussian'),
        'ppo': ActorCritic(3, 1, hidden=(16,), low=LOW, high=HIGH),
        'dqn': QPolicy(3, 5, 1, hidden=(16,), action_table=table),
    }


@pytest.mark.parametrize('name', ['sac', 'td3', 'bc', 'ppo', 'dqn'])
def test_none_is_the_deterministic_action_and_the_others_vary(name):
    network = _networks()[name]
    obs = np.array([0.3, -0.2, 1.0])
    rng = np.random.default_rng(0)
    with torch.inference_mode():
        deterministic = network(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
    assert np.allclose(explore_action(network, obs, 'none', 0.3, LOW, HIGH, rng),
                       deterministic, atol=1e-6)
    for mode in ('sample', 'noise'):
        draws = np.array([explore_action(network, obs, mode, 0.5, LOW, HIGH, rng)
                          for _ in range(200)])
        assert np.all(np.isfinite(draws))
        assert draws.std() > 0.01, (name, mode)
        if name == 'dqn':
            # A Q-network explores among its own table rows only (epsilon-greedy).
            assert set(np.round(draws[:, 0], 4)) <= set(np.round(np.linspace(-2, 2, 5), 4))


def test_sac_samples_stay_in_the_squashed_bounds_and_noise_scales_with_the_range():
    nets = _networks()
    rng = np.random.default_rng(1)
    obs = np.zeros(3)
    samples = np.array([explore_action(nets['sac'], obs, 'sample', 0.0, LOW, HIGH, rng)
                        for _ in range(300)])
    assert samples.min() >= -2.0 and samples.max() <= 2.0
    noisy = np.array([explore_action(nets['td3'], obs, 'noise', 0.1, LOW, HIGH, rng)
                      for _ in range(2000)])
    # noise 0.1 of half the range (2): std 0.2 around the deterministic action.
    assert abs(noisy.std() - 0.2) < 0.02


def test_an_unknown_mode_is_refused_by_name():
    with pytest.raises(ValueError, match='sometimes'):
        explore_action(_networks()['td3'], np.zeros(3), 'sometimes', 0.1, LOW, HIGH,
                       np.random.default_rng())


@given(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3),
       st.sampled_from(['none', 'sample', 'noise']), st.floats(0.0, 1.0),
       st.sampled_from(['sac', 'td3', 'bc', 'ppo', 'dqn']))
def test_finite_observations_give_finite_actions(obs, mode, noise, name):
    action = explore_action(NETWORKS[name], np.array(obs), mode, noise, LOW, HIGH,
                            np.random.default_rng(0))
    assert action.shape == (1,) and np.all(np.isfinite(action))


NETWORKS = _networks()
