"""Delivery reports applied per second through the real webhook view, against a bare Django view
that only answers 200, measured in the same run through the same middleware and test client.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/webhooks.py [N]

It creates a throwaway test database (Django's test-database machinery), N sent messages, then
posts one delivery report per message. Prints the figures; the last line is one JSON object.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smshub.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_databases, teardown_databases  # noqa: E402
from django.urls import include, path  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000


def bare(request):
    return HttpResponse(b'{"ok": true}', content_type="application/json")


urlpatterns = [path("bare/", bare), path("", include("smshub.urls"))]


def main() -> None:
    from campaigns.models import Account, Message
    from providers.models import ProviderAccount

    old = setup_databases(verbosity=0, interactive=False)
    try:
        with override_settings(ROOT_URLCONF=__name__, DEBUG=False, ALLOWED_HOSTS=["testserver"]):
            provider = ProviderAccount.objects.create(
                name="Bench",
                slug="simulator",
                base_url="http://127.0.0.1:9",
                credentials={"api_key": "k"},
            )
            account = Account.objects.create(name="Bench")
            Message.objects.bulk_create(
                Message(
                    account=account,
                    recipient="+33612345678",
                    text="bench",
                    status="sent",
                    provider_account=provider,
                    provider_message_id=f"b{i}",
                )
                for i in range(N)
            )
            client = Client()
            url = provider.webhook_url("dlr").split(settings.PUBLIC_BASE_URL, 1)[1]
            bodies = [json.dumps({"id": f"b{i}", "status": "delivered"}) for i in range(N)]

            started = time.perf_counter()
            for body in bodies:
                client.post("/bare/", data=body, content_type="application/json")
            bare_seconds = time.perf_counter() - started

            started = time.perf_counter()
            for body in bodies:
                response = client.post(url, data=body, content_type="application/json")
                assert response.status_code == 200, response.content
            hub_seconds = time.perf_counter() - started

            delivered = Message.objects.filter(status="delivered").count()
            assert delivered == N, f"only {delivered} of {N} delivered"
    finally:
        teardown_databases(old, verbosity=0)

    bare_rate, hub_rate = N / bare_seconds, N / hub_seconds
    ratio = hub_rate / bare_rate
    print(f"database:           {connection.vendor}")
    print(f"reports:            {N}")
    print(f"bare view:          {bare_rate:,.0f} requests/s")
    print(f"webhook (applied):  {hub_rate:,.0f} reports/s")
    print(f"ratio:              {ratio:.2f} (target at least 0.5)")
    print(
        json.dumps(
            {
                "bench": "webhooks",
                "database": connection.vendor,
                "reports": N,
                "bare_per_s": round(bare_rate),
                "webhook_per_s": round(hub_rate),
                "ratio": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
