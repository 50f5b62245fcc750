"""Score policies: run a checkpoint in its simulator, summarise episodes, tabulate results.

``evaluate_checkpoint`` is what ``ilrl evaluate`` runs; ``summarize`` turns per-episode
results (from the simulator or from the episode manager over ROS 2) into one row, and
``format_table`` prints rows as the Markdown table ``ilrl demo`` and live DAgger report.
"""

import math


def evaluate_checkpoint(checkpoint, task=None, episodes: int = 10, seed: int = 1000) -> list:
    """Run a checkpoint in the task's simulator (no ROS); return per-episode results.

    Each result is a dict (episode from 1, seed, outcome, success, return, length,
    duration_s, and the track's mean |lateral| and collisions where the task has them),
    the shape the episode manager's results have over ROS 2.
    """
    from ilrl_ros.core.checkpoint import load_checkpoint
    from ilrl_ros.core.rl.evaluation import evaluate_policy
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env
    loaded = load_checkpoint(checkpoint)
    spec = load_spec(task) if task else loaded.spec
    if task:
        loaded = load_checkpoint(checkpoint, expected_spec=spec)
    evaluation = evaluate_policy(make_env(spec), loaded, episodes=episodes, seed=seed)
    results = []
    for stats in evaluation.episodes:
        row = stats.as_dict()
        del row['expert_steps']  # a policy alone: no expert
        if math.isnan(row['mean_abs_lateral']):
            row['mean_abs_lateral'] = None  # no track: null in JSON, not NaN
        row.update(episode=stats.episode + 1, length=stats.steps,
                   duration_s=stats.steps * spec.dt)
        results.append(row)
    return results


def summarize(results: list, label: str = None) -> dict:
    """Episodes, success rate, mean return and mean lap time of the finished episodes.

    ``results`` are dicts with outcome, success, return and (for the lap time) duration_s;
    aborted episodes are left out. With ``label`` the row names its policy.
    """
    done = [r for r in results if r['outcome'] != 'aborted']
    successes = [r for r in done if r['success']]
    row = {'policy': label} if label is not None else {}
    row.update({
        'episodes': len(done),
        'success_rate': len(successes) / len(done) if done else math.nan,
        'mean_return': sum(r['return'] for r in done) / len(done) if done else math.nan,
        'mean_lap_time_s': (sum(r['duration_s'] for r in successes) / len(successes)
                            if successes and all('duration_s' in r for r in successes)
                            else math.nan)})
    return row


def format_table(rows: list) -> str:
    """Rows of ``summarize`` with a label as a Markdown table."""
    header = '| policy | episodes | success rate | mean return | mean lap time (s) |'
    lines = [header, '|---|---:|---:|---:|---:|']
    for row in rows:
        lines.append(f'| {row["policy"]} | {row["episodes"]} | {row["success_rate"]:.0%} | '
                     f'{row["mean_return"]:.2f} | {row["mean_lap_time_s"]:.1f} |')
    return '\n'.join(lines)
