"""Off-policy RL (DQN, DDPG, TD3, SAC): targets and losses by hand, checkpoints, short runs."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms import ddpg, dqn, sac, td3
from ilrl_ros.core.algorithms.dqn import (
    DiscretizedActions,
    dqn_loss,
    dqn_next_values,
    DQNConfig,
    linear_epsilon,
)
from ilrl_ros.core.algorithms.sac import sac_actor_loss, sac_alpha_loss, sac_target, SACConfig
from ilrl_ros.core.algorithms.td3 import (
    min_q_target,
    smoothed_target_actions,
    td3_target,
    TD3Config,
)
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint
from ilrl_ros.core.networks import DeterministicActor, QPolicy, SquashedGaussianActor
from ilrl_ros.core.networks.actors import squashed_gaussian_log_prob
from ilrl_ros.core.rl.buffers import TransitionBatch
from ilrl_ros.core.rl.critics import CriticEnsemble
from ilrl_ros.core.rl.evaluation import evaluate_policy
from ilrl_ros.core.rl.losses import td_target
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_env



@pytest.fixture(scope='module')
def pendulum_spec():
    return load_spec('pendulum')


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def greedy(policy):
    """act(obs) -> numpy action of a trained policy (no gradients)."""
    def act(obs):
        with torch.inference_mode():
            return policy(torch.as_tensor(obs, dtype=torch.float32).view(1, -1))[0].numpy()
    return act


# ---------------------------------------------------------------- targets and losses by hand

def test_td_target_bootstraps_only_from_non_terminal_steps():
    # gamma 0.9, V(s') = 10 for both: not terminated 1 + 0.9 * 10 = 10; terminated: r = 2.
    y = td_target(t([1.0, 2.0]), t([0.0, 1.0]), t([10.0, 10.0]), gamma=0.9)
    assert y.tolist() == pytest.approx([10.0, 2.0])


def test_dqn_and_double_dqn_targets_by_hand():
    next_q_target = t([[1.0, 5.0, 3.0],
                       [2.0, 0.0, 4.0]])
    next_q_online = t([[0.0, 1.0, 9.0],    # online argmax: action 2 -> target values 3
                       [7.0, 0.0, 1.0]])   # online argmax: action 0 -> target values 2
    assert dqn_next_values(next_q_target).tolist() == [5.0, 4.0]
    assert dqn_next_values(next_q_target, next_q_online).tolist() == [3.0, 2.0]
    # r = (1, -1), the second terminated, gamma 0.5: double DQN y = (1 + 0.5 * 3, -1).
    y = td_target(t([1.0, -1.0]), t([0.0, 1.0]), dqn_next_values(next_q_target,
                                                                 next_q_online), 0.5)
    assert y.tolist() == [2.5, -1.0]


def test_dqn_loss_is_the_huber_loss_of_the_taken_actions():
    q = t([[1.0, 2.0],
           [3.0, 4.0]])
    # Taken: Q = 2 (target 2.5, error 0.5: 0.5 * 0.5^2 = 0.125) and Q = 3 (target 0,
    # error 3 > 1: 3 - 0.5 = 2.5). Mean: 1.3125.
    loss = dqn_loss(q, torch.tensor([1, 0]), t([2.5, 0.0]))
    assert loss.item() == pytest.approx(1.3125)


def test_epsilon_falls_linearly_then_stays():
    config = DQNConfig(exploration_fraction=0.1, exploration_initial_eps=1.0,
                       exploration_final_eps=0.05)
    assert linear_epsilon(0, 1000, config) == 1.0
    assert linear_epsilon(50, 1000, config) == pytest.approx(0.525)
    assert linear_epsilon(100, 1000, config) == pytest.approx(0.05)
    assert linear_epsilon(900, 1000, config) == pytest.approx(0.05)


def linear_td3_networks():
    """Target actor mu'(s) = 0.6 and critics Q1 = s + 2 a, Q2 = 3 s - a (1-D s and a)."""
    actor = DeterministicActor(1, 1, [-2.0], [2.0], hidden=())
    critics = CriticEnsemble(1, 1, hidden=(), n=2)
    with torch.no_grad():
        actor.net[0].weight.zero_()
        actor.net[0].bias.fill_(math.atanh(0.6))
        critics.weights[0].copy_(t([[[1.0], [2.0]],
                                    [[3.0], [-1.0]]]))
        critics.biases[0].zero_()
    return actor, critics


