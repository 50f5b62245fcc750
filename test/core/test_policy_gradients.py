"""Policy gradients: GAE, returns and losses by hand; the network; short runs that must learn."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms import a2c, ppo, reinforce
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint
from ilrl_ros.core.networks import ActorCritic, build_policy
from ilrl_ros.core.networks.actor_critic import (
    categorical_entropy,
    gaussian_entropy,
    gaussian_log_prob,
)
from ilrl_ros.core.rl.buffers import RolloutCollector
from ilrl_ros.core.rl.evaluation import evaluate_policy
from ilrl_ros.core.rl.gae import gae, reward_to_go
from ilrl_ros.core.rl.losses import value_loss
from ilrl_ros.core.rl.optim import clip_grad_norm, Optimizer
from ilrl_ros.core.rl.spaces import actor_critic_for_spaces
from ilrl_ros.core.rl.vec_env import make_vec_env
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_env
from ilrl_ros.core.train_log import TrainingLog

RANDOM_CARTPOLE_RETURN = 22.0  # a uniformly random policy's mean return on CartPole-v1



def cartpole():
    return gym.make('CartPole-v1')


# Returns and advantages.

def test_gae_by_hand_with_a_truncation_and_a_termination():
    # One environment, three steps, gamma = 0.9, lambda = 0.8:
    #   t=0 goes on, t=1 is cut by a time limit (V of its final observation: 4.0), t=2 ends
    #   in a terminal state (its next value 0.7 must be ignored).
    # t=2: delta = 3 - 1.5 = 1.5 (no bootstrap); A = 1.5.
    # t=1: delta = 2 + 0.9 * 4.0 - 1.0 = 4.6 (bootstrap), recursion stops; A = 4.6.
    # t=0: delta = 1 + 0.9 * 1.0 - 0.5 = 1.4; A = 1.4 + 0.9 * 0.8 * 4.6 = 4.712.
    # Returns = A + V = [5.212, 5.6, 3.0].
    rewards = np.array([[1.0], [2.0], [3.0]])
    values = np.array([[0.5], [1.0], [1.5]])
    next_values = np.array([[1.0], [4.0], [0.7]])
    terminated = np.array([[0.0], [0.0], [1.0]])
    truncated = np.array([[0.0], [1.0], [0.0]])
    advantages, returns = gae(rewards, values, terminated, truncated, next_values,
                              gamma=0.9, lam=0.8)
    np.testing.assert_allclose(advantages[:, 0], [4.712, 4.6, 1.5])
    np.testing.assert_allclose(returns[:, 0], [5.212, 5.6, 3.0])


def test_reward_to_go_by_hand():
    # gamma = 0.5: G_2 = 2, G_1 = 0 + 0.5 * 2 = 1, G_0 = 1 + 0.5 * 1 = 1.5.
    np.testing.assert_allclose(reward_to_go(np.array([1.0, 0.0, 2.0]), 0.5), [1.5, 1.0, 2.0])
    # The batched form restarts at every episode end: env 0 runs episodes [1, 0 | 2],
    # env 1 one episode [1, 1, 1]: G = [1, 0 | 2] and [1.75, 1.5, 1].
    rewards = np.array([[1.0, 1.0], [0.0, 1.0], [2.0, 1.0]])
    done = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(reinforce.batch_reward_to_go(rewards, done, 0.5),
                               [[1.0, 1.75], [0.0, 1.5], [2.0, 1.0]])


# Losses on tiny tensors.

def test_reinforce_loss_by_hand():
    log_probs = torch.tensor([-1.0, -2.0])
    returns = torch.tensor([3.0, 1.0])
    entropy = torch.tensor([0.5, 0.7])
    # b = 1: -((-1)(3 - 1) + (-2)(1 - 1)) / 2 - 0.1 * (0.5 + 0.7) / 2 = 1 - 0.06 = 0.94.
    loss = reinforce.reinforce_loss(log_probs, returns, torch.ones(2), entropy, 0.1)
    assert loss.item() == pytest.approx(0.94)
    # No baseline, no entropy: -((-1)(3) + (-2)(1)) / 2 = 2.5.
    loss = reinforce.reinforce_loss(log_probs, returns, torch.zeros(2), entropy, 0.0)
    assert loss.item() == pytest.approx(2.5)


def test_baselines_by_hand():
    returns, values = torch.tensor([3.0, 1.0, 2.0]), torch.tensor([0.5, 0.5, 4.0])
    assert reinforce.baseline_values('none', returns, values).tolist() == [0.0, 0.0, 0.0]
    assert reinforce.baseline_values('batch_mean', returns, values).tolist() == [2.0] * 3
    assert reinforce.baseline_values('value', returns, values).tolist() == [0.5, 0.5, 4.0]
    with pytest.raises(ValueError, match='baseline'):
        reinforce.baseline_values('median', returns, values)


def test_ppo_clipped_surrogate_by_hand():
    # clip_range 0.2, ratios r and advantages A per sample; the objective is min(rA, clip(r)A):
    #   r=1.1, A=2:  min(2.2, 2.2)   = 2.2  (inside the clip range: not clipped)
    #   r=1.5, A=1:  min(1.5, 1.2)   = 1.2  (clipped above)
    #   r=0.5, A=-1: min(-0.5, -0.8) = -0.8 (clipped below)
    #   r=0.5, A=1:  min(0.5, 0.8)   = 0.5  (outside the range, but pessimism keeps r A)
    # loss = -(2.2 + 1.2 - 0.8 + 0.5) / 4 = -0.775.
    ratios = torch.tensor([1.1, 1.5, 0.5, 0.5])
    log_probs = torch.log(ratios).requires_grad_()
    advantages = torch.tensor([2.0, 1.0, -1.0, 1.0])
    loss = ppo.clipped_surrogate_loss(log_probs, torch.zeros(4), advantages, 0.2)
    assert loss.item() == pytest.approx(-0.775)
    # Clipped samples give no gradient; the others -r A / 4 with respect to log pi.
    loss.backward()
    np.testing.assert_allclose(log_probs.grad.numpy(), [-0.55, 0.0, 0.0, -0.125], atol=1e-6)
    approx_kl, clip_fraction = ppo.ppo_diagnostics(log_probs.detach(), torch.zeros(4), 0.2)
    assert clip_fraction.item() == pytest.approx(0.75)
    # (r - 1) - log r, averaged: (0.1 - log 1.1 + 0.5 - log 1.5 + 2 (-0.5 - log 0.5)) / 4.
    expected = (0.1 - math.log(1.1) + 0.5 - math.log(1.5) + 2 * (-0.5 - math.log(0.5))) / 4
    assert approx_kl.item() == pytest.approx(expected, rel=1e-5)


def test_minibatch_standardisation_is_per_minibatch():
    advantages = torch.tensor([1.0, 3.0, 10.0, 20.0, 30.0, 7.0])
    out = ppo.standardize_minibatches(advantages, 2)
    # [1, 3] -> mean 2, std sqrt(2): [-1/sqrt(2), 1/sqrt(2)]; likewise each pair.
    r = 1.0 / math.sqrt(2.0)
    np.testing.assert_allclose(out.numpy(), [-r, r, -r, r, r, -r], rtol=1e-5)
    # A last minibatch of one is left as it is; of several, standardised on its own.
    assert ppo.standardize_minibatches(advantages, 5)[-1].item() == 7.0
    np.testing.assert_allclose(ppo.standardize_minibatches(advantages, 4)[4:].numpy(),
                               [r, -r], rtol=1e-5)


def test_value_loss_by_hand():
    returns, old = torch.tensor([3.0, 3.0]), torch.tensor([1.0, 1.0])
    values = torch.tensor([2.0, 1.2])
    # Unclipped: ((2 - 3)^2 + (1.2 - 3)^2) / 2 = (1 + 3.24) / 2 = 2.12.
    assert value_loss(values, returns).item() == pytest.approx(2.12)
    # Clip 0.5 around the old value 1: 2.0 -> 1.5 gives (1.5 - 3)^2 = 2.25 > 1, the larger
    # is kept; 1.2 is inside, 3.24. Mean (2.25 + 3.24) / 2 = 2.745.
    assert value_loss(values, returns, old, 0.5).item() == pytest.approx(2.745)


def test_distribution_helpers_match_torch():
    mean, log_std = torch.tensor([[0.5, -1.0]]), torch.tensor([0.2, -0.3])
    actions = torch.tensor([[1.0, 0.0]])
    normal = torch.distributions.Normal(mean, log_std.exp())
    assert gaussian_log_prob(actions, mean, log_std).item() == \
        pytest.approx(normal.log_prob(actions).sum().item(), rel=1e-6)
    assert gaussian_entropy(log_std).item() == pytest.approx(normal.entropy().sum().item())
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    expected = torch.distributions.Categorical(logits=logits).entropy().item()
    assert categorical_entropy(torch.log_softmax(logits, -1)).item() == pytest.approx(expected)


def test_optimizer_and_clipping_match_torch():
    for kind in ('adam', 'rmsprop'):
        torch.manual_seed(0)
        ours = torch.nn.Parameter(torch.randn(5))
        theirs = torch.nn.Parameter(ours.detach().clone())
        ours_opt = Optimizer([ours], lr=1e-2, kind=kind)
        theirs_opt = torch.optim.Adam([theirs], lr=1e-2, eps=1e-5) if kind == 'adam' else \
            torch.optim.RMSprop([theirs], lr=1e-2, alpha=0.99, eps=1e-5)
        for _ in range(10):
            for p, opt in ((ours, ours_opt), (theirs, theirs_opt)):
                opt.zero_grad()
                ((p - 1.0) ** 2 * torch.arange(5.0)).sum().backward()
                if p is ours:
                    norm = clip_grad_norm([p], 0.5)
                else:
                    expected = torch.nn.utils.clip_grad_norm_([p], 0.5)
                opt.step()
            assert norm.item() == pytest.approx(expected.item(), rel=1e-6)
        torch.testing.assert_close(ours, theirs)


# The network.

@pytest.mark.parametrize('kind', ['box', 'discrete'])
def test_sampled_log_probs_agree_with_the_stored_action_log_probs(kind):
    torch.manual_seed(0)
    net = ActorCritic(3, 2, log_std_init=-0.7) if kind == 'box' else \
        ActorCritic(3, 1, action_kind='discrete', num_actions=4)
    obs = torch.randn(16, 3)
    actions, log_probs, values = net.sample(obs)
    again, _ = net.log_prob_entropy(obs, actions)
    torch.testing.assert_close(log_probs, again)
    torch.testing.assert_close(values, net.value(obs))


def test_observation_statistics_are_running_and_frozen_in_eval():
    torch.manual_seed(0)
    net = ActorCritic(3, 1)
    data = torch.randn(50, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 0.0])
    for chunk in data.split(7):
        net.update_obs_stats(chunk)
    torch.testing.assert_close(net.obs_mean, data.mean(0))
    torch.testing.assert_close(net.obs_var, data.var(0, unbiased=False))
    assert net.obs_count.item() == 50
    net.eval()
    net.update_obs_stats(torch.full((10, 3), 100.0))
    assert net.obs_count.item() == 50
    plain = ActorCritic(3, 1, normalize_observations=False)
    plain.update_obs_stats(data)
    assert plain.obs_count.item() == 0
    assert torch.equal(plain.normalize(data), data)


def test_actor_critic_checkpoint_round_trip_for_the_pendulum(tmp_path):
    spec = load_spec('pendulum')
    env = make_env(spec)
    torch.manual_seed(0)
    policy = actor_critic_for_spaces(env.observation_space, env.action_space, hidden=(16, 16),
                                     log_std_init=-0.5)
    policy.update_obs_stats(torch.randn(100, 3) * 2.0 + 1.0)
    with torch.no_grad():
        policy.actor[-1].bias.fill_(3.0)  # the mean torque is pushed past the 2 N m bound
    policy.eval()
    assert policy.description() == {
        'type': 'actor_critic', 'obs_dim': 3, 'act_dim': 1, 'hidden': [16, 16],
        'activation': 'tanh', 'action_kind': 'box', 'normalize_observations': True}
    save_checkpoint(tmp_path / 'ckpt', policy, algorithm='ppo', spec=spec,
                    config={'total_steps': 0}, provenance={'test': True})
    loaded = load_checkpoint(tmp_path / 'ckpt', expected_spec=spec)
    assert loaded.network.description() == policy.description()
    obs = torch.randn(20, 3) * 3.0
    with torch.no_grad():
        torch.testing.assert_close(loaded.network(obs), policy(obs))
        torch.testing.assert_close(loaded.network.value(loaded.network.normalize(obs)),
                                   policy.value(policy.normalize(obs)))
    for state in ((0.0, 0.0), (math.pi, 1.0), (1.0, -8.0)):
        observation, _ = env.reset(options={'state': state})
        action = loaded.act(observation)
        assert action.shape == (1,)
        assert spec.action.low[0] <= action[0] <= spec.action.high[0]
    assert loaded.act(np.zeros(3))[0] == pytest.approx(2.0)


def test_discrete_actor_critic_returns_the_index_and_rebuilds():
    env = cartpole()
    torch.manual_seed(1)
    policy = actor_critic_for_spaces(env.observation_space, env.action_space, hidden=(8,))
    assert policy.act_dim == 1 and policy.num_actions == 2
    rebuilt = build_policy(policy.description())
    rebuilt.load_state_dict(policy.state_dict())
    obs = torch.randn(6, 4)
    with torch.no_grad():
        out = rebuilt(obs)
        logits = policy.actor(obs)
    assert out.shape == (6, 1) and out.dtype == torch.float32
    assert torch.equal(out[:, 0].long(), logits.argmax(-1))
    assert policy.description()['num_actions'] == 2
    assert isinstance(policy.act(np.zeros(4, dtype=np.float32)), int)
    with pytest.raises(ValueError, match='num_actions'):
        ActorCritic(4, 1, action_kind='discrete')


class CountingEnv(gym.Env):
    """Observation = steps taken; reward 1; ends after 3 steps (cut, or terminal)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, terminal: bool):
        self.terminal, self.t = terminal, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        ended = self.t == 3
        return (np.array([float(self.t)], np.float32), 1.0, ended and self.terminal,
                ended and not self.terminal, {})


