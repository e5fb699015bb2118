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