def test_td3_target_smooths_clips_and_takes_the_twin_minimum_by_hand():
    actor, critics = linear_td3_networks()
    batch = TransitionBatch(obs=torch.zeros(3, 1), actions=torch.zeros(3, 1),
                            rewards=t([1.0, 0.5, 2.0]), next_obs=t([[1.0], [-1.0], [5.0]]),
                            terminated=t([0.0, 0.0, 1.0]))
    noise = t([[0.7], [-0.2], [0.0]])
    # Noise clipped to +-0.5: 0.6 + 0.5 = 1.1 -> clipped to 1; 0.6 - 0.2 = 0.4; 0.6.
    assert smoothed_target_actions(t([[0.6], [0.6], [0.6]]), noise, 0.5).flatten().tolist() \
        == pytest.approx([1.0, 0.4, 0.6])
    # Sample 0: s' = 1, a' = 1: Q1 = 3, Q2 = 2 -> 2; y = 1 + 0.9 * 2 = 2.8.
    # Sample 1: s' = -1, a' = 0.4: Q1 = -0.2, Q2 = -3.4 -> -3.4; y = 0.5 - 3.06 = -2.56.
    # Sample 2: terminated: y = 2.
    y = td3_target(batch, actor, critics, gamma=0.9, noise_std=0.2, noise_clip=0.5,
                   noise=noise)
    assert y.tolist() == pytest.approx([2.8, -2.56, 2.0], abs=1e-5)
    assert min_q_target(t([0.0]), t([0.0]), t([[4.0], [-1.0]]), 1.0).tolist() == [-1.0]


def test_ddpg_target_is_td3_with_one_critic_and_no_smoothing():
    actor, critics = linear_td3_networks()
    one_critic = CriticEnsemble(1, 1, hidden=(), n=1)
    with torch.no_grad():
        one_critic.weights[0].copy_(critics.weights[0][:1])
        one_critic.biases[0].zero_()
    batch = TransitionBatch(obs=torch.zeros(2, 1), actions=torch.zeros(2, 1),
                            rewards=t([1.0, 0.5]), next_obs=t([[1.0], [-1.0]]),
                            terminated=t([0.0, 1.0]))
    # Q1(s', 0.6) = s' + 1.2: (2.2, 0.2); y = (1 + 0.9 * 2.2, 0.5) = (2.98, 0.5).
    y = td3_target(batch, actor, one_critic, gamma=0.9, noise_std=0.0, noise_clip=0.0)
    assert y.tolist() == pytest.approx([2.98, 0.5], abs=1e-5)
    assert ddpg.ddpg_target(batch.rewards, batch.terminated, t([2.2, 0.2]), 0.9).tolist() \
        == pytest.approx(y.tolist(), abs=1e-6)
    td3_config = ddpg.DDPGConfig().as_td3()
    assert (td3_config.n_critics, td3_config.policy_delay,
            td3_config.target_policy_noise) == (1, 1, 0.0)


def test_critic_ensemble_members_are_independent_mlps():
    torch.manual_seed(0)
    critics = CriticEnsemble(3, 2, hidden=(8, 5), n=2)
    obs, act = torch.randn(4, 3), torch.randn(4, 2)
    q = critics(obs, act)
    assert q.shape == (2, 4)
    for i in range(2):
        x = torch.cat([obs, act], dim=-1)
        for layer, (w, b) in enumerate(zip(critics.weights, critics.biases)):
            x = x @ w[i] + b[i]
            if layer < 2:
                x = torch.relu(x)
        assert torch.allclose(q[i], x.squeeze(-1), atol=1e-6)
    assert torch.allclose(critics(obs, act, first_only=True)[0], q[0])
    # Frozen: the same values, and gradients reach the actions but not the weights.
    act.requires_grad_(True)
    critics(obs, act, frozen=True).sum().backward()
    assert act.grad is not None and all(p.grad is None for p in critics.parameters())


