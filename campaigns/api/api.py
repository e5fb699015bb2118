"""The API under /api/v1/: its operations, authentication, error shape and OpenAPI schema.

The schema is served at /api/v1/openapi.json and the interactive docs at /api/v1/docs, with
Swagger UI's files from the django-ninja package (static files, no CDN).
"""

from ninja import NinjaAPI

from . import errors
from .auth import AUTH
from .routes import campaigns, contacts, lists, messages, otp, replies

DESCRIPTION = """\
Send SMS, follow them, read replies and send one-time codes, for one account; keep its
contacts (with their custom fields) and lists, one at a time or 10,000 at once.

**Authentication**: an API key, created by an account admin on the *API keys* page (or in
admin), sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. A key sees only its own
account's data; another account's message, campaign, contact or list is a 404.

**Errors** all have one shape: `{"error": {"code": "...", "message": "...", "fields":
{"<field>": ["..."]}}}`; `fields` names each input at fault (`to.2` is the third number of a
list), and is empty when no single input is.

**Retries**: send an `Idempotency-Key` header (any unique string, e.g. a UUID) with a POST. The
same key with the same request within 24 hours returns the first answer and does nothing new
(`Idempotent-Replayed: true`); the same key with another request is a 409.

**Rate limit**: each key may make a fixed number of requests per clock minute (120 by
default); over it, 429 with `Retry-After` (seconds).
"""

api = NinjaAPI(
    title="SMS Hub API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=AUTH,
)
errors.install(api)
api.add_router("", messages.router)
api.add_router("", replies.router)
api.add_router("", campaigns.router)
api.add_router("", otp.router)
api.add_router("", contacts.router)
api.add_router("", lists.router)
