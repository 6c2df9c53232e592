"""Spliced answers (services/graphql_svc/big_answers.Splices): the text goes where its path is,
and nowhere when an error nulled the path or the whole data."""
import json

from services.graphql_svc.big_answers import Splices


def test_the_text_goes_where_its_path_is_and_nowhere_when_an_error_nulled_it():
    splices = Splices()
    splices.add(("a", "tree", "elements"), b'[{"id":"0"}]')
    answered = {"data": {"version": "10.3", "a": {"tree": {"elements": []}}}}
    assert json.loads(splices.body(answered)) == {"data": {"version": "10.3", "a": {"tree": {"elements": [{"id": "0"}]}}}}
    for nulled in ({"data": None, "errors": [{"message": "x"}]}, {"errors": [{"message": "x"}]},
                   {"data": {"a": None}, "errors": [{"message": "x"}]}, {"data": {"a": {"tree": None}}}):
        body = splices.body(json.loads(json.dumps(nulled)))
        assert json.loads(body) == nulled and b"proftask-splice" not in body
