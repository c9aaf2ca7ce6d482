"""Every route is guarded: by a role rule or by an explicit public entry."""

import re

import pytest

from app.auth.permissions import ACCESS_ATTR

#: Endpoints that need no guard of ours (Flask's static files).
STATIC_ENDPOINTS = re.compile(r"(^|\.)static$")


def _guarded_endpoints(app):
    for rule in app.url_map.iter_rules():
        if STATIC_ENDPOINTS.search(rule.endpoint):
            continue
        yield rule, getattr(app.view_functions[rule.endpoint], ACCESS_ATTR, None)


def test_every_route_declares_its_access_rule(app):
    unguarded = [rule.rule for rule, access in _guarded_endpoints(app) if access is None]
    assert not unguarded, f"routes without @public or @roles_required: {unguarded}"


def _example_url(rule) -> str:
    values = {arg: 1 for arg in rule.arguments}
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(values[m.group(1)]), rule.rule)


def test_anonymous_visitor_reaches_only_public_routes(app, client):
    checked = 0
    for rule, access in _guarded_endpoints(app):
        if access == "public":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": client.csrf_token()} if method == "POST" else None
            response = client.open(_example_url(rule), method=method, data=data)
            assert response.status_code in (302, 401), (rule.rule, method, response.status_code)
            if response.status_code == 302:
                assert "/login" in response.headers["Location"]
            checked += 1
    assert checked > 5


@pytest.mark.parametrize("role,prefix,allowed", [
    ("caseworker", "/admin/", False),
    ("coordinator", "/admin/", False),
    ("provider", "/admin/", False),
    ("provider", "/referrals/", False),
    ("provider", "/inbox/", True),
    ("caseworker", "/inbox/", False),
    ("coordinator", "/inbox/", False),
    ("coordinator", "/referrals/", False),
    ("admin", "/referrals/", False),
    ("admin", "/admin/", True),
    ("caseworker", "/referrals/", True),
])
def test_roles_reach_only_their_pages(app, client, login_as, role, prefix, allowed):
    login_as(role)
    for rule, _access in _guarded_endpoints(app):
        if not rule.rule.startswith(prefix) or "GET" not in rule.methods or rule.arguments:
            continue
        status = client.get(rule.rule).status_code
        assert (status == 200) if allowed else (status == 403), (rule.rule, status)
