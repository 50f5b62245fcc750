"""Statistics: pure functions over the driver's records (latencies, missed ticks, timer grid)."""

import bisect

from latency.driver import VARIANTS


def summary_us(values_ns) -> dict:
    """p50 / p99 / max / mean of nanosecond values, in microseconds (None when empty)."""
    import numpy as np
    if len(values_ns) == 0:
        return {'p50': None, 'p99': None, 'max': None, 'mean': None}
    v = np.asarray(values_ns, dtype=np.float64) / 1e3
    p50, p99 = np.percentile(v, [50, 99])
    return {'p50': float(p50), 'p99': float(p99), 'max': float(v.max()),
            'mean': float(v.mean())}


def match_commands(sends, commands, stamped: bool):
    """Pair each observation with its first command.

    ``sends``: [(stamp_ns, send_ns)] in send order. ``commands``: [(stamp_ns, recv_ns,
    callback_ns, msg)] in arrival order; unstamped commands (``stamp_ns`` None) go to the
    newest observation sent before they arrived. Returns {send index: command} and the
    number of commands that answered nothing new (extra).
    """
    by_stamp = {stamp: i for i, (stamp, _) in enumerate(sends)}
    send_times = [t for _, t in sends]
    matched, extra = {}, 0
    for command in commands:
        if stamped:
            i = by_stamp.get(command[0])
        else:
            i = bisect.bisect_left(send_times, command[1]) - 1
            i = i if i >= 0 else None
        if i is None or i in matched:
            extra += 1
            continue
        matched[i] = command
    return matched, extra


def event_samples(record: dict, stamped: bool) -> dict:
    """Latencies and missed ticks of the observations a run sent inside its window."""
    sends = record['sends']
    matched, extra = match_commands(sends, record['commands'], stamped)
    start, end = record['window']
    out = {'latency': [], 'callback': [], 'sent': 0, 'lost': 0, 'late': 0, 'extra': extra,
           'answers': {}}
    for i, (_, send_ns) in enumerate(sends):
        if not start <= send_ns < end:
            continue
        out['sent'] += 1
        command = matched.get(i)
        if command is None:
            out['lost'] += 1
            continue
        out['latency'].append(command[1] - send_ns)
        out['callback'].append(command[2] - send_ns)
        out['answers'].setdefault(i % VARIANTS, command[3])
        if i + 1 < len(sends) and command[1] > sends[i + 1][1]:
            out['late'] += 1
    return out


def event_stats(records: list, stamped: bool) -> dict:
    """Pool the samples of several runs of one rate and system."""
    runs = [event_samples(r, stamped) for r in records]
    latency = [x for r in runs for x in r['latency']]
    stats = {key: sum(r[key] for r in runs) for key in ('sent', 'lost', 'late', 'extra')}
    stats.update(samples=len(latency), missed=stats['lost'] + stats['late'],
                 latency_us=summary_us(latency),
                 callback_latency_us=summary_us([x for r in runs for x in r['callback']]),
                 per_run_latency_us=[summary_us(r['latency']) for r in runs])
    answers = {}
    for r in runs:
        for k, msg in r['answers'].items():
            answers.setdefault(k, msg)
    return stats, answers


def tick_slots(arrivals_ns, period_ns: float) -> dict:
    """Count the control periods that got exactly one command, none, or more.

    The timer keeps its phase, so the periods form a grid; it is placed at the arrivals'
    mean phase, and each arrival belongs to the grid point nearest to it (within half a
    period). A tick that comes more than half a period late leaves its slot empty and
    doubles up the next one.
    """
    import numpy as np
    arrivals = np.asarray(arrivals_ns, dtype=np.int64)
    if arrivals.size < 2:
        return {'slots': 0, 'one': 0, 'empty': 0, 'crowded': 0, 'on_time_fraction': None}
    offset = arrivals - arrivals[0]
    angle = 2.0 * np.pi * np.mod(offset, period_ns) / period_ns
    phase = np.angle(np.mean(np.exp(1j * angle))) / (2.0 * np.pi) * period_ns
    slot = np.rint((offset - phase) / period_ns).astype(np.int64)
    counts = np.bincount(slot - slot.min())
    one = int(np.count_nonzero(counts == 1))
    return {'slots': int(counts.size), 'one': one,
            'empty': int(np.count_nonzero(counts == 0)),
            'crowded': int(np.count_nonzero(counts > 1)), 'on_time_fraction': one / counts.size}


