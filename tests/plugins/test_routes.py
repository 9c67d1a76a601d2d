"""Route templates: {name} is a decimal id, {name:token} an opaque credential shown only as its template."""

import re

from server.plugins import Route, template, token_parts


class Handler:
    pass


def test_an_id_part_matches_digits_only():
    route = Route("/v1/pets/{pet_id}/weight.svg", Handler)
    assert re.fullmatch(route.pattern, "/v1/pets/12/weight.svg").groupdict() == {"pet_id": "12"}
    for path in ("/v1/pets/abc/weight.svg", "/v1/pets/12/weightxsvg", "/v1/pets/-1/weight.svg"):
        assert re.fullmatch(route.pattern, path) is None, path
    assert (route.template, route.secret, token_parts(route.path)) == ("/v1/pets/{pet_id}/weight.svg", False,
                                                                       frozenset())


def test_a_token_part_matches_a_url_safe_token_and_is_secret():
    route = Route("/v1/calendar/{token:token}.ics", Handler)
    token = "Ab-_09" * 7 + "z"  # 43 characters: what secrets.token_urlsafe(32) gives
    assert re.fullmatch(route.pattern, f"/v1/calendar/{token}.ics").groupdict() == {"token": token}
    for path in ("/v1/calendar/short.ics", f"/v1/calendar/{token}/x.ics", f"/v1/calendar/{token}%2F.ics",
                 f"/v1/calendar/{'a' * 129}.ics", f"/v1/calendar/{token}.icsx"):
        assert re.fullmatch(route.pattern, path) is None, path
    assert (route.template, route.secret, token_parts(route.path)) == ("/v1/calendar/{token}.ics", True,
                                                                       frozenset({"token"}))
    assert template("/a/{x}/{y:token}") == "/a/{x}/{y}"
