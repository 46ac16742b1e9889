"""How the admin app reaches the gateway's services: the admin app keeps the main app under
MAIN_APP. A module of its own, so that the site and the API's handlers both import it
instead of each other."""

from __future__ import annotations

from aiohttp import web

from gateway.services import SERVICES, Services

MAIN_APP = web.AppKey("main_app", web.Application)


def app_services(admin: web.Application) -> Services:
    return admin[MAIN_APP][SERVICES]


def request_services(request: web.Request) -> Services:
    # config_dict: the API is a sub-app, and MAIN_APP is set on the admin app above it.
    return request.config_dict[MAIN_APP][SERVICES]
