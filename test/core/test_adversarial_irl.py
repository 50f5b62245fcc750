"""GAIL and AIRL (core/algorithms/adversarial_irl.py), checked on answers known by hand.

The losses and rewards on numbers, the discriminator on two obvious sample sets, the
demonstrations' transitions, bad datasets, and a short `ilrl train gail` run.
"""

import math

from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms.adversarial_irl import (
    Adversary, AdversarialConfig, airl_f, airl_logits, AIRLDiscriminator, discriminator_loss,
    expert_transitions, gail_reward, gradient_penalty, imitate_on_task, LearnedReward,
    squashed_log_prob_of)
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.networks import SquashedGaussianActor
from ilrl_ros.core.spec import load_spec

T = torch.tensor


# ---------------------------------------------------------------- losses by hand

def test_discriminator_loss_is_binary_cross_entropy():
    # Logit 0 is D = 1/2 on both sides: log 2 each.
    assert discriminator_loss(T([0.0, 0.0]), T([0.0])).item() == pytest.approx(2 * math.log(2))
    # Expert logit log 3 is D = 3/4; policy logit -log 3 is D = 1/4: -log(3/4) twice.
    loss = discriminator_loss(T([math.log(3.0)]), T([-math.log(3.0)]))
    assert loss.item() == pytest.approx(-2 * math.log(0.75), rel=1e-6)
    # Each side is its own mean: expert logits {0, log 3}, policy logit 0.
    loss = discriminator_loss(T([0.0, math.log(3.0)]), T([0.0]))
    assert loss.item() == pytest.approx(0.5 * (math.log(2) - math.log(0.75)) + math.log(2),
                                        rel=1e-6)
    # Finite where D rounds to 0 or 1.
    assert math.isfinite(discriminator_loss(T([-200.0]), T([200.0])).item())


def test_gail_rewards_from_the_logit():
    # D = 3/4: log D - log(1 - D) = log 3; -log(1 - D) = log 4.
    logit = T([math.log(3.0)])
    assert gail_reward(logit, 'logit').item() == pytest.approx(math.log(3.0), rel=1e-6)
    assert gail_reward(logit, 'positive').item() == pytest.approx(math.log(4.0), rel=1e-6)
    assert gail_reward(T([-100.0]), 'positive').item() >= 0.0
    with pytest.raises(ValueError, match='not one of logit, positive'):
        gail_reward(logit, 'cost')


def test_airl_discriminator_from_f_and_log_pi():
    # f = log 2, pi(a|s) = 1/2: D = exp f / (exp f + pi) = 2 / 2.5 = 0.8.
    logits = airl_logits(T([math.log(2.0)]), T([math.log(0.5)]))
    assert torch.sigmoid(logits).item() == pytest.approx(0.8, rel=1e-6)
    assert logits.item() == pytest.approx(math.log(4.0), rel=1e-6)  # log(0.8 / 0.2)
    # f = g + gamma h(s') - h(s); a terminal s' has potential 0.
    f = airl_f(T([1.0, 1.0]), T([2.0, 2.0]), T([3.0, 3.0]), T([0.0, 1.0]), gamma=0.9)
    assert f.tolist() == pytest.approx([1.0 + 2.7 - 2.0, 1.0 - 2.0], rel=1e-6)


def test_gradient_penalty_of_a_linear_function():
    # logit = 3 x + 4 y has gradient norm 5 everywhere: (5 - 1)^2 = 16, wherever the mix.
    def linear(x, y):
        return 3.0 * x[:, 0] + 4.0 * y[:, 0]
    expert, policy = (torch.ones(4, 1), torch.zeros(4, 1)), (torch.zeros(4, 1),
                                                            torch.ones(4, 1))
    mix = T([0.0, 0.25, 0.5, 1.0])
    assert gradient_penalty(linear, expert, policy, mix).item() == pytest.approx(16.0, rel=1e-5)
    # Norm 1: no penalty. An input the function ignores has gradient 0.
    assert gradient_penalty(lambda x, y: 0.6 * x[:, 0] + 0.8 * x[:, 1], (torch.ones(3, 2),
                            torch.ones(3, 1)), (torch.zeros(3, 2), torch.zeros(3, 1)),
                            T([0.1, 0.5, 0.9])).item() == pytest.approx(0.0, abs=1e-6)


