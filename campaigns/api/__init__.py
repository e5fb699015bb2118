"""The JSON API for other applications: API keys per account, messages, replies, campaigns and
one-time codes under /api/v1/, described by an OpenAPI schema at /api/v1/openapi.json."""
