"""The command arbiter's decision: one driver at a time, by priority, timeout and locks."""

from hypothesis import given, settings, strategies as st
import pytest

from ilrl_ros.core.arbitration import (ALL, Arbiter, DUPLICATE, FORWARD, IGNORED,
                                       sources_from_lists, ZERO)

MS = 1_000_000
# The graph's defaults: the episode manager's safety source > teleop > expert > policy.
SOURCES = sources_from_lists(['safety', 'teleop', 'expert', 'policy'], [40, 30, 20, 10],
                             [0.5, 0.5, 0.5, 0.5])
HOLD = 'safety_hold'


def make(**kwargs) -> Arbiter:
    return Arbiter(SOURCES, **kwargs)


def kinds(outputs) -> list:
    return [(o.kind, o.source, o.stamp_ns) for o in outputs]


def test_expert_and_policy_answering_each_observation_give_one_command_each():
    arbiter = make()
    sent = []
    for k in range(20):
        t = k * 50 * MS
        # The first observation: the policy's answer comes first, then the expert's.
        order = ('policy', 'expert') if k == 0 else ('expert', 'policy')
        for i, name in enumerate(order):
            decision, outputs = arbiter.receive(name, t + i * MS, stamp_ns=k, message=(name, k))
            sent += outputs
            if k == 0:
                assert decision == (FORWARD if name == 'policy' else DUPLICATE)
            else:
                assert decision == (FORWARD if name == 'expert' else IGNORED)
    assert [o.stamp_ns for o in sent] == list(range(20))
    assert [o.message for o in sent] == [('policy', 0)] + [('expert', k) for k in range(1, 20)]
    assert arbiter.active == 'expert'
    counts = arbiter.counts
    assert (counts['expert'].forwarded, counts['expert'].duplicates) == (19, 1)
    assert (counts['policy'].forwarded, counts['policy'].ignored) == (1, 19)
    events = arbiter.take_events()
    assert [e.active for e in events if e.kind == 'changed'] == ['policy', 'expert']
    # A second driver is a warning, throttled: one per 5 s (here 1 s passed).
    warnings = [e for e in events if e.kind == 'warning']
    assert len(warnings) == 1 and arbiter.warnings == 1
    assert 'expert drives' in warnings[0].text and "policy's commands" in warnings[0].text
    arbiter.receive('policy', 6000 * MS, stamp_ns=99)   # expert timed out: policy drives
    arbiter.receive('expert', 6001 * MS, stamp_ns=100)
    arbiter.receive('policy', 6002 * MS, stamp_ns=100)
    assert arbiter.warnings == 2


def test_teleop_overrides_the_policy_while_it_is_fresh_then_hands_back():
    arbiter = make()
    assert kinds(arbiter.receive('policy', 0, 1)[1]) == [(FORWARD, 'policy', 1)]
    assert kinds(arbiter.receive('teleop', 10 * MS, 500)[1]) == [(FORWARD, 'teleop', 500)]
    assert arbiter.receive('policy', 20 * MS, 2)[0] == IGNORED
    assert arbiter.tick(400 * MS) == []
    assert arbiter.receive('policy', 450 * MS, 3, message='p3')[0] == IGNORED
    # Teleop times out at 510 ms: the policy's newest (still fresh) command goes at once.
    (handover,) = arbiter.tick(520 * MS)
    assert (handover.kind, handover.message) == (FORWARD, 'p3')
    assert arbiter.active == 'policy'
    assert arbiter.tick(530 * MS) == []
    assert arbiter.receive('policy', 540 * MS, 4)[0] == FORWARD


def test_the_handover_judges_freshness_when_the_driver_timed_out_not_at_the_late_tick():
    # Lock step: both answer observation 7; the expert then stops (drive off) and the policy
    # sends nothing more until its answer is forwarded.
    arbiter = make(zero_on_timeout=False)
    arbiter.receive('expert', 0, 6)
    arbiter.receive('policy', 5 * MS, 7, message='p7')
    assert arbiter.tick(500 * MS) == []
    # The tick comes 30 ms after the expert's timeout: the policy's answer is 525 ms old, but
    # it was fresh when the expert timed out, so it goes (else the robot would wait forever).
    (handover,) = arbiter.tick(530 * MS)
    assert (handover.kind, handover.message, arbiter.active) == (FORWARD, 'p7', 'policy')
    # A command the driver answered after (the episode manager's reset, then its zero at
    # the start state) is superseded: at the handover it does not go.
    reset = make()
    reset.receive('policy', 0, message='old')
    reset.receive('safety', 5 * MS)
    assert reset.receive('policy', 6 * MS, message='p-end')[0] == IGNORED
    reset.receive('safety', 100 * MS, zero=True)          # the start state: zero
    assert reset.release('safety', 110 * MS) == [] and reset.active == 'policy'
    assert kinds(reset.receive('policy', 120 * MS, message='p-start')[1]) == \
        [(FORWARD, 'policy', None)]
    # A source that was stale already then does not drive.
    late = make(zero_on_timeout=False)
    late.receive('policy', 0, 5)
    late.receive('expert', 10 * MS, 6)
    assert late.tick(600 * MS) == [] and late.active == ''


