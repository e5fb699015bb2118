"""Writing one contact, lists, and deleting a contact with its personal data."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.contacts import services
from campaigns.contacts.models import Contact, ContactField, ContactList
from campaigns.models import Message, OptOut, Reply

from ..factories import AccountFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def french(account):
    account.country = "FR"
    account.save()
    ContactField.objects.create(account=account, key="city", label="City")
    ContactField.objects.create(account=account, key="age", label="Age", type="number")
    return account


def test_a_contact_is_saved_with_its_national_number_and_typed_values(french):
    contact = services.save_contact(
        french, number="06 12 34 56 78", name=" Ann ", language="FR", values={"age": "34"}
    )
    assert (contact.number, contact.name, contact.language) == ("+33612345678", "Ann", "fr")
    assert contact.values == {"age": 34}
    services.save_contact(
        french, number=contact.number, values={"city": "Lyon", "age": ""}, contact=contact
    )
    contact.refresh_from_db()
    assert contact.values == {"city": "Lyon"}  # an empty value removes the field


def test_bad_input_says_what_is_wrong_field_by_field(french):
    services.save_contact(french, number="+33612345678")
    with pytest.raises(ValidationError) as error:
        services.save_contact(
            french, number="0612", values={"age": "old", "shoe": "42"}, language="x" * 9
        )
    assert error.value.message_dict == {
        "number": [
            "“0612” is not a valid number of France. Write it with + and the country code, or "
            "as a number of France (06 12 34 56 78)."
        ],
        "language": ["At most 8 characters, e.g. fr or ro."],
        "values.age": ["“old” is not a number."],
        "values.shoe": ["No custom field “shoe” in this account: add it first."],
    }
    with pytest.raises(ValidationError) as error:
        services.save_contact(french, number="06 12 34 56 78")
    assert error.value.message_dict == {
        "number": ["+33612345678 is already a contact of this account."]
    }
    # Another account may have the same number.
    assert services.save_contact(AccountFactory(), number="+33612345678").pk


def test_lists_count_what_they_add_and_remove(french):
    ann = services.save_contact(french, number="+33612345678")
    bob = services.save_contact(french, number="+33612345679")
    vip = ContactList.objects.create(account=french, name="VIP")
    assert services.add_to_list(vip, [ann, bob]) == 2
    assert services.add_to_list(vip, [ann]) == 0
    assert services.remove_from_list(vip, [bob]) == 1
    assert list(vip.contacts.all()) == [ann]


def test_deleting_a_contact_masks_its_number_and_cancels_what_waits(french):
    contact = services.save_contact(french, number="+33612345678", values={"city": "Lyon"})
    sent = MessageFactory(account=french, recipient=contact.number, status="delivered")
    waiting = MessageFactory(account=french, recipient=contact.number, status="queued")
    other = MessageFactory(account=french, recipient="+33612345679", status="queued")
    Reply.objects.create(account=french, from_number=contact.number, text="Hi")
    OptOut.objects.create(account=french, number=contact.number)
    deleted = services.delete_contact(contact, by="ann")
    assert (deleted.canceled, deleted.masked_messages, deleted.masked_replies) == (1, 2, 1)
    assert not Contact.objects.exists()
    sent.refresh_from_db()
    waiting.refresh_from_db()
    assert sent.recipient == "+33•••••5678" and sent.status == "delivered"
    assert waiting.status == "canceled"
    assert waiting.events.last().detail == "Canceled: the contact was deleted by ann."
    assert Message.objects.get(pk=other.pk).status == "queued"
    assert Reply.objects.get().from_number == "+33•••••5678"
    assert OptOut.objects.filter(number="+33612345678").exists()  # still honoured


def test_a_contact_being_sent_to_is_deleted_a_moment_later(french):
    contact = services.save_contact(french, number="+33612345678")
    MessageFactory(account=french, recipient=contact.number, status="sending")
    with pytest.raises(services.StillSending):
        services.delete_contact(contact)
    assert Contact.objects.filter(pk=contact.pk).exists()
