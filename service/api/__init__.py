"""The HTTP API: one router per noun, gathered here."""

from fastapi import APIRouter

from . import jobs, notifications, ops, reports, tasks

api_router = APIRouter()
api_router.include_router(tasks.router)
api_router.include_router(notifications.router)
api_router.include_router(reports.router)
api_router.include_router(jobs.router)
api_router.include_router(ops.router)
