"""Fixtures shared by the campaigns tests."""

import pytest

from campaigns.models import Message

from ..factories import MessageFactory


@pytest.fixture
def sent(account, provider_account):
    """A message sent through the simulator, its provider id "sim-1", awaiting a report."""
    return MessageFactory(
        account=account,
        provider_account=provider_account,
        provider_message_id="sim-1",
        status=Message.Status.SENT,
    )
