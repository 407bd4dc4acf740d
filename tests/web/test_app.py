"""The app factory mounts every domain's routes as the domains declare them."""

from __future__ import annotations

from fastapi.routing import APIRoute

from siyu.core.db import Database
from siyu.web.app import _domain_routers, create_app


def test_every_domain_route_is_mounted_once_with_what_its_router_declares(db: Database) -> None:
    # The factory copies the routers' routes instead of including the routers (one matching layer less
    # per request): that is only sound while no router carries dependencies, a prefix or tags of its own
    # that its routes would lose.
    app = create_app(db)
    mounted = [route for route in app.router.routes if isinstance(route, APIRoute)]
    for router in _domain_routers("api") + _domain_routers("views"):
        assert router.dependencies == [], "a router's own dependencies would be lost by copying its routes"
        for route in router.routes:
            assert route in mounted, f"{route.path} is not mounted"
    keys = [(route.path, tuple(sorted(route.methods))) for route in mounted]
    assert len(keys) == len(set(keys)), "a route is mounted twice"
    assert any(route.path == "/api/customers/lookup" for route in mounted)
