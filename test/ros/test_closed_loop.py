"""Closed loops through the real nodes and real DDS: the expert, then a BC policy from a bag."""

import json
from pathlib import Path

import pytest

from ilrl_ros.core.spec import load_spec
from ilrl_ros.graph import Graph, GraphConfig
from ilrl_testing import Probe, wait_for


@pytest.mark.parametrize('task, episodes', [('pendulum', 2), ('track_follow', 1)])
def test_expert_drives_each_task_to_success_through_the_nodes(task, episodes):
    graph = Graph(GraphConfig(task=task, expert_drive=True, max_episodes=episodes, seed=3))
    probe = Probe(task, graph.context)
    graph.add_node(probe)
    with graph:
        wait_for(lambda: len(probe.results) >= episodes, 120, f'{episodes} {task} episodes')
        manager = graph.nodes['episode_manager']
    outcomes = [r['outcome'] for r in probe.results]
    assert outcomes == ['success'] * episodes, probe.results
    spec = load_spec(task)
    for result in probe.results:
        assert result['length'] > 0
        if task == 'pendulum':
            # 200 steps of Pendulum-v1; the expert's return is far above a random policy's.
            assert result['length'] == 200, [(r['length'], r['duration_s']) for r in probe.results]
            assert result['return'] > -400
        else:
            # A lap of the ~15 m track at up to 0.22 m/s, well inside the timeout.
            assert 60.0 < result['duration_s'] < spec.termination.timeout_s
            assert result['return'] > 100.0
    assert len(manager.results) == episodes


def test_unstamped_twist_commands_work_the_same(tmp_path):
    text = (Path(__file__).parents[2] / 'config/tasks/track_follow.yaml').read_text()
    unstamped = text.replace('  stamped: true', '  stamped: false')
    assert unstamped != text
    spec_path = tmp_path / 'track_follow_twist.yaml'
    spec_path.write_text(unstamped)
    assert load_spec(str(spec_path)).action.message_type == 'geometry_msgs/msg/Twist'
    graph = Graph(GraphConfig(task=str(spec_path), expert_drive=True, max_episodes=1))
    probe = Probe(str(spec_path), graph.context)
    graph.add_node(probe)
    with graph:
        wait_for(lambda: probe.results, 120, 'one episode with Twist commands')
    assert probe.results[0]['outcome'] == 'success', probe.results


@pytest.mark.slow
def test_bc_trained_from_a_recorded_bag_completes_laps_after_a_runtime_swap(tmp_path):
    """The demo's story in small: record, convert, train, swap by parameter, evaluate."""
    from ilrl_ros.demo import run_demo

    out = tmp_path / 'demo'
    assert run_demo(out, demo_episodes=1, eval_episodes=2, bc_steps=1500) == 0
    report = json.loads((out / 'results.json').read_text())
    expert, bc = report['rows']
    assert expert['success_rate'] == 1.0
    assert bc['episodes'] == 2
    assert bc['success_rate'] == 1.0, report['policy_episodes']
    # The evaluation ran the swapped-in checkpoint, not the expert.
    assert all(e['policy'].endswith('checkpoints/bc') for e in report['policy_episodes'])
    assert (out / 'logs' / 'bc' / 'curves.png').stat().st_size > 0
    assert 'success rate' in (out / 'results.md').read_text()