def timer_stats(record: dict, rate_hz: float, stamped: bool) -> dict:
    """Command rate and regularity of a timer-mode run, from command arrival times."""
    import numpy as np
    start, end = record['window']
    commands = [c for c in record['commands'] if start <= c[1] < end]
    period_ns = 1e9 / rate_hz
    arrivals = [c[1] for c in commands]
    intervals = np.diff(np.asarray(arrivals, dtype=np.int64))
    regular = int(np.count_nonzero((intervals >= 0.5 * period_ns)
                                   & (intervals <= 1.5 * period_ns)))
    seconds = (end - start) / 1e9
    result = {'rate_hz': rate_hz, 'commands': len(commands), 'seconds': seconds,
              'commands_per_s': len(commands) / seconds, 'slots': tick_slots(arrivals, period_ns),
              'intervals': int(intervals.size), 'regular_intervals': regular,
              'regular_fraction': regular / intervals.size if intervals.size else None,
              'interval_us': summary_us(intervals)}
    if stamped:
        # How old the observation a command answers is when it arrives: up to a period of
        # waiting for the tick on top of the pass through the node.
        send_by_stamp = dict(record['sends'])
        result['observation_age_us'] = summary_us(
            [c[1] - send_by_stamp[c[0]] for c in commands if c[0] in send_by_stamp])
    # The node's own counters over the whole seconds of status between the window's ends.
    statuses = [(t, s) for t, s in record['statuses'] if start <= t <= end]
    if len(statuses) >= 2:
        (t0, first), (t1, last) = statuses[0], statuses[-1]
        result['policy_counts'] = {
            'seconds': (t1 - t0) / 1e9,
            **{k: last[k] - first[k] for k in ('ticks', 'missed_ticks', 'commands',
                                                'zero_commands', 'stale', 'errors')}}
    return result


def ratio(a, b):
    return a / b if a is not None and b else None


def event_rows(args, driver, records: dict):
    """One pooled row per rate and system, with ilrl/bare ratios; and the answers' spread."""
    import numpy as np
    rows, answers = [], {}
    for rate in args.rates:
        by_system = {}
        for system in args.systems:
            runs = records[(rate, system)]
            stats, seen = event_stats(runs, driver.stamped)
            if system != 'echo':
                for k, msg in seen.items():
                    answers.setdefault(system, {}).setdefault(k, driver.command_values(msg))
            by_system[system] = row = {
                'rate_hz': rate, 'system': system, **stats,
                'sut_cpu': float(np.mean([r['sut_cpu'] for r in runs])),
                'driver_cpu': float(np.mean([r['driver_cpu'] for r in runs])),
                'others_cpu': float(np.mean([r['others_cpu'] for r in runs])),
                'cpu_pressure': float(np.mean([r['cpu_pressure'] for r in runs])),
                'driver_publish_us': summary_us([p for r in runs for p in r['publish_ns']]),
                'startup_s': [r['startup_s'] for r in runs],
                'attempts': [r['attempts'] for r in runs],
                'over_limit_runs': sum(r['over_limit'] for r in runs)}
            rows.append(row)
        if 'bare' in by_system and 'ilrl' in by_system:
            bare, ilrl = by_system['bare'], by_system['ilrl']
            for key in ('p50', 'p99'):
                ilrl[f'{key}_ratio'] = ratio(ilrl['latency_us'][key], bare['latency_us'][key])
                # Runs of one round ran back to back: their ratios share the machine's mood.
                ilrl[f'paired_{key}_ratios'] = [
                    ratio(i[key], b[key]) for i, b in zip(ilrl['per_run_latency_us'],
                                                          bare['per_run_latency_us'])]
    diff = None
    if 'bare' in answers and 'ilrl' in answers:
        common = set(answers['bare']) & set(answers['ilrl'])
        diff = max((float(np.max(np.abs(answers['bare'][k] - answers['ilrl'][k])))
                    for k in common), default=None)
    return rows, diff