def test_a_driver_that_stops_times_out_to_one_zero_stamped_with_the_newest_stamp():
    arbiter = make()
    arbiter.receive('expert', 0, 7, zero=False)
    assert arbiter.tick(500 * MS) == []
    (zero,) = arbiter.tick(501 * MS)
    assert (zero.kind, zero.source, zero.stamp_ns) == (ZERO, 'expert', 7)
    assert arbiter.active == '' and arbiter.tick(2000 * MS) == []
    # Off (a lock-step robot steps on every command): nothing is sent.
    quiet = make(zero_on_timeout=False)
    quiet.receive('expert', 0, 7)
    assert quiet.tick(600 * MS) == [] and quiet.active == ''
    # A driver whose last command was zero needs no second one.
    resting = make()
    resting.receive('expert', 0, 7, zero=True)
    assert resting.tick(600 * MS) == []


def test_e_stop_holds_zero_whatever_comes_until_released():
    arbiter = make()
    arbiter.receive('policy', 0, 1)
    assert kinds(arbiter.engage('e_stop', ALL, 10 * MS)) == [(ZERO, 'e_stop', 1)]
    assert arbiter.active == 'e_stop'
    for k, name in enumerate(['policy', 'teleop', 'safety'], start=2):
        decision, outputs = arbiter.receive(name, (10 + k) * MS, k, message=k)
        assert decision == ZERO and kinds(outputs) == [(ZERO, name, k)]
    assert arbiter.receive('policy', 16 * MS, 5) == (IGNORED, [])   # safety is fresh
    assert arbiter.engage('e_stop', ALL, 20 * MS) == []       # pressed again: no change
    assert arbiter.tick(2000 * MS) == [] and arbiter.active == 'e_stop'
    assert arbiter.disengage('e_stop', 2001 * MS) == []
    assert arbiter.active == ''
    assert arbiter.receive('policy', 2002 * MS, 9)[0] == FORWARD


def test_the_safety_hold_zeroes_sources_below_it_until_the_next_episode():
    arbiter = make()
    arbiter.receive('policy', 0, 1)
    # The episode manager's zero at the unsafe step, then the policy's answer to that step.
    assert arbiter.receive('safety', 5 * MS, 2, zero=True)[0] == FORWARD
    assert arbiter.receive('policy', 6 * MS, 2)[0] == IGNORED
    assert arbiter.engage(HOLD, 40, 7 * MS) == []   # the safety source drives: no zero now
    assert arbiter.tick(600 * MS) == [] and arbiter.active == HOLD
    # After its end, the policy's commands are zeros in their place.
    assert kinds(arbiter.receive('policy', 700 * MS, 3)[1]) == [(ZERO, 'policy', 3)]
    assert kinds(arbiter.receive('teleop', 710 * MS, 4)[1]) == [(ZERO, 'teleop', 4)]
    # A reset controller (the safety source) drives under its own hold.
    assert arbiter.receive('safety', 720 * MS, 5)[0] == FORWARD
    assert arbiter.receive('policy', 730 * MS, 5)[0] == IGNORED
    # The next episode starts: the hold goes and the episode manager yields.
    assert arbiter.disengage(HOLD, 740 * MS) == []
    assert arbiter.release('safety', 740 * MS) == []
    assert arbiter.active == 'teleop'         # fresh, its last command zeroed: not again
    assert arbiter.receive('policy', 1250 * MS, 6)[0] == FORWARD
    assert arbiter.active == 'policy'


def test_a_lock_engaging_on_a_moving_robot_sends_one_zero_and_refusals_stop_a_driver():
    arbiter = make()
    assert kinds(arbiter.engage(HOLD, 40, 0)) == [(ZERO, HOLD, None)]   # nothing seen yet
    arbiter.disengage(HOLD, 1)
    arbiter.receive('expert', 2, 10)
    arbiter.receive('policy', 3, 10, message='p')
    # The expert sends what cannot be read: it stops driving, the policy's command goes.
    assert arbiter.refuse('expert', 4) == []     # stamp 10 was answered already
    assert arbiter.active == 'policy' and arbiter.counts['expert'].refused == 1
    arbiter.receive('policy', 5, 11)
    (zero,) = arbiter.refuse('policy', 6)
    assert (zero.kind, zero.stamp_ns, arbiter.active) == (ZERO, 11, '')


