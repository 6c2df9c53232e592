from proftask.core.echo import MAX_ECHO_CHARS, echo


def test_short_values_are_json():
    assert echo("abc") == '"abc"'
    assert echo(None) == "null" and echo(1.5) == "1.5" and echo(True) == "true" and echo([1]) == "[1]"


def test_long_strings_are_cut_and_their_length_said():
    assert echo("x" * 6000) == '"' + "x" * MAX_ECHO_CHARS + '…" (6000 characters)'


def test_lone_surrogates_and_controls_are_escaped():
    assert echo("\ud800\n") == '"\\ud800\\n"'
    echo("\ud800").encode("utf-8")  # always encodable


def test_long_lists_are_cut_and_non_json_named():
    assert echo(list(range(1000))).endswith("… (4890 characters)")
    assert echo(b"raw") == "bytes"