class _StandardNormalActor:
    """pre-tanh N(0, 1) everywhere."""

    def distribution(self, obs):
        zeros = torch.zeros(len(obs), 1)
        return zeros, zeros


def test_log_prob_of_given_actions():
    # At a = 0: log N(0; 0, 1) - log(1 - tanh(0)^2) = -log sqrt(2 pi).
    log_pi = squashed_log_prob_of(_StandardNormalActor(), torch.zeros(1, 3), torch.zeros(1, 1))
    assert log_pi.item() == pytest.approx(-0.5 * math.log(2 * math.pi), rel=1e-6)
    # a = tanh(1): -1/2 - log sqrt(2 pi) - log(1 - tanh(1)^2).
    a = math.tanh(1.0)
    log_pi = squashed_log_prob_of(_StandardNormalActor(), torch.zeros(1, 3), T([[a]]))
    expected = -0.5 - 0.5 * math.log(2 * math.pi) - math.log(1 - a * a)
    assert log_pi.item() == pytest.approx(expected, rel=1e-4)
    # An action at the bound stays finite.
    assert math.isfinite(squashed_log_prob_of(_StandardNormalActor(), torch.zeros(1, 3),
                                              T([[1.0]])).item())
    # The same density the actor gives its own samples.
    torch.manual_seed(0)
    actor = SquashedGaussianActor(3, 1, [-2.0], [2.0], (16, 16))
    obs = torch.randn(64, 3)
    with torch.no_grad():
        actions, log_prob = actor.sample(obs)
        inside = actions.abs().squeeze(-1) < 0.999
        again = squashed_log_prob_of(actor, obs, actions)
    assert torch.allclose(again[inside], log_prob[inside], atol=1e-3)


# ---------------------------------------------------------------- the discriminator learns

@pytest.mark.parametrize('method', ['gail', 'airl'])
def test_discriminator_separates_two_obvious_sets(method):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    config = AdversarialConfig(disc_lr=3e-3, grad_penalty=1.0)
    adversary = Adversary(method, 3, 1, config)
    actor = SquashedGaussianActor(3, 1, [-2.0], [2.0], (16, 16))
    n = 64

    def batch(centre):
        obs = torch.full((n, 3), centre) + 0.1 * torch.randn(n, 3)
        return (obs, torch.full((n, 1), centre * 0.5), obs + 0.1, torch.zeros(n))
    for _ in range(60):
        metrics = adversary.update(actor, batch(1.0), batch(-1.0), rng)
    assert metrics['disc_expert_acc'] == 1.0 and metrics['disc_policy_acc'] == 1.0
    assert metrics['disc_loss'] < 0.5
    # The reward the policy gets is higher on the expert's side.
    def as_batch(b):
        from ilrl_ros.core.rl.buffers import TransitionBatch
        return TransitionBatch(obs=b[0], actions=b[1], rewards=torch.zeros(n), next_obs=b[2],
                               terminated=b[3])
    assert adversary.reward(as_batch(batch(1.0))).mean() > \
        adversary.reward(as_batch(batch(-1.0))).mean() + 1.0


def test_learned_reward_pays_g_of_the_next_state():
    torch.manual_seed(0)
    net = AIRLDiscriminator(3, 1, gamma=0.99, hidden=(8,))

    class Env:
        observation_space = action_space = None

        def reset(self, **_):
            return np.zeros(3, np.float32), {}

        def step(self, action):
            return np.ones(3, np.float32), -5.0, False, False, {}
    obs, reward, *_, info = LearnedReward(Env(), net).step(np.zeros(1))
    with torch.no_grad():
        expected = float(net.reward(torch.ones(1, 3))[0])
    assert reward == pytest.approx(expected)
    assert info['task_reward'] == -5.0
    with pytest.raises(ValueError, match='state-only'):
        LearnedReward(Env(), AIRLDiscriminator(3, 1, 0.99, (8,), state_only=False))