def test_the_clock_stepping_back_keeps_every_age():
    arbiter = make()
    arbiter.receive('teleop', 10_000 * MS, 1)
    arbiter.receive('policy', 10_100 * MS, 2)
    assert arbiter.fresh('teleop', 10_400 * MS)
    arbiter.tick(400 * MS)                     # back by 9.7 s: teleop is 100 ms old still
    assert arbiter.fresh('teleop', 800 * MS) and not arbiter.fresh('teleop', 801 * MS)
    assert arbiter.active == 'teleop'


@pytest.mark.parametrize('lists, problem', [
    ((['a', 'a'], [1, 2], [0.5, 0.5]), 'distinct names; a'),
    ((['a', 'b'], [1, 1], [0.5, 0.5]), 'distinct priorities; 1'),
    ((['a', 'b'], [1], [0.5, 0.5]), '2 names, 1 priorities'),
    ((['a'], [1], [0.0]), 'timeout_s must be'),
    ((['a'], [1], [float('nan')]), 'timeout_s must be'),
    ((['a'], [True], [0.5]), 'priority must be a whole number'),
    (([''], [1], [0.5]), 'needs a name'),
    (([], [], []), 'at least one'),
])
def test_bad_sources_are_refused_with_what_was_expected(lists, problem):
    with pytest.raises(ValueError, match=problem):
        sources_from_lists(*lists)


def test_an_unknown_source_is_named():
    with pytest.raises(ValueError, match="unknown command source 'joystick'.*safety"):
        make().receive('joystick', 0)


NAMES = [s.name for s in SOURCES]
LEVELS = {'e_stop': ALL, HOLD: 40}
operation = st.one_of(
    st.tuples(st.just('msg'), st.sampled_from(NAMES), st.integers(0, 300 * MS),
              st.integers(0, 5), st.booleans()),
    st.tuples(st.just('tick'), st.integers(0, 700 * MS)),
    st.tuples(st.just('engage'), st.sampled_from(sorted(LEVELS))),
    st.tuples(st.just('disengage'), st.sampled_from(sorted(LEVELS))),
    st.tuples(st.just('release'), st.sampled_from(NAMES)),
    st.tuples(st.just('refuse'), st.sampled_from(NAMES)),
)


@settings(max_examples=400)    # 100 once missed a duplicate answer arriving under the e-stop
@given(st.lists(operation, max_size=60), st.booleans(), st.booleans())
def test_any_interleaving_gives_one_driver_and_zero_while_locked(operations, stamped,
                                                                 zero_on_timeout):
    arbiter = make(zero_on_timeout=zero_on_timeout)
    by_name = {s.name: s for s in SOURCES}
    # An independent account of freshness: last good arrival, and who yielded since.
    arrived, released, locks = {}, set(), {}
    now, stamp, serial, output_messages = 0, 0, 0, []

    def fresh(name):
        return name in arrived and name not in released \
            and now - arrived[name] <= by_name[name].timeout_s * 1e9

    def check(outputs, selected=None):
        for out in outputs:
            source = by_name.get(out.source)
            if out.kind == FORWARD:
                # Never a command from below a fresh source, nor from under a lock.
                higher = [s for s in SOURCES if s.priority > source.priority and fresh(s.name)]
                assert not higher, (out, higher)
                assert not any(level > source.priority for level in locks.values()), out
                assert out.message[0] == out.source
            if out.message is not None:
                output_messages.append(out.message)
        # Each message is output at most once (forwarded, or a zero in its place).
        assert len(output_messages) == len(set(output_messages))
        if selected is not None:
            assert len(outputs) == (1 if selected in (FORWARD, ZERO) else 0)

    for op in operations:
        kind = op[0]
        if kind == 'msg':
            _, name, dt, step, zero = op
            now += dt
            stamp += step
            serial += 1
            arrived[name] = now
            released.discard(name)
            decision, outputs = arbiter.receive(name, now, stamp if stamped else None,
                                                (name, serial), zero)
            winner = next(s.name for s in SOURCES if fresh(s.name))
            assert (decision == IGNORED) == (winner != name)
            if not stamped:
                assert decision != DUPLICATE
            check(outputs, decision)
        elif kind == 'tick':
            now += op[1]
            check(arbiter.tick(now))
        elif kind == 'engage':
            locks[op[1]] = LEVELS[op[1]]
            check(arbiter.engage(op[1], LEVELS[op[1]], now))
        elif kind == 'disengage':
            locks.pop(op[1], None)
            check(arbiter.disengage(op[1], now))
        else:
            released.add(op[1])
            check(getattr(arbiter, op[0])(op[1], now))
        if 'e_stop' in locks:
            assert arbiter.active == 'e_stop'
        assert arbiter.active in ('', *NAMES, *locks)
    status = arbiter.status()
    assert status['outputs'] >= len(output_messages)
    assert sum(c['forwarded'] + c['zeroed'] for c in status['sources'].values()) \
        == len(output_messages)