def test_squashed_gaussian_log_prob_matches_a_numerical_density():
    # Density of a = tanh(u), u ~ N(mean, std), from the CDF P(A <= a) = Phi((atanh a - m)/s)
    # by central differences, for two independent dimensions.
    mean, log_std = t([[0.3, -1.2]]), t([[math.log(0.8), math.log(1.7)]])

    def cdf(a, m, s):
        return 0.5 * (1.0 + math.erf((math.atanh(a) - m) / (s * math.sqrt(2.0))))

    h = 1e-5
    for a in ([0.1, -0.5], [0.9, 0.3], [-0.95, -0.99]):
        numerical = 0.0
        for i in range(2):
            m, s = mean[0, i].item(), math.exp(log_std[0, i].item())
            numerical += math.log((cdf(a[i] + h, m, s) - cdf(a[i] - h, m, s)) / (2 * h))
        pre_tanh = torch.atanh(torch.tensor([a], dtype=torch.float64))
        analytic = squashed_gaussian_log_prob(pre_tanh, mean.double(), log_std.double())
        assert analytic.item() == pytest.approx(numerical, rel=1e-4, abs=1e-4)


def test_squashed_gaussian_density_integrates_to_one_and_sampling_agrees():
    mean, log_std = t([[0.5]]).double(), t([[math.log(0.6)]]).double()
    a = torch.linspace(-1 + 1e-9, 1 - 1e-9, 200_001, dtype=torch.float64).view(-1, 1)
    density = squashed_gaussian_log_prob(torch.atanh(a), mean, log_std).exp()
    assert torch.trapezoid(density, a.flatten()).item() == pytest.approx(1.0, abs=1e-3)
    # The actor's reparameterised sample reports the same log-density as the formula.
    torch.manual_seed(0)
    actor = SquashedGaussianActor(3, 2, [-2.0, -1.0], [2.0, 1.0], hidden=(16,))
    obs = torch.randn(64, 3) * 0.1
    actions, log_prob = actor.sample(obs)
    m, s = actor.distribution(obs)
    pre_tanh = torch.atanh(actions.double().clamp(-1 + 1e-7, 1 - 1e-7))
    assert torch.allclose(log_prob.double(), squashed_gaussian_log_prob(
        pre_tanh, m.double(), s.double()), atol=1e-3)
    assert actions.abs().max() < 1.0


def test_sac_target_and_actor_loss_by_hand():
    next_q = t([[1.0, 3.0],
                [2.0, 0.0]])         # min over critics: (1, 0)
    # Soft value: (1 - 0.2 * 0.5, 0 - 0.2 * -1) = (0.9, 0.2); second terminated.
    y = sac_target(t([1.0, 4.0]), t([0.0, 1.0]), next_q, t([0.5, -1.0]), 0.2, 0.9)
    assert y.tolist() == pytest.approx([1.0 + 0.9 * 0.9, 4.0])
    # Actor: mean of (0.2 * 0.5 - 1, 0.2 * -1 - 0) = mean(-0.9, -0.2) = -0.55.
    assert sac_actor_loss(next_q, t([0.5, -1.0]), 0.2).item() == pytest.approx(-0.55)


def test_alpha_loss_raises_alpha_when_entropy_is_below_target():
    target_entropy = -1.0
    for log_prob, alpha_should in ((3.0, 'rise'), (-2.0, 'fall')):
        log_alpha = torch.zeros(1, requires_grad=True)
        loss = sac_alpha_loss(log_alpha, t([log_prob, log_prob]), target_entropy)
        loss.backward()
        # Entropy -log pi = -3 is below the target -1: d loss / d log alpha = -(3 - 1) < 0,
        # so gradient descent raises alpha; entropy 2 is above it: +3 > 0, alpha falls.
        assert log_alpha.grad.item() == pytest.approx(-(log_prob + target_entropy))
        optimizer = torch.optim.SGD([log_alpha], lr=0.1)
        optimizer.step()
        assert (log_alpha.item() > 0) == (alpha_should == 'rise')


# ---------------------------------------------------------------- networks and checkpoints

def test_discretized_actions_map_indices_to_the_box():
    env = DiscretizedActions(gym.make('Pendulum-v1'), bins=5)
    assert env.action_space == gym.spaces.Discrete(5)
    assert env.action_table.flatten().tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    env.reset(seed=0)
    env.step(4)
    assert env.unwrapped.last_u == pytest.approx(2.0)
    box = gym.make('Pendulum-v1')
    box.action_space = gym.spaces.Box(np.array([-1.0, 0.0], np.float32),
                                      np.array([1.0, 2.0], np.float32))
    table = DiscretizedActions(box, bins=3).action_table
    assert table.shape == (9, 2)
    assert table[0].tolist() == [-1.0, 0.0] and table[-1].tolist() == [1.0, 2.0]
    assert table[1].tolist() == [-1.0, 1.0]
    # DQN finds the table through wrappers put around the discretisation.
    wrapped = gym.wrappers.RecordEpisodeStatistics(env)
    assert dqn.action_table_for(wrapped).flatten().tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match='Box'):
        DiscretizedActions(gym.make('CartPole-v1'))