@pytest.mark.parametrize('terminal', [False, True], ids=['truncated', 'terminated'])
def test_rollout_bootstraps_a_truncation_from_the_final_observation(terminal):
    envs = make_vec_env(lambda: CountingEnv(terminal), 1, seed=0)
    torch.manual_seed(0)
    policy = ActorCritic(1, 1, hidden=(8,), action_kind='discrete', num_actions=2,
                         normalize_observations=False)
    rollout = RolloutCollector(envs, policy, seed=0).collect(4)

    def v(x):
        with torch.no_grad():
            return policy.value(torch.tensor([[x]])).item()

    # Observations 0, 1, 2 | 0 (reset after the third step).
    assert rollout.obs[:, 0, 0].tolist() == [0.0, 1.0, 2.0, 0.0]
    assert rollout.truncated[:, 0].tolist() == [0, 0, float(not terminal), 0]
    assert rollout.terminated[:, 0].tolist() == [0, 0, float(terminal), 0]
    expected = [v(1.0), v(2.0), v(3.0) if not terminal else v(0.0), v(1.0)]
    np.testing.assert_allclose(rollout.next_values[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(rollout.values[:, 0].numpy(), [v(0.0), v(1.0), v(2.0), v(0.0)],
                               rtol=1e-6)


def test_presets_are_the_zoo_settings():
    cartpole_config = ppo.PPOConfig.for_env('CartPole-v1')
    assert (cartpole_config.num_envs, cartpole_config.num_steps, cartpole_config.batch_size,
            cartpole_config.epochs, cartpole_config.gamma, cartpole_config.gae_lambda,
            cartpole_config.lr, cartpole_config.lr_schedule) == \
        (8, 32, 256, 20, 0.98, 0.8, 1e-3, 'linear')
    pendulum_config = ppo.PPOConfig.for_env('Pendulum-v1', seed=3)
    assert (pendulum_config.num_envs, pendulum_config.num_steps, pendulum_config.gamma,
            pendulum_config.batch_size, pendulum_config.seed) == (4, 1024, 0.9, 64, 3)
    assert a2c.A2CConfig.for_env('Pendulum-v1').num_steps == 8
    with pytest.raises(ValueError, match='CartPole-v1'):
        ppo.PPOConfig.for_env('Hopper-v5')


# Short runs that must beat a random policy.

def test_ppo_learns_cartpole():
    log = TrainingLog()
    calls = []
    config = ppo.PPOConfig.for_env('CartPole-v1', total_steps=30_000, seed=0)
    result = ppo.train(cartpole, config, log=log,
                       progress=lambda step, total, metrics: calls.append((step, total)))
    assert result.env_steps >= 30_000 and result.log is log and not result.policy.training
    assert result.config['total_steps'] == 30_000
    assert calls and calls[-1][0] == calls[-1][1] == result.env_steps
    names = {row['name'] for row in log.rows}
    assert {'rollout/ep_return', 'train/policy_loss', 'train/value_loss', 'train/approx_kl',
            'train/entropy', 'train/lr'} <= names
    score = evaluate_policy(cartpole, result.policy.act, episodes=10).mean_return
    assert score > 150, f'PPO reached {score} on CartPole-v1 (random: ~22)'


def test_reinforce_and_a2c_learn_cartpole():
    result = reinforce.train(cartpole, reinforce.REINFORCEConfig(total_steps=15_000))
    score = evaluate_policy(cartpole, result.policy.act, episodes=10).mean_return
    assert score > 3 * RANDOM_CARTPOLE_RETURN, f'REINFORCE reached {score} on CartPole-v1'
    result = a2c.train(cartpole, a2c.A2CConfig.for_env('CartPole-v1', total_steps=15_000))
    score = evaluate_policy(cartpole, result.policy.act, episodes=10).mean_return
    assert score > 3 * RANDOM_CARTPOLE_RETURN, f'A2C reached {score} on CartPole-v1'


def test_baselines_reduce_the_gradient_variance_of_a_fixed_policy():
    env = cartpole()
    torch.manual_seed(0)
    policy = actor_critic_for_spaces(env.observation_space, env.action_space, hidden=(32, 32))
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    # Same seed, same episodes for every baseline. Measured: batch mean ~0.4-0.75 of no
    # baseline over policy seeds, learned value ~0.3-0.45.
    results = reinforce.gradient_variances(policy, cartpole, reinforce.BASELINES, episodes=8,
                                           repeats=60, seed=0)
    variance = {b: r.variance for b, r in results.items()}
    assert variance['batch_mean'] < 0.8 * variance['none'], variance
    assert variance['value'] < 0.6 * variance['none'], variance
    # One baseline alone sees the same episodes.
    alone = reinforce.gradient_variance(policy, cartpole, 'batch_mean', episodes=8, repeats=60,
                                        seed=0)
    assert alone.variance == pytest.approx(variance['batch_mean'], rel=1e-9)
    # The policy measured is left as it was.
    for key, value in policy.state_dict().items():
        assert torch.equal(value, before[key]), key