# ---------------------------------------------------------------- demonstrations

def _pendulum_data(rows=(3, 2), obs_dim=3, act_dim=1, fill=None) -> Demonstrations:
    episode = np.concatenate([np.full(n, k) for k, n in enumerate(rows)])
    n = len(episode)
    obs = np.arange(n * obs_dim, dtype=np.float32).reshape(n, obs_dim)
    return Demonstrations(observations=obs if fill is None else np.full_like(obs, fill),
                          actions=np.linspace(-2, 2, n * act_dim, dtype=np.float32).reshape(
                              n, act_dim), episode=episode,
                          stamp_ns=np.arange(n, dtype=np.int64), reward=np.zeros(n),
                          spec_json=load_spec('pendulum').to_json())


def test_expert_transitions_pair_rows_within_episodes():
    data = _pendulum_data(rows=(3, 2))
    pairs = expert_transitions(data, 3, [-2.0], [2.0])
    # Rows 0-1, 1-2 of the first episode and 3-4 of the second; never 2-3.
    assert len(pairs) == 3 and pairs.episodes == 2
    assert pairs.obs[:, 0].tolist() == [0.0, 3.0, 9.0]
    assert pairs.next_obs[:, 0].tolist() == [3.0, 6.0, 12.0]
    assert pairs.actions[:, 0].tolist() == pytest.approx([-1.0, -0.5, 0.5])
    assert len(expert_transitions(data, 3, [-2.0], [2.0], demo_episodes=1)) == 2


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(obs_dim=st.integers(1, 6), act_dim=st.integers(1, 3), rows=st.integers(2, 6))
def test_a_dataset_of_the_wrong_shape_is_refused(obs_dim, act_dim, rows):
    data = _pendulum_data(rows=(rows,), obs_dim=obs_dim, act_dim=act_dim)
    if (obs_dim, act_dim) == (3, 1):
        return
    with pytest.raises(ValueError, match=r'dataset (observations|actions) have shape .* task '
                                         r"'pendulum' expects \[rows, (3|1)\]"):
        imitate_on_task('gail', data, 'pendulum', eval_episodes=0)


@settings(max_examples=20)
@given(bad=st.sampled_from([np.nan, np.inf, -np.inf]), row=st.integers(0, 4),
       column=st.integers(0, 3))
def test_a_dataset_with_nan_or_inf_is_refused(bad, row, column):
    data = _pendulum_data(rows=(5,))
    obs, actions = data.observations.copy(), data.actions.copy()
    if column < 3:
        obs[row, column] = bad
    else:
        actions[row, 0] = bad
    with pytest.raises(ValueError, match='must be finite'):
        Demonstrations(observations=obs, actions=actions, episode=data.episode,
                       stamp_ns=data.stamp_ns, reward=data.reward, spec_json=data.spec_json)
    # The transitions' own check, for arrays that never went through Demonstrations.
    object.__setattr__(data, 'observations', obs)
    object.__setattr__(data, 'actions', actions)
    with pytest.raises(ValueError, match='must be finite'):
        expert_transitions(data, 3, [-2.0], [2.0])


def test_datasets_that_cannot_train_are_refused():
    with pytest.raises(ValueError, match="recorded for task 'pendulum', not 'track_follow'"):
        imitate_on_task('gail', _pendulum_data(), 'track_follow', eval_episodes=0)
    with pytest.raises(ValueError, match='no two consecutive rows of one episode'):
        expert_transitions(_pendulum_data(rows=(1, 1, 1)), 3, [-2.0], [2.0])
    with pytest.raises(ValueError, match='method .* not one of gail, airl'):
        imitate_on_task('gan', _pendulum_data(), 'pendulum', eval_episodes=0)
    for bad, match in (({'gail_reward': 'cost'}, 'gail_reward'),
                       ({'total_steps': 0}, 'total_steps'), ({'disc_lr': -1.0}, 'disc_lr'),
                       ({'grad_penalty': math.nan}, 'grad_penalty'),
                       ({'demo_episodes': -1}, 'demo_episodes')):
        with pytest.raises(ValueError, match=match):
            AdversarialConfig(**bad)


