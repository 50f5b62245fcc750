"""The report: the event-mode table and the timer-mode figures, read against the targets."""

import math
import statistics

TARGETS = {'rate_hz': 500.0, 'p50_ratio': 1.3, 'p99_ratio': 1.5, 'timer_on_time': 0.995}


def fmt(value, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return '-'
    return f'{value:.{digits}f}'


def print_event_table(results: dict, args) -> None:
    net = results['network']
    arch = '-'.join(str(n) for n in (net['obs_dim'], *net['hidden'], net['act_dim']))
    print(f'\nObservation-to-command latency, event mode: task {results["task"]}, MLP {arch}, '
          f'{args.duration:g} s per run x {args.rounds} round(s); latency in microseconds')
    header = (f'{"rate Hz":>7}  {"system":<6} {"sent":>6} {"samples":>7} {"p50":>6} {"p99":>6} '
              f'{"max":>6} {"missed":>6} {"(lost+late)":<11} {"cpu":>4} {"others":>6} '
              f'{"wait":>4} '
              f'{"p50x":>5} {"p99x":>5}')
    print(header)
    print('-' * len(header))
    for row in results['event']:
        lat = row['latency_us']
        system = row['system'] + ('*' if row['over_limit_runs'] else '')
        print(f'{row["rate_hz"]:>7g}  {system:<6} {row["sent"]:>6} {row["samples"]:>7} '
              f'{fmt(lat["p50"]):>6} {fmt(lat["p99"]):>6} {fmt(lat["max"]):>6} '
              f'{row["missed"]:>6} {"(%d+%d)" % (row["lost"], row["late"]):<11} '
              f'{fmt(100 * row["sut_cpu"]) + "%":>4} {fmt(row["others_cpu"], 2):>6} '
              f'{fmt(100 * row["cpu_pressure"]) + "%":>4} '
              f'{fmt(row.get("p50_ratio"), 2):>5} {fmt(row.get("p99_ratio"), 2):>5}')
    publish = results['driver_publish_us']
    print(f'p50x, p99x: ilrl / bare. cpu: the SUT process, share of one core; others: cores '
          f'used by all other processes but the driver; wait: share of time some task waited '
          f'for a CPU (PSI).\nLatency runs from just before the '
          f'driver publishes an observation (that took it p50 {fmt(publish["p50"])} us) to the '
          f'DDS reception of the command.\necho answers with a constant command (transport '
          f'and executor only); bare runs the same computation as ilrl with plain rclpy, '
          f'numpy and torch.')
    if results.get('answer_max_abs_diff') is not None:
        print(f'bare and ilrl commands for the same observations differ by at most '
              f'{results["answer_max_abs_diff"]:.2g}.')
    rows = [r for r in results['event'] if r['rate_hz'] == TARGETS['rate_hz']
            and r.get('p50_ratio') is not None]
    for row in rows:
        for name in ('p50', 'p99'):
            value, target = row[f'{name}_ratio'], TARGETS[f'{name}_ratio']
            verdict = 'met' if value is not None and value <= target else 'NOT met'
            paired = sorted(r for r in row[f'paired_{name}_ratios'] if r is not None)
            spread = '' if len(paired) < 2 else (
                f'; per round {fmt(statistics.median(paired), 2)}x median, '
                f'{fmt(paired[0], 2)}-{fmt(paired[-1], 2)}x range')
            print(f'Target at {TARGETS["rate_hz"]:g} Hz: {name} ilrl/bare {fmt(value, 2)}x '
                  f'(target <= {target}x): {verdict}{spread}')
    flagged = [r for r in results['event'] if r['over_limit_runs']]
    if flagged:
        print(f'*: {sum(r["over_limit_runs"] for r in flagged)} run(s) kept although other '
              f'processes used more than --max-others during them (over_limit_runs and '
              f'per_run_latency_us in the JSON).')


def print_timer(timer: dict) -> None:
    period_us = 1e6 / timer['rate_hz']
    slots = timer['slots']
    share = slots['on_time_fraction']
    verdict = 'met' if share is not None and share >= TARGETS['timer_on_time'] else 'NOT met'
    print(f'\nTimer mode: the policy node at control_rate_hz {timer["rate_hz"]:g}, observations '
          f'streamed at the same rate, {timer["seconds"]:g} s.\n(The bare ping-pong has no '
          f'timer mode: it answers each observation, so there is no floor to compare with.)')
    print(f'  commands received: {timer["commands"]} = {timer["commands_per_s"]:.1f}/s '
          f'(expected {timer["rate_hz"]:g}/s)')
    print(f'  ticks on time (periods of the timer grid with exactly one command within '
          f'+/-{period_us / 2:.0f} us): {slots["one"]}/{slots["slots"]} = '
          f'{fmt(100 * (share or 0), 2)}% (target >= {100 * TARGETS["timer_on_time"]:g}%): '
          f'{verdict}; empty {slots["empty"]}, doubled {slots["crowded"]}')
    iv = timer['interval_us']
    print(f'  intervals between arrivals within +/-50% of {period_us:.0f} us: '
          f'{timer["regular_intervals"]}/{timer["intervals"]} = '
          f'{fmt(100 * (timer["regular_fraction"] or 0), 2)}% (a late tick spoils two); '
          f'p50 {fmt(iv["p50"])}, p99 {fmt(iv["p99"])}, max {fmt(iv["max"])} us')
    print(f'  SUT cpu {100 * timer["sut_cpu"]:.0f}%, others {timer["others_cpu"]:.2f} cores, '
          f'cpu wait {fmt(100 * timer["cpu_pressure"])}%')
    if 'observation_age_us' in timer:
        age = timer['observation_age_us']
        print(f'  age of the observation a command answers, us: p50 {fmt(age["p50"])}, '
              f'p99 {fmt(age["p99"])}, max {fmt(age["max"])}')
    if timer.get('over_limit'):
        print('  (kept although other processes used more than --max-others during it)')
    counts = timer.get('policy_counts')
    if counts:
        total = counts['ticks'] + counts['missed_ticks'] + counts['stale']
        print(f'  /policy/status counters over {counts["seconds"]:.0f} s: ticks acted '
              f'{counts["ticks"]}, missed_ticks {counts["missed_ticks"]} '
              f'({fmt(100 * counts["missed_ticks"] / total if total else None, 2)}%), stale '
              f'{counts["stale"]}, errors {counts["errors"]}')
