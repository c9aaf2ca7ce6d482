"""Directory fixtures: the demo places, and services made through the services layer."""

from __future__ import annotations

import itertools

import pytest

from app.directory import services
from app.directory.demo import PLACES_FILE
from app.directory.places import get_place, load_places
from app.extensions import db
from tests import factories

_counter = itertools.count(1)

MARACAIBO, ZULIA, VENEZUELA = "ve/zulia/maracaibo", "ve/zulia", "ve"
CARACAS, PRZEMYSL, POLAND = "ve/distrito-capital/caracas", "pl/podkarpackie/przemysl", "pl"


@pytest.fixture
def request_ctx(app):
    """A request context (translated strings need one to pick the language), English."""
    with app.test_request_context(headers={"Accept-Language": "en"}):
        yield
        db.session.remove()


@pytest.fixture
def places(request_ctx):
    """The demo places (Venezuela and Poland), committed."""
    load_places(PLACES_FILE)
    db.session.commit()


def make_service(organisation=None, *, places=(MARACAIBO,), **fields):
    """A service through ``services.create_service``; sensible defaults, any field overridable."""
    n = next(_counter)
    values = {"name": f"Service {n:03d}", "service_type": "health", "sectors": ["GBV", "CP"],
              "languages": ["es"], "sms_phone": f"+58412000{n:04d}", "sms_locale": "es"}
    values.update(fields)
    values["places"] = [get_place(code) for code in places]
    return services.create_service(organisation or factories.organisation(), **values)