# ---------------------------------------------------------------- `ilrl train gail`

@pytest.mark.slow
def test_ilrl_train_gail_writes_a_checkpoint_the_policy_node_loads(tmp_path, capsys):
    from ilrl_ros.cli import main
    from ilrl_ros.core.checkpoint import load_checkpoint
    from ilrl_ros.core.rollouts import rollout
    from ilrl_ros.core.tasks import make_env, make_expert
    spec = load_spec('pendulum')
    data_path = tmp_path / 'demos.npz'
    rollout(make_env(spec), make_expert(spec), episodes=2, max_episode_steps=50).data.save(
        data_path)
    out = tmp_path / 'gail'
    code = main(['train', 'gail', '--data', str(data_path), '--task', 'pendulum', '-o',
                 str(out), '--log-dir', str(tmp_path / 'log'), '--total-steps', '200',
                 '--learning-starts', '100', '--batch-size', '16', '--disc-batch-size', '16',
                 '--hidden', '32,32', '--log-every', '100', '--eval-episodes', '1'])
    assert code == 0
    printed = capsys.readouterr().out
    assert '98 expert transitions from 2 episodes' in printed and 'wrote checkpoint' in printed
    policy = load_checkpoint(out, expected_spec=spec)
    action = np.asarray(policy.act(np.array([1.0, 0.0, 0.0], np.float32)))
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    assert (tmp_path / 'log' / 'metrics.csv').is_file()
    assert (tmp_path / 'log' / 'curves.png').is_file()
    # A dataset of another task is refused with its reason, not a traceback.
    code = main(['train', 'airl', '--data', str(data_path), '--task', 'track_follow', '-o',
                 str(tmp_path / 'airl')])
    assert code == 2 and "recorded for task 'pendulum'" in capsys.readouterr().err


def test_flags_set_the_discriminator_and_sac_underneath():
    from ilrl_ros.cli import build_parser
    from ilrl_ros.cli.config_flags import config_overrides
    args = build_parser().parse_args(['train', 'airl', '--data', 'd.npz', '-o', 'c', '--lr',
                                      '0.01', '--disc-lr', '0.1', '--total-steps', '5',
                                      '--hidden', '8,8', '--no-airl-state-only'])
    overrides = config_overrides(args, args.config_flags)
    assert overrides == {'total_steps': 5, 'disc_lr': 0.1, 'airl_state_only': False,
                         'sac': {'lr': 0.01, 'hidden': (8, 8)}}
    config = AdversarialConfig(**overrides)
    # SAC's own step count and seed follow the outer ones.
    assert (config.sac.lr, config.sac.hidden, config.sac.total_steps) == (0.01, (8, 8), 5)
    assert config.sac.seed == config.seed == 0


@pytest.mark.slow
def test_airl_trains_on_track_follow_with_two_action_fields():
    from ilrl_ros.core.rollouts import rollout
    from ilrl_ros.core.tasks import make_env, make_expert
    spec = load_spec('track_follow')
    data = rollout(make_env(spec), make_expert(spec), episodes=2, max_episode_steps=40).data
    config = AdversarialConfig(total_steps=120, disc_batch_size=16, log_every=60,
                               sac={'learning_starts': 80, 'batch_size': 16,
                                    'hidden': (16, 16)})
    result, evaluation, _ = imitate_on_task('airl', data, 'track_follow', config,
                                            eval_episodes=0)
    assert evaluation is None and result.demo_transitions == 78
    with torch.no_grad():
        action = result.policy(torch.zeros(1, spec.observation.size))[0]
    assert action.shape == (2,) and bool(torch.all(action.abs() <= torch.as_tensor(
        spec.action.high)))
    assert np.isfinite(result.log.series('train/disc_loss')[1]).all()
