"""Templates: saved texts with their merge fields listed, and a warning for a key that is
neither a contact's own nor a custom field."""

import pytest
from django.urls import reverse

from campaigns.contacts.models import Template

from .test_pages import acme, as_operator, as_viewer, fields, page  # noqa: F401

pytestmark = pytest.mark.django_db

TEMPLATES = reverse("contacts:template_list")


def test_add_a_template_and_see_its_merge_fields(as_operator, acme, fields):  # noqa: F811
    text = "Hi {name|there}, see you in {city}! {shoe}"
    response = as_operator.post(TEMPLATES, {"name": "Welcome", "text": text})
    assert response["Location"] == TEMPLATES
    template = Template.objects.get()
    assert (template.account, template.text) == (acme, text)
    html = page(as_operator.get(TEMPLATES))
    assert "{shoe}: neither a contact field nor a custom field" in html  # the flash
    assert '<code class="chip">{name|there}</code>' in html
    assert '<code class="chip">{city}</code>' in html
    assert '<code class="chip unknown">{shoe}</code>' in html
    assert "<code>{shoe}</code>: neither a contact field (name, number, language)" in html


def test_a_text_with_known_fields_only_has_no_warning(as_operator, fields):  # noqa: F811
    as_operator.post(TEMPLATES, {"name": "Plain", "text": "Hello {name}, {age} years"})
    html = page(as_operator.get(TEMPLATES))
    assert "Template “Plain” added." in html and "neither a contact field" not in html


def test_errors_are_next_to_their_fields(as_operator, acme):  # noqa: F811
    Template.objects.create(account=acme, name="Welcome", text="Hi")
    response = as_operator.post(TEMPLATES, {"name": "welcome", "text": "  "})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name_error"' in html and "already has a template with this name" in html
    assert 'id="id_text_error"' in html and "Write the text." in html
    html = as_operator.post(TEMPLATES, {"name": "Long", "text": "x" * 1531}).content.decode()
    assert 'id="id_text_error"' in html


def test_edit_and_delete_a_template(as_operator, acme, fields):  # noqa: F811
    template = Template.objects.create(account=acme, name="Welcome", text="Hi {name}")
    url = reverse("contacts:template_edit", args=[template.pk])
    assert "{name}" in page(as_operator.get(url))
    response = as_operator.post(url, {"name": "Hello", "text": "Hello {first_name}"})
    assert response["Location"] == TEMPLATES
    template.refresh_from_db()
    assert (template.name, template.text) == ("Hello", "Hello {first_name}")
    response = as_operator.post(url, {"name": "", "text": "x"})
    assert '<h1 id="form-title">Edit the template “Hello”</h1>' in response.content.decode()
    delete = reverse("contacts:template_delete", args=[template.pk])
    assert "no longer offered in compose" in page(as_operator.get(delete))
    assert as_operator.post(delete)["Location"] == TEMPLATES
    assert not Template.objects.exists()


def test_a_viewer_reads_templates(as_viewer, acme):  # noqa: F811
    Template.objects.create(account=acme, name="Welcome", text="Hi {name}")
    html = page(as_viewer.get(TEMPLATES))
    assert "Welcome" in html and 'name="text"' not in html and "Edit" not in html
