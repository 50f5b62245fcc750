"""`ilrl train irl`: MaxEnt IRL on the coloured grid from the command line."""

import pytest

from ilrl_ros.cli import main


def test_help_shows_the_flags_and_an_example(capsys):
    with pytest.raises(SystemExit):
        main(['train', 'irl', '--help'])
    out = capsys.readouterr().out
    assert 'ilrl train irl --demos 200' in out
    for flag in ('--size', '--colours', '--seed', '--demos', '--weights', '--demonstrator'):
        assert flag in out


def test_prints_the_learned_weights_next_to_the_true_ones(capsys):
    assert main(['train', 'irl', '--size', '4', '--colours', '3', '--weights=-1,0.4,0.8',
                 '--seed', '1']) == 0
    out = capsys.readouterr().out
    assert 'R red      -1.000    -1.000     -1.000     -1.000  ok' in out
    assert 'signs: 3 of 3 match' in out
    assert 'optimal for the true reward in 15 of 15 states' in out
    assert main(['train', 'irl', '--size', '4', '--colours', '3', '--demos', '50',
                 '--demo-steps', '30']) == 0
    assert '50 sampled demonstrations' in capsys.readouterr().out


def test_bad_flags_are_a_sentence(capsys):
    assert main(['train', 'irl', '--colours', '3', '--weights', '1,2']) == 2
    assert 'expected 3 finite numbers' in capsys.readouterr().err
    assert main(['train', 'irl', '--gamma', '1']) == 2
    assert 'gamma 1.0 is out of range' in capsys.readouterr().err