def test_q_policy_returns_the_greedy_index_for_a_discrete_env():
    policy = QPolicy(4, 2, hidden=(8,), action_table=dqn.action_table_for(
        gym.make('CartPole-v1')))
    obs = torch.randn(5, 4)
    out = policy(obs)
    assert out.shape == (5, 1) and out.dtype == torch.float32
    assert out[:, 0].tolist() == policy.q_values(obs).argmax(-1).float().tolist()
    with pytest.raises(ValueError, match='DiscretizedActions'):
        dqn.action_table_for(gym.make('Pendulum-v1'))


def round_trip(tmp_path, network, spec, algorithm):
    path = save_checkpoint(tmp_path / algorithm, network, algorithm=algorithm, spec=spec,
                           config={'hidden': [16]}, provenance={'test': True})
    loaded = load_checkpoint(path, expected_spec=spec)
    json.dumps(loaded.manifest)
    obs = np.random.default_rng(0).normal(scale=5.0, size=(50, spec.observation.size))
    with torch.no_grad():
        expected = network(torch.as_tensor(obs, dtype=torch.float32)).numpy()
    acted = np.array([loaded.act(o) for o in obs])
    # One row at a time against a batch of 50: float32 kernels may sum in another order
    # (weights scaled by 20 put the pre-activations near 100), so allow float32 rounding.
    np.testing.assert_allclose(acted, expected, rtol=1e-5, atol=1e-5)
    assert np.all(acted >= spec.action.low) and np.all(acted <= spec.action.high)
    return loaded, acted


def test_actor_checkpoints_round_trip_and_act_in_bounds(tmp_path, pendulum_spec):
    torch.manual_seed(0)
    for network, algorithm in (
            (DeterministicActor(3, 1, [-2.0], [2.0], hidden=(16,)), 'td3'),
            (SquashedGaussianActor(3, 1, [-2.0], [2.0], hidden=(16,)), 'sac')):
        with torch.no_grad():
            for p in network.parameters():
                p.mul_(20.0)   # saturate the tanh so the bounds are reached
        loaded, acted = round_trip(tmp_path, network, pendulum_spec, algorithm)
        assert type(loaded.network) is type(network)
        assert loaded.network.act_high.tolist() == [2.0]
        assert np.abs(acted).max() > 1.9


def test_discretised_pendulum_q_policy_checkpoint_acts_with_torques(tmp_path, pendulum_spec):
    env = DiscretizedActions(make_env(pendulum_spec), bins=5)
    torch.manual_seed(0)
    policy = QPolicy(3, 5, act_dim=1, hidden=(16,), normalize_obs=True,
                     action_table=env.action_table)
    policy.set_obs_normalization([0.0, 0.0, 1.0], [1.0, 1.0, 4.0])
    loaded, acted = round_trip(tmp_path, policy, pendulum_spec, 'dqn')
    assert set(acted.flatten().tolist()) <= {-2.0, -1.0, 0.0, 1.0, 2.0}
    assert loaded.network.obs_std.tolist() == [1.0, 1.0, 4.0]


# ---------------------------------------------------------------- presets and settings

def test_presets_follow_the_zoo_and_refuse_unknown_envs():
    assert SACConfig.for_env('Pendulum-v1').lr == 1e-3
    assert SACConfig.for_env('Pendulum-v1').hidden == (256, 256)
    config = TD3Config.for_env('pendulum', total_steps=100)
    assert (config.gamma, config.learning_starts, config.hidden, config.total_steps) == \
        (0.98, 10_000, (400, 300), 100)
    assert ddpg.DDPGConfig.for_env('Pendulum-v1').buffer_size == 200_000
    assert DQNConfig.for_env('CartPole-v1').train_freq == 256
    with pytest.raises(ValueError, match='Pendulum-v1'):
        SACConfig.for_env('Hopper-v5')


