"""The HTTP API: one router per noun, gathered here."""

from fastapi import APIRouter

from service.web.api import auth, jobs, notifications, ops, reports, tasks

routers: list[APIRouter] = [
    tasks.router,
    notifications.router,
    reports.router,
    jobs.bulk_router,
    jobs.router,
    ops.router,
    auth.router,
]
