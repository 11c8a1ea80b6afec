"""A `q` nested past any real filter is a bad request on every API endpoint that reads it."""
import prison
import pytest

from app.errors import MAX_Q_NESTING, q_nesting

DEEP = "(" * 5000


@pytest.mark.parametrize("path", [
    "/api/v1/need/", "/api/v1/need/_info", "/api/v1/need/1", "/api/v1/need/export/csv",
    "/api/v1/need/related/community", "/api/v1/need/distinct/title", "/api/v1/member/_info",
])
@pytest.mark.parametrize("q", [DEEP, "[" * 5000, "(filters:!((col:title,opr:ct,value:'a'))," + DEEP])
def test_a_q_nested_past_any_filter_is_refused_not_a_500(api, path, q):
    client, headers = api("zuzhibu")
    answer = client.get(path, query_string={"q": q}, headers=headers)
    assert answer.status_code == 400, (answer.status_code, answer.get_data()[:200])
    assert "嵌套过深" in answer.json["message"]


def test_brackets_inside_a_search_text_are_not_nesting(api):
    text = "(" * (MAX_Q_NESTING * 2) + "'\"!"
    q = prison.dumps({"filters": [{"col": "title", "opr": "ct", "value": text}]})
    assert q_nesting(q) == 3
    client, headers = api("zuzhibu")
    answer = client.get("/api/v1/need/", query_string={"q": q}, headers=headers)
    assert answer.status_code == 200, answer.get_data()[:200]
    assert answer.json["count"] == 0
