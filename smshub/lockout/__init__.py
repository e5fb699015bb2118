"""Login lock-outs (`locks`) and the refusal of addresses that try invalid API keys (`apikeys`).

Counts live in the cache every process shares (`counters`); lock-outs in the database, so that
admin lists them and an administrator can end one (admin, or `manage.py unlock_login`).
"""
