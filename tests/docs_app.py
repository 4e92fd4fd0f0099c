"""The FastAPI docs' BackgroundTasks example (tutorial/background-tasks/), moved to durable jobs by changing one
annotation: `BackgroundTasks` -> `DurableTasks`. The workers find `write_notification` through
`JOB_KINDS=tests.docs_app:write_notification`."""

import os
import time

from fastapi import FastAPI

from service.web.background import DurableTasks

app = FastAPI()


def write_notification(email: str, message=""):
    with open("log.txt", mode="w") as email_file:
        content = f"notification for {email}: {message}"
        email_file.write(content)


@app.post("/send-notification/{email}")
async def send_notification(email: str, background_tasks: DurableTasks):
    background_tasks.add_task(write_notification, email, message="some notification")
    return {"message": "Notification sent in the background"}


# Beside the docs' example, for the tests: a handler that reports its job's id, one whose call does not fit, and a
# task slow enough to kill a worker in the middle of.


def append_slowly(email: str, message: str = "") -> None:
    time.sleep(float(os.environ.get("SLOW_TASK_S", "2")))
    with open("slow-log.txt", mode="a") as f:
        f.write(f"notification for {email}: {message}\n")


@app.post("/slow/{email}")
async def send_slowly(email: str, background_tasks: DurableTasks) -> dict[str, str]:
    return {"task_id": background_tasks.add_task(append_slowly, email, message="slow")}


@app.post("/wrong/{email}")
async def send_wrong(email: str, background_tasks: DurableTasks) -> dict[str, str]:
    background_tasks.add_task(write_notification, email, "a message", "one argument too many")
    return {"message": "never reached"}
