"""Campaign pages: list, detail with live progress, pause / resume / cancel, CSV export."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Membership, Message

from ..factories import CampaignFactory, MembershipFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

S = Message.Status
CS = Campaign.Status
HTMX = {"HX-Request": "true"}
LIST = reverse("campaigns:campaign_list")


def detail(campaign: Campaign) -> str:
    return reverse("campaigns:campaign_detail", args=[campaign.pk])


def add(campaign: Campaign, *statuses: str, **fields) -> list[Message]:
    start = campaign.messages.count()
    return [
        MessageFactory(
            account=campaign.account,
            campaign=campaign,
            status=status,
            recipient=f"+336123{start + i:05d}",
            **fields,
        )
        for i, status in enumerate(statuses)
    ]


@pytest.fixture
def campaign(account):
    campaign = CampaignFactory(account=account, name="Flu jabs", status=CS.RUNNING)
    add(campaign, S.QUEUED, S.SENDING, S.SENT, S.DELIVERED, S.DELIVERED, S.FAILED)
    return campaign


@pytest.fixture
def viewer_client(client, account):
    client.force_login(MembershipFactory(account=account, role=Membership.Role.VIEWER).user)
    return client


def test_the_list_shows_this_accounts_campaigns_newest_first_with_progress(
    operator_client, account, campaign
):
    newer = CampaignFactory(account=account, name="Newer one", status=CS.COMPLETED)
    add(newer, S.DELIVERED)
    CampaignFactory(name="Someone else's")
    page = operator_client.get(LIST).content.decode()
    assert page.index("Newer one") < page.index("Flu jabs")
    assert "Someone else" not in page
    # Each row's bar in words: queued and sending are not sent yet.
    assert (
        'aria-label="Flu jabs: Delivered: 2; Sent, awaiting report: 1; Failed or blocked: 1; '
        'Not sent yet: 2"' in page
    )
    assert 'aria-label="Newer one: Delivered: 1"' in page
    assert f'href="{detail(campaign)}"' in page


def names(page: str) -> list[str]:
    return re.findall(r'<th scope="row" data-label="Campaign"><a href="[^"]+">([^<]+)</a>', page)


def test_the_list_pages_by_25_with_a_constant_number_of_queries(operator_client, account):
    campaigns = [CampaignFactory(account=account, name=f"Campaign {i:02d}") for i in range(52)]
    for campaign in campaigns:
        add(campaign, S.SENT)
    CampaignFactory(name="Someone else's")
    operator_client.get(LIST)  # warm up: session, account
    with CaptureQueriesContext(connection) as first:
        page = operator_client.get(LIST).content.decode()
    assert names(page) == [f"Campaign {i:02d}" for i in range(51, 26, -1)]
    assert len(first) < 15  # not one query per campaign
    # Keyset paging: no COUNT of the account's campaigns, no OFFSET.
    sql = " ".join(query["sql"] for query in first.captured_queries).upper()
    assert "OFFSET" not in sql and "COUNT(*)" not in sql
    assert "← Newer" not in page and "Newest" not in page

    older = re.search(r'<a href="\?after=(\d+)" rel="next">Older →</a>', page)
    assert older and int(older.group(1)) == campaigns[27].pk
    second = operator_client.get(LIST + f"?after={older.group(1)}").content.decode()
    assert names(second) == [f"Campaign {i:02d}" for i in range(26, 1, -1)]
    third_link = re.search(r'href="\?after=(\d+)" rel="next"', second).group(1)
    third = operator_client.get(LIST + f"?after={third_link}").content.decode()
    assert names(third) == ["Campaign 01", "Campaign 00"]
    assert "Older →" not in third and "Someone else" not in third

    newer = re.search(r'<a href="\?before=(\d+)" rel="prev">← Newer</a>', third).group(1)
    back = operator_client.get(LIST + f"?before={newer}").content.decode()
    assert names(back) == names(second)
    assert "← Newer" in back and "Older →" in back
    assert f'href="{LIST}">Newest</a>' in back


def test_a_broken_page_link_shows_the_newest_campaigns(operator_client, account):
    CampaignFactory(account=account, name="Only one")
    page = operator_client.get(LIST + "?after=abc").content.decode()
    assert "That page link is not valid: showing the newest campaigns." in page
    assert names(page) == ["Only one"]


def test_a_campaign_being_imported_shows_importing_and_no_controls(
    operator_client, account, monkeypatch
):
    from campaigns.services import compose

    monkeypatch.setattr(compose, "nudge_dispatcher", lambda: None)
    importing = CampaignFactory(account=account, name="Big list", status=CS.IMPORTING)
    add(importing, S.QUEUED, S.QUEUED)
    listed = operator_client.get(LIST).content.decode()
    assert 'data-status="importing">Importing</span>' in listed

    page = operator_client.get(detail(importing)).content.decode()
    assert 'data-status="importing">Importing</span>' in page
    assert "Its numbers are being imported: it starts by itself once every one is in." in page
    for control in ("pause", "resume", "cancel"):
        assert reverse(f"campaigns:campaign_{control}", args=[importing.pk]) not in page
    assert 'hx-trigger="every 1s"' in page  # it shows the import's end without a reload
    assert "Importing its numbers: 2 written so far." in page

    for control, verb in (("resume", "resumed"), ("pause", "paused"), ("cancel", "canceled")):
        url = reverse(f"campaigns:campaign_{control}", args=[importing.pk])
        answer = operator_client.post(url, follow=True).content.decode()
        assert f"cannot be {verb} while its numbers are being imported" in answer
    assert Campaign.objects.get(pk=importing.pk).status == CS.IMPORTING
    assert set(importing.messages.values_list("status", flat=True)) == {S.QUEUED}

    # The import is over: the polled part brings the buttons.
    Campaign.objects.filter(pk=importing.pk).update(status=CS.RUNNING)
    live = operator_client.get(detail(importing) + "?shown=importing", headers=HTMX)
    assert 'hx-swap-oob="true"' in live.content.decode()
    assert "Pause" in live.content.decode()


def test_the_detail_shows_counts_by_status_progress_and_messages(operator_client, campaign):
    response = operator_client.get(detail(campaign))
    page = response.content.decode()
    counts = dict(re.findall(r'<td data-status="(\w+)">(\d+)</td>', page))
    assert counts == {"queued": "1", "sending": "1", "sent": "1", "delivered": "2", "failed": "1"}
    parts = dict(re.findall(r'<li data-part="(\w+)">.*?<strong>(\d+)</strong>', page))
    assert parts == {
        "delivered": "2",
        "awaiting": "1",
        "failed": "1",
        "canceled": "0",
        "remaining": "2",
    }
    widths = dict(re.findall(r'mbar-(\w+)" style="width: ([\d.]+)%"', page))
    assert widths == {
        "delivered": "33.33",
        "awaiting": "16.67",
        "failed": "16.67",
        "remaining": "33.33",
    }
    for message in campaign.messages.all():
        assert f'id="status-{message.pk}" data-status="{message.status}"' in page
    assert 'hx-trigger="every 1s"' in page  # running, messages moving: it refreshes itself
    for action in ("Pause", "Cancel campaign", "Export messages (CSV)"):
        assert action in page
    assert "Resume" not in page


def test_the_live_part_is_a_fragment_that_stops_polling_once_finished(
    operator_client, account, campaign
):
    fragment = operator_client.get(detail(campaign), headers=HTMX).content.decode()
    assert "<html" not in fragment
    assert fragment.lstrip().startswith('<section class="card" id="campaign-monitor"')
    assert 'hx-trigger="every 1s"' in fragment

    done = CampaignFactory(account=account, status=CS.COMPLETED)
    add(done, S.DELIVERED, S.FAILED)
    assert "hx-trigger" not in operator_client.get(detail(done), headers=HTMX).content.decode()

    # Completed, but delivery reports are still awaited: it keeps listening, more slowly.
    awaiting = CampaignFactory(account=account, status=CS.COMPLETED)
    add(awaiting, S.SENT)
    page = operator_client.get(detail(awaiting), headers=HTMX).content.decode()
    assert 'hx-trigger="every 2s"' in page  # a report came a moment ago
    Message.objects.filter(campaign=awaiting).update(updated_at=timezone.now() - timedelta(hours=1))
    page = operator_client.get(detail(awaiting), headers=HTMX).content.decode()
    assert 'hx-trigger="every 10s"' in page
    Campaign.objects.filter(pk=awaiting.pk).update(created_at=timezone.now() - timedelta(days=2))
    assert "hx-trigger" not in operator_client.get(detail(awaiting), headers=HTMX).content.decode()


def test_the_buttons_follow_a_status_change_seen_by_polling(operator_client, campaign):
    url = detail(campaign)
    same = operator_client.get(url + "?shown=running", headers=HTMX).content.decode()
    assert "campaign-controls" not in same  # unchanged: the buttons stay as they are
    Campaign.objects.filter(pk=campaign.pk).update(status=CS.PAUSED)
    changed = operator_client.get(url + "?shown=running", headers=HTMX).content.decode()
    assert 'id="campaign-controls" class="actions campaign-controls" hx-swap-oob="true"' in changed
    assert "Resume" in changed


def test_pause_resume_and_cancel(operator_client, campaign, monkeypatch):
    from campaigns.services import compose

    monkeypatch.setattr(compose, "nudge_dispatcher", lambda: None)

    def post(action: str):
        url = reverse(f"campaigns:campaign_{action}", args=[campaign.pk])
        return operator_client.post(url, follow=True)

    response = post("pause")
    assert response.redirect_chain[-1][0] == detail(campaign)
    assert "Campaign “Flu jabs” paused" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == CS.PAUSED
    assert "Resume" in response.content.decode()

    again = post("pause").content.decode()
    assert "cannot be paused: its status is paused" in again

    assert "Campaign “Flu jabs” resumed." in post("resume").content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == CS.RUNNING

    page = post("cancel").content.decode()
    assert "Campaign “Flu jabs” canceled: 1 waiting message will not be sent." in page
    assert Campaign.objects.get(pk=campaign.pk).status == CS.CANCELED
    assert campaign.messages.filter(status=S.CANCELED).count() == 1
    assert "Cancel campaign" not in page


def test_a_viewer_sees_no_buttons_and_cannot_pause(viewer_client, campaign):
    page = viewer_client.get(detail(campaign)).content.decode()
    assert "Pause" not in page and "Cancel campaign" not in page
    assert "Export messages (CSV)" in page
    for action in ("pause", "resume", "cancel"):
        response = viewer_client.post(reverse(f"campaigns:campaign_{action}", args=[campaign.pk]))
        assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == CS.RUNNING
    assert not campaign.messages.filter(status=S.CANCELED).exists()


def test_controls_are_post_only(operator_client, campaign):
    response = operator_client.get(reverse("campaigns:campaign_pause", args=[campaign.pk]))
    assert response.status_code == 405
    assert Campaign.objects.get(pk=campaign.pk).status == CS.RUNNING


def test_export_streams_every_message_as_csv(viewer_client, account):
    provider = ProviderAccountFactory(name="Vortext main")
    campaign = CampaignFactory(account=account, name="Rappel: RDV")
    sent_at = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
    [delivered] = add(
        campaign,
        S.DELIVERED,
        provider_account=provider,
        provider_message_id="abc-1",
        sent_at=sent_at,
        delivered_at=sent_at + timedelta(seconds=5),
    )
    [failed] = add(
        campaign,
        S.FAILED,
        provider_account=provider,
        error_code="21",
        error_reason="=HYPERLINK(bad)",
    )
    add(campaign, *[S.QUEUED] * 3)
    response = viewer_client.get(reverse("campaigns:campaign_export", args=[campaign.pk]))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="campaign-{campaign.pk}-rappel-rdv.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "recipient",
        "status",
        "provider",
        "provider message id",
        "sent at",
        "delivered/updated at",
        "error",
    ]
    assert len(rows) == 1 + 5
    # Times in the account's time zone (Paris, UTC+1 in January).
    assert rows[1] == [
        delivered.recipient,
        "delivered",
        "Vortext main",
        "abc-1",
        "2030-01-15T10:00:00+01:00",
        "2030-01-15T10:00:05+01:00",
        "",
    ]
    assert rows[2][:3] == [failed.recipient, "failed", "Vortext main"]
    assert rows[2][6] == "21 =HYPERLINK(bad)"  # code and reason
    assert rows[2][5]  # its last update
    assert [row[1] for row in rows[3:]] == ["queued"] * 3


def test_an_error_that_a_spreadsheet_would_run_stays_text(viewer_client, account):
    campaign = CampaignFactory(account=account)
    add(campaign, S.FAILED, error_reason="=cmd|' /C calc'!A0")
    response = viewer_client.get(reverse("campaigns:campaign_export", args=[campaign.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][6] == "'=cmd|' /C calc'!A0"


def test_another_accounts_campaign_is_404_everywhere(client, campaign, other_account_user):
    client.force_login(other_account_user)
    pk = campaign.pk
    for name in ("campaign_detail", "campaign_export"):
        assert client.get(reverse(f"campaigns:{name}", args=[pk])).status_code == 404
    assert client.get(detail(campaign), headers=HTMX).status_code == 404
    for name in ("campaign_pause", "campaign_resume", "campaign_cancel"):
        assert client.post(reverse(f"campaigns:{name}", args=[pk])).status_code == 404
    assert Campaign.objects.get(pk=pk).status == CS.RUNNING
    assert "Flu jabs" not in client.get(LIST).content.decode()


def test_the_list_of_30_campaigns_costs_a_fixed_number_of_queries(
    operator_client, account, django_assert_max_num_queries
):
    account.flood_limit_per_minute, account.flood_limit_per_hour = 600, 10000
    account.quiet_hours_start = account.quiet_hours_end = None
    account.save()
    for i in range(30):
        status = [CS.RUNNING, CS.PAUSED, CS.CANCELED, CS.COMPLETED, CS.SCHEDULED][i % 5]
        campaign = CampaignFactory(account=account, name=f"Campaign {i:02d}", status=status)
        add(campaign, S.QUEUED, S.SENT, S.DELIVERED, S.CANCELED)
    operator_client.get(LIST)  # warm up: session, account
    with django_assert_max_num_queries(12):  # 11 on SQLite: none per campaign
        page = operator_client.get(LIST).content.decode()
    assert len(names(page)) == 25
    assert page.count('class="monitor-headline"') == 25


def test_a_canceled_campaign_does_not_show_a_full_bar(operator_client, account, operator):
    campaign = CampaignFactory(account=account, name="Stopped", status=CS.RUNNING)
    add(campaign, S.DELIVERED, S.FAILED, S.QUEUED, S.QUEUED)
    operator_client.post(reverse("campaigns:campaign_cancel", args=[campaign.pk]))
    page = operator_client.get(detail(campaign)).content.decode()
    widths = dict(re.findall(r'mbar-(\w+)" style="width: ([\d.]+)%"', page))
    assert widths == {"delivered": "25.00", "failed": "25.00", "canceled": "50.00"}
    assert "Canceled: 2 messages were never sent." in page
    assert f"by {operator.get_username()}" in page
    listed = operator_client.get(LIST).content.decode()
    assert 'aria-label="Stopped: Delivered: 1; Failed or blocked: 1; Canceled: 2"' in listed


def test_paused_by_whom_and_cost(operator_client, account, operator):
    account.price_per_segment, account.price_currency = Decimal("0.05"), "EUR"
    account.save()
    campaign = CampaignFactory(account=account, name="Paused one", status=CS.RUNNING)
    add(campaign, S.DELIVERED, S.SENT, S.QUEUED, S.QUEUED)
    operator_client.post(reverse("campaigns:campaign_pause", args=[campaign.pk]))
    page = operator_client.get(detail(campaign)).content.decode()
    assert f"Paused by {operator.get_username()} at " in page
    assert "<dt>Cost so far</dt><dd>0.10 EUR</dd>" in page
    assert "<dt>Estimated total cost</dt><dd>0.20 EUR</dd>" in page


def live_url(page: str) -> str:
    return (
        re.search(r'id="campaign-monitor"[^>]*hx-get="([^"]+)"', page)
        .group(1)
        .replace("&amp;", "&")
    )


def test_the_poll_answers_204_until_something_changes(
    operator_client, campaign, django_assert_max_num_queries
):
    page = operator_client.get(detail(campaign)).content.decode()
    url = live_url(page)
    operator_client.get(url, headers=HTMX)  # warm up
    with django_assert_max_num_queries(6):  # session, user, membership, campaign, counts
        assert operator_client.get(url, headers=HTMX).status_code == 204
    queued = campaign.messages.get(status=S.QUEUED)
    Message.objects.filter(pk=queued.pk).update(status=S.SENDING)
    changed = operator_client.get(url, headers=HTMX)
    assert changed.status_code == 200
    assert f'id="status-{queued.pk}" data-status="sending"' in changed.content.decode()
    # Quiet for a while: one answer slows the page down to every 3 s, then 204 again.
    quiet = re.sub(
        r"t=\d+", f"t={int(timezone.now().timestamp()) - 30}", live_url(changed.content.decode())
    )
    slower = operator_client.get(quiet, headers=HTMX).content.decode()
    assert 'hx-trigger="every 3s"' in slower
    assert operator_client.get(live_url(slower), headers=HTMX).status_code == 204


@pytest.mark.parametrize(
    "query", ["?v=x&t=abc&p=&b=1", "?v=&t=99999999999999&p=1", "?t=1&v=zz&b=-1"]
)
def test_a_mangled_poll_gets_the_live_part_not_an_error(operator_client, campaign, query):
    answer = operator_client.get(detail(campaign) + query, headers=HTMX)
    assert answer.status_code == 200
    assert 'id="campaign-monitor"' in answer.content.decode()
