"""The verbs of the messaging domain, as plain functions: unit-testable without Celery or HTTP."""
