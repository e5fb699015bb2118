"""Waking workers: a task published by its name, so that services never import `tasks` (which
imports them). Only a shortcut: what a worker was woken for, the beat sweep finds anyway."""

from celery import current_app


def wake(task_name: str) -> None:
    """Publish `task_name` once, without retrying when the broker cannot take it."""
    current_app.send_task(task_name, retry=False)
