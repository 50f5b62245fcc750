"""The mixture-density BC head: its likelihood by hand, two modes kept apart, checkpoints."""

import math

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms.bc import BCConfig, gaussian_nll, mdn_nll, train
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint
from ilrl_ros.core.data import Demonstrations, Normalizer
from ilrl_ros.core.networks import build_policy, check_description, MLPPolicy
from ilrl_ros.core.networks.mixture import (check_components, MAX_COMPONENTS,
                                            mixture_log_prob, MixtureDensityPolicy)
from ilrl_ros.core.spec import load_spec

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)  # 0.918939


def test_mdn_nll_by_hand_two_equal_components():
    # K = 2, D = 1: weights softmax(0, 0) = (1/2, 1/2), means -1 and +1, std 1, target 0.
    # Each density is N(0; +-1, 1) = exp(-1/2) / sqrt(2 pi), so the mixture is that too:
    # -log = 1/2 + log sqrt(2 pi) = 0.5 + 0.918939 = 1.418939.
    value = mdn_nll(torch.tensor([[0.0, 0.0]]), torch.tensor([[[-1.0], [1.0]]]),
                    torch.zeros(1, 2, 1), torch.tensor([[0.0]]))
    assert value.item() == pytest.approx(1.418939, abs=1e-5)


def test_mdn_nll_by_hand_unequal_components():
    # K = 2, D = 1: logits (log 3, 0) give weights (3/4, 1/4); component 1: mean 0, std 1;
    # component 2: mean 2, std 1/2; target 0.
    # N(0; 0, 1) = 1 / sqrt(2 pi) = 0.398942
    # N(0; 2, 1/2) = exp(-(2 / 0.5)^2 / 2) / (0.5 sqrt(2 pi)) = 0.797885 * exp(-8)
    #              = 0.797885 * 0.000335463 = 0.000267660
    # mixture = 0.75 * 0.398942 + 0.25 * 0.000267660 = 0.299207 + 0.0000669 = 0.299274
    # -log 0.299274 = 1.206397
    value = mdn_nll(torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([[[0.0], [2.0]]]),
                    torch.tensor([[[0.0], [math.log(0.5)]]]), torch.tensor([[0.0]]))
    assert value.item() == pytest.approx(1.206397, abs=1e-5)


def test_mdn_nll_weights_each_sample():
    # Two samples with NLLs 1.418939 (above) and 0.5 * 2^2 + c = 2 + 0.918939 = 2.918939
    # (one component, mean 0, std 1, target 2); weights (2, 0): the mean of w_i * loss_i is
    # (2 * 1.418939 + 0) / 2 = 1.418939.
    logits = torch.tensor([[0.0, 0.0], [0.0, -1e4]])
    means = torch.tensor([[[-1.0], [1.0]], [[0.0], [0.0]]])
    targets = torch.tensor([[0.0], [2.0]])
    unweighted = mdn_nll(logits, means, torch.zeros(2, 2, 1), targets)
    assert unweighted.item() == pytest.approx((1.418939 + 2.918939) / 2, abs=1e-4)
    weighted = mdn_nll(logits, means, torch.zeros(2, 2, 1), targets, torch.tensor([2.0, 0.0]))
    assert weighted.item() == pytest.approx(1.418939, abs=1e-4)


def test_one_component_is_the_gaussian_nll():
    generator = torch.Generator().manual_seed(0)
    mean = torch.randn(16, 3, generator=generator)
    log_std = 0.5 * torch.randn(16, 3, generator=generator)
    target = torch.randn(16, 3, generator=generator)
    one = mdn_nll(torch.randn(16, 1, generator=generator), mean[:, None], log_std[:, None],
                  target)
    assert one.item() == pytest.approx(gaussian_nll(mean, log_std, target).item(), rel=1e-5)


def test_far_targets_give_a_finite_likelihood_and_gradient():
    # 1000 std from both components every density rounds to 0 in float32; the log-sum-exp
    # keeps -log p = 0.5 * 1000^2 + log(2 pi)/2 - log(std) - log(1/2 + 1/2) exactly.
    means = torch.tensor([[[0.0], [0.0]]], requires_grad=True)
    log_stds = torch.zeros(1, 2, 1)
    value = mdn_nll(torch.zeros(1, 2), means, log_stds, torch.tensor([[1000.0]]))
    assert value.item() == pytest.approx(0.5 * 1000.0 ** 2 + HALF_LOG_2PI, rel=1e-6)
    value.backward()
    assert torch.isfinite(means.grad).all()
    assert mixture_log_prob(torch.zeros(1, 2), means.detach(), log_stds,
                            torch.tensor([[1000.0]])).shape == (1,)


def _bimodal(n=512, seed=0):
    """1-D states in [-1, 1]; the action is +1 or -1 by a fair coin (plus 0.05 noise)."""
    rng = np.random.default_rng(seed)
    states = rng.uniform(-1.0, 1.0, size=(n, 1)).astype(np.float32)
    actions = (rng.choice([-1.0, 1.0], size=(n, 1))
               + 0.05 * rng.standard_normal((n, 1))).astype(np.float32)
    return states, actions


