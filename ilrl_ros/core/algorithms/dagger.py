"""DAgger: train on the expert's data, run the learner, have the expert label what it visited.

Ross, Gordon & Bagnell, "A Reduction of Imitation Learning and Structured Prediction to
No-Regret Online Learning", AISTATS 2011 (Algorithm 3.1). Round i runs
pi_i = beta_i pi* + (1 - beta_i) pi_hat_i (per step: the expert's action with probability
beta_i), has the expert label every visited state, aggregates D <- D u D_i and trains
pi_hat_{i+1} on D. Round 1 has beta_1 = 1 (pure expert data, which is behavior cloning).
This runs in the simulator without ROS; the live ROS 2 version reuses ``beta_for_round``
and ``ilrl_ros.core.rollouts.aggregate``.
"""

from dataclasses import asdict, dataclass, field
import logging
import math
import time

from ilrl_ros.core.algorithms.bc import BCConfig, train as train_bc
from ilrl_ros.core.rl.evaluation import evaluate_policy
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.rollouts import aggregate, collection_seed, rollout, round_amount, RoundPlan
from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.tasks import make_env, make_expert
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

SCHEDULES = ('ross', 'exponential')


def beta_for_round(schedule: str, i: int, p: float = 0.5) -> float:
    """The probability of executing the expert in round ``i`` (1-based).

    'ross': beta_1 = 1, then 0 (Ross et al. 2011's simplest choice, found to work best);
    'exponential': beta_i = p^(i-1), the decaying mixture of their analysis.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f'beta schedule {schedule!r} is not known; use one of '
                         f'{", ".join(SCHEDULES)}')
    if int(i) != i or i < 1:
        raise ValueError(f'DAgger rounds count from 1, got round {i!r}')
    if schedule == 'ross':
        return 1.0 if i == 1 else 0.0
    if not 0.0 <= p <= 1.0:
        raise ValueError(f'the exponential schedule needs p in [0, 1], got {p}')
    return float(p ** (i - 1))


@dataclass
class DAggerConfig(RoundPlan):
    """DAgger settings (simulation, no ROS); round sizes and scoring from ``RoundPlan``."""

    rounds: int = 4
    """Rounds of collect-label-aggregate-retrain; round 1 is the expert alone (BC)."""
    schedule: str = 'ross'
    """Beta schedule: 'ross' (1, 0, 0, ...) or 'exponential' (p^(i-1))."""
    p: float = 0.5
    """Decay of the exponential schedule."""
    warm_start: bool = False
    """Start each round's training from the previous policy instead of from scratch (the
    paper retrains from scratch on the aggregate)."""
    bc: BCConfig = field(default_factory=BCConfig)
    """Behavior cloning settings for every round's training."""


@dataclass
class DAggerResult:
    """The final policy, the per-round table and the aggregated dataset."""

    policy: object
    """The network trained on the whole aggregate (``MLPPolicy``)."""
    rounds: list
    """One dict per round: round, beta, new_labels, dataset_size, expert_fraction,
    collect_success_rate, train_loss, val_loss, eval_success_rate, eval_mean_return,
    eval_mean_abs_lateral, eval_collisions, seconds."""
    data: object
    """The aggregated ``Demonstrations`` the final policy was trained on."""
    policies: list
    """The policy trained after each round (the last is ``policy``)."""
    config: dict
    seconds: float

    @property
    def best_round(self) -> int:
        """The round whose policy evaluated best (success rate, then return).

        Ross et al. return the best policy on validation; ``policy`` is the last one.
        """
        scored = [r for r in self.rounds if not math.isnan(r['eval_success_rate'])]
        if not scored:
            return self.rounds[-1]['round']
        return max(scored, key=lambda r: (r['eval_success_rate'], r['eval_mean_return'],
                                          r['round']))['round']


