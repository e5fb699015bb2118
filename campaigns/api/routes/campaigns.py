"""Campaigns: progress of a batch of messages."""

from django.http import HttpRequest
from ninja import Router

from campaigns.models import Campaign

from ..errors import AUTH_ERRORS, Error, not_found
from ..schemas import CampaignOut, PathId
from .messages import campaign_out

router = Router(tags=["Campaigns"])


@router.get(
    "/campaigns/{campaign_id}",
    operation_id="get_campaign",
    response={200: CampaignOut, 404: Error, 422: Error, **AUTH_ERRORS},
    summary="One campaign and its messages by status",
)
def get_campaign(request: HttpRequest, campaign_id: PathId):
    campaign = (
        Campaign.objects.filter(account=request.auth.account, pk=campaign_id)
        .select_related("category")
        .first()
    )
    if campaign is None:
        raise not_found("campaign")
    return campaign_out(campaign)