def test_configs_refuse_settings_that_cannot_run():
    with pytest.raises(ValueError, match='TD3Config.policy_delay must be a positive'):
        TD3Config(policy_delay=0)
    with pytest.raises(ValueError, match=r'SACConfig.gamma must lie in \[0, 1\]'):
        SACConfig(gamma=1.5)
    with pytest.raises(ValueError, match='matmul_precision'):
        SACConfig(matmul_precision='fast')
    with pytest.raises(ValueError, match='learning_starts must be at least 2'):
        DQNConfig(normalize_obs=True, learning_starts=0)
    with pytest.raises(ValueError, match='Box action space'):
        sac.train(lambda: gym.make('CartPole-v1'), SACConfig(total_steps=10))


# ---------------------------------------------------------------- short training runs

def pendulum_task():
    return make_env(load_spec('pendulum'))


def test_sac_swings_up_our_pendulum_task():
    threads = torch.get_num_threads()
    config = SACConfig.for_env('pendulum', total_steps=4000, hidden=(64, 64), batch_size=128)
    result = sac.train(pendulum_task, config)
    assert torch.get_num_threads() == threads
    assert torch.get_float32_matmul_precision() == 'highest'
    assert isinstance(result.policy, SquashedGaussianActor) and not result.policy.training
    assert result.env_steps == 4000 and result.seconds > 0
    json.dumps(result.config)
    steps, returns = result.log.series('rollout/ep_return')
    assert len(returns) == 20
    assert result.log.series('train/alpha')[1] and result.log.series('train/critic_loss')[1]
    # Random torques score about -1200 on this task.
    score = evaluate_policy(pendulum_task, greedy(result.policy), episodes=5).mean_return
    assert score > -800, score


def test_td3_swings_up_pendulum_v1():
    config = TD3Config.for_env('Pendulum-v1', total_steps=6000, learning_starts=1000,
                               hidden=(64, 64), batch_size=128)
    result = td3.train(lambda: gym.make('Pendulum-v1'), config)
    assert isinstance(result.policy, DeterministicActor)
    assert result.log.series('train/actor_loss')[1]
    score = evaluate_policy(lambda: gym.make('Pendulum-v1'), greedy(result.policy),
                            episodes=5).mean_return
    assert score > -800, score


def test_ddpg_runs_with_one_critic_and_reports_its_own_config():
    config = ddpg.DDPGConfig(total_steps=300, learning_starts=100, hidden=(16,),
                             batch_size=32)
    result = ddpg.train(lambda: gym.make('Pendulum-v1'), config)
    assert isinstance(result.policy, DeterministicActor)
    assert 'policy_delay' not in result.config and result.config['hidden'] == [16]
    assert result.log.series('train/critic_loss')[1]


def test_dqn_balances_cartpole():
    config = DQNConfig.for_env('CartPole-v1', total_steps=8000, hidden=(64, 64))
    result = dqn.train(lambda: gym.make('CartPole-v1'), config)
    assert isinstance(result.policy, QPolicy)
    score = evaluate_policy(lambda: gym.make('CartPole-v1'),
                            lambda obs: int(greedy(result.policy)(obs)[0]),
                            episodes=10).mean_return
    # A random policy balances for about 22 steps.
    assert score > 3 * 22, score


def test_sac_with_a_fixed_alpha_restores_the_torch_settings():
    config = SACConfig(total_steps=300, learning_starts=100, ent_coef=0.1, hidden=(16,),
                       batch_size=32, log_every=100, matmul_precision='medium')
    result = sac.train(lambda: gym.make('Pendulum-v1'), config)
    assert torch.get_float32_matmul_precision() == 'highest'
    assert result.log.series('train/alpha')[1] == pytest.approx([0.1, 0.1])
    assert not result.log.series('train/alpha_loss')[1]


def test_dqn_measures_observation_statistics_in_the_warm_up():
    config = DQNConfig(total_steps=300, learning_starts=200, hidden=(16,), normalize_obs=True,
                       double_q=True, train_freq=4, log_every=100)
    result = dqn.train(lambda: gym.make('CartPole-v1'), config)
    std = result.policy.obs_std
    assert torch.all(std > 1e-3) and not torch.allclose(std, torch.ones(4))
    assert result.log.series('train/loss')[1] and result.log.series('train/epsilon')[1]
