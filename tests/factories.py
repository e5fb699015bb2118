"""factory-boy factories for the domain models."""

import factory
from django.contrib.auth import get_user_model

from campaigns.models import Account, Category, Membership, Message, RouteEntry, SenderName
from providers.models import ProviderAccount


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("a-long-test-password")


class ProviderAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderAccount

    name = factory.Sequence(lambda n: f"Simulator {n}")
    slug = "simulator"
    base_url = "http://127.0.0.1:8025"
    credentials = factory.LazyFunction(lambda: {"api_key": "simulator-key"})


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Account {n}")
    timezone = "Europe/Paris"

    @factory.post_generation
    def route(self, create, extracted, **kwargs):
        """`AccountFactory(route=[provider_account, ...])` sets the default route in that order."""
        for position, provider_account in enumerate(extracted or []):
            RouteEntry.objects.create(
                account=self, provider_account=provider_account, position=position
            )


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    account = factory.SubFactory(AccountFactory)
    role = Membership.Role.OPERATOR


class SenderNameFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SenderName

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Sender{n}")
    status = SenderName.Status.APPROVED


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Category {n}")
    tag = factory.Sequence(lambda n: f"category-{n}")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    account = factory.SubFactory(AccountFactory)
    recipient = "+33612345678"
    text = "Your appointment is tomorrow at 10:00."
    status = Message.Status.QUEUED


class ReplyFactory(factory.django.DjangoModelFactory):
    """A reply (MO) from a number to the account; link it with `message=`."""

    class Meta:
        model = "campaigns.Reply"

    account = factory.SubFactory(AccountFactory)
    from_number = "+33612349999"
    text = "Yes, see you then."


class OptOutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.OptOut"

    account = factory.SubFactory(AccountFactory)
    number = factory.Sequence(lambda n: f"+336120{n:05d}")


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Campaign"

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    text = "Your appointment is tomorrow at 10:00."
    status = "running"


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """An API key; the secret to send is on the instance as `.secret` (shown once, not stored)."""

    class Meta:
        model = "api.ApiKey"

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Application {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from campaigns.api import keys

        api_key = model_class(*args, **kwargs)
        api_key.secret = keys.assign(api_key)
        api_key.save()
        return api_key