def test_the_mixture_picks_a_mode_where_the_gaussian_averages():
    torch.manual_seed(0)
    states, actions = _bimodal()
    obs, act = torch.from_numpy(states), torch.from_numpy(actions)
    mdn = MixtureDensityPolicy(1, 1, hidden=(32,), components=2)
    gaussian = MLPPolicy(1, 1, hidden=(32,), head='gaussian')
    for network in (mdn, gaussian):
        network.set_normalization(Normalizer.fit(states), Normalizer.fit(actions))
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
        for _ in range(300):
            target = network.normalize_action(act)
            if network is mdn:
                loss = mdn_nll(*network.normalized_mixture(obs), target)
            else:
                loss = gaussian_nll(*network.normalized_distribution(obs), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    probe = torch.linspace(-0.9, 0.9, 7)[:, None]
    with torch.no_grad():
        # The Gaussian's mean is the average of +1 and -1; its std spans both.
        assert gaussian(probe).abs().max().item() < 0.3
        # The mixture acts on one mode: every action is near +1 or -1, ...
        assert (mdn(probe).abs() - 1.0).abs().max().item() < 0.2
        logits, means, log_stds = mdn.normalized_mixture(probe)
        modes = means[..., 0] * mdn.act_std + mdn.act_mean
        # ... its two components sit on the two modes with about half the weight each.
        assert (modes.max(dim=-1).values - 1.0).abs().max().item() < 0.2
        assert (modes.min(dim=-1).values + 1.0).abs().max().item() < 0.2
        weights = torch.softmax(logits, dim=-1)
        assert weights.min().item() > 0.25
        # Sampling draws both modes.
        draws = mdn.sample(torch.zeros(400, 1), torch.Generator().manual_seed(1))
        assert 0.3 < (draws > 0).float().mean().item() < 0.7


@pytest.fixture(scope='module')
def track_spec():
    return load_spec('track_obstacle')


def test_bc_trains_an_mdn_and_the_checkpoint_round_trips(tmp_path, track_spec):
    rng = np.random.default_rng(0)
    n, obs_dim = 200, track_spec.observation.size
    data = Demonstrations(
        observations=rng.uniform(0.0, 1.0, (n, obs_dim)).astype(np.float32),
        actions=np.column_stack([np.full(n, 0.2), rng.choice([-1.0, 1.0], n)]).astype(
            np.float32) + 0.01 * rng.standard_normal((n, 2)).astype(np.float32),
        episode=np.repeat(np.arange(10), n // 10), stamp_ns=np.arange(n) * 100_000_000,
        reward=np.full(n, np.nan), spec_json=track_spec.to_json())
    result = train(data, BCConfig(head='mdn', components=3, hidden=(16,), steps=30,
                                  log_every=10))
    assert isinstance(result.policy, MixtureDensityPolicy) and math.isfinite(result.val_loss)
    path = save_checkpoint(tmp_path / 'mdn', result.policy, algorithm='bc', spec=track_spec,
                           config=result.config, provenance={'test': True})
    # The policy node loads checkpoints exactly so (nodes/policy.py) and calls act().
    loaded = load_checkpoint(path, expected_spec=track_spec)
    assert loaded.manifest['network']['type'] == 'mdn'
    assert loaded.manifest['network']['components'] == 3
    assert loaded.manifest['config']['head'] == 'mdn'
    obs = data.observations[:5]
    with torch.no_grad():
        expected = result.policy(torch.from_numpy(obs)).numpy()
    got = np.stack([loaded.act(o) for o in obs])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    again = build_policy(result.policy.description())
    assert again.description() == result.policy.description()


BAD_COMPONENTS = st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_COMPONENTS + 1),
                           st.floats(allow_nan=True), st.just(float('nan')), st.booleans(),
                           st.text(max_size=3), st.none())


@settings(max_examples=40, deadline=None)
@given(BAD_COMPONENTS)
def test_bad_component_counts_are_refused(value):
    with pytest.raises(ValueError, match='components'):
        check_components(value)
    with pytest.raises(ValueError, match='components'):
        MixtureDensityPolicy(3, 1, hidden=(4,), components=value)
    with pytest.raises(ValueError, match='components'):
        check_description({'type': 'mdn', 'obs_dim': 3, 'act_dim': 1, 'hidden': [4],
                           'activation': 'relu', 'components': value})


@settings(max_examples=25, deadline=None)
@given(head=st.one_of(st.text(max_size=8), st.none(), st.floats(allow_nan=True)),
       components=st.one_of(BAD_COMPONENTS, st.integers(1, 4)))
def test_bad_bc_head_or_components_are_refused_before_training(track_spec, head, components):
    if head in ('gaussian', 'deterministic', 'mdn') and isinstance(components, int) \
            and not isinstance(components, bool) and 1 <= components <= MAX_COMPONENTS:
        return
    n = 4
    data = Demonstrations(
        observations=np.zeros((n, track_spec.observation.size), np.float32),
        actions=np.zeros((n, 2), np.float32), episode=np.arange(n),
        stamp_ns=np.arange(n) * 100_000_000, reward=np.full(n, np.nan),
        spec_json=track_spec.to_json())
    with pytest.raises(ValueError, match='head|components'):
        train(data, BCConfig(head=head, components=components, steps=1))