def run(spec: TaskSpec, config: DAggerConfig = DAggerConfig(), progress=None, expert=None,
        initial_data=None, log: TrainingLog = None) -> DAggerResult:
    """Run DAgger on the task's simulator with its expert (or ``expert``).

    ``initial_data`` (e.g. recorded demonstrations) joins the aggregate before round 1.
    ``progress(round, rounds, metrics)`` is called after each round; ``log`` gets
    ``dagger/...`` and ``eval/...`` scalars by round.
    """
    if config.rounds < 1:
        raise ValueError(f'DAgger needs at least 1 round, got {config.rounds}')
    round_amount(config, 1)  # checks the round sizes before any work
    beta_for_round(config.schedule, 1, config.p)  # checks the schedule before any work
    with torch_settings(1):
        return _run(spec, config, progress, expert, initial_data, log or TrainingLog())


def _run(spec, config, progress, expert, initial_data, log) -> DAggerResult:
    started = time.monotonic()
    env = make_env(spec)
    expert = expert or make_expert(spec)
    datasets = [initial_data] if initial_data is not None else []
    policy, policies, table = None, [], []
    max_steps = config.max_episode_steps or None
    for i in range(1, config.rounds + 1):
        round_started = time.monotonic()
        beta = beta_for_round(config.schedule, i, config.p)
        if policy is None and beta < 1.0:
            raise ValueError(f'round {i} has beta={beta} but there is no learner yet; give '
                             f'initial_data or a schedule with beta_1 = 1')
        amount = round_amount(config, i)
        collected = rollout(env, expert, policy, beta=beta, seed=collection_seed(config.seed, i),
                            max_episode_steps=max_steps, **amount)
        datasets.append(collected.data)
        data = aggregate(datasets)
        trained = train_bc(data, config.bc,
                           init_policy=policy if config.warm_start else None)
        policy = trained.policy
        policies.append(policy)
        evaluation = (evaluate_policy(env, policy, config.eval_episodes, config.eval_seed,
                                      max_steps).summary() if config.eval_episodes else {})
        collect = collected.summary()
        row = {'round': i, 'beta': beta, 'new_labels': len(collected.data),
               'dataset_size': len(data), 'expert_fraction': collect['expert_fraction'],
               'collect_success_rate': collect['success_rate'],
               'train_loss': trained.train_loss, 'val_loss': trained.val_loss,
               'eval_success_rate': evaluation.get('success_rate', math.nan),
               'eval_mean_return': evaluation.get('mean_return', math.nan),
               'eval_mean_abs_lateral': evaluation.get('mean_abs_lateral', math.nan),
               'eval_collisions': evaluation.get('collisions', 0),
               'seconds': time.monotonic() - round_started}
        table.append(row)
        metrics = {'dagger/beta': beta, 'dagger/dataset_size': len(data),
                   'eval/success_rate': row['eval_success_rate'],
                   'eval/mean_return': row['eval_mean_return']}
        for name, value in metrics.items():
            log.scalar(name, value, i)
        logger.info('DAgger round %d/%d: beta %.3g, +%d labels, %d in all, eval success '
                    '%.0f%%, return %.1f', i, config.rounds, beta, row['new_labels'],
                    len(data), 100 * row['eval_success_rate'], row['eval_mean_return'])
        if progress:
            progress(i, config.rounds, metrics)
    env.close()
    config_dict = asdict(config)
    config_dict['bc']['hidden'] = list(config.bc.hidden)
    return DAggerResult(policy=policy, rounds=table, data=data, policies=policies,
                        config=config_dict, seconds=time.monotonic() - started)


def format_rounds(rounds: list) -> str:
    """The per-round table as Markdown."""
    lines = ['| round | beta | new labels | dataset | eval success | eval return | '
             'eval mean abs lateral (m) |', '|---:|---:|---:|---:|---:|---:|---:|']
    for r in rounds:
        lines.append(f'| {r["round"]} | {r["beta"]:.3g} | {r["new_labels"]} | '
                     f'{r["dataset_size"]} | {r["eval_success_rate"]:.0%} | '
                     f'{r["eval_mean_return"]:.1f} | {r["eval_mean_abs_lateral"]:.3f} |')
    return '\n'.join(lines)
