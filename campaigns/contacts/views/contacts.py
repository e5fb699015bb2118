"""Contacts: the list (search, filter by list or segment, keyset pages, ticking contacts into a
list), adding and editing, a contact's page (fields, lists, opt-out, messages and replies) and
deleting one with its personal data."""

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST

from campaigns import statuses
from campaigns.models import Message, OptOut, Reply
from campaigns.views.shared import get_for_account

from .. import services
from ..fields import shown
from ..forms import BulkAddForm, ContactFilterForm, ContactForm, ListChoiceForm
from ..models import Contact, ContactField, ContactList
from ..models import Membership as InList
from . import counts
from .common import (
    EDIT,
    READ,
    allowed,
    amount,
    annotate,
    can_edit,
    confirm,
    cursor,
    forbidden,
    keyset,
)
from .segments import segment_contacts

HISTORY_SIZE = 20  # messages, and replies, shown at a time on a contact's page


def _list_page(request: HttpRequest, bulk: BulkAddForm | None = None, status: int = 200):
    """The contacts found, a page at a time, and how many there are: with the page in a small
    account, else just after it (`counts`); `?count=exact` with htmx gives that count alone."""
    account = request.membership.account
    form = ContactFilterForm(request.GET, account=account)
    filtered = any(form.data.get(name) for name in form.fields)
    exact = counts.asked(request) == "exact"
    page = {"rows": [], "older": None, "paged": False}
    total, count_later = None, False
    segment_error = False
    if form.is_valid():
        segment = form.chosen_segment()
        queryset = Contact.objects.filter(account=account)
        if segment is not None:
            queryset = segment_contacts(account, segment.rules)
            segment_error = queryset is None
        if queryset is not None:
            queryset = form.filter(queryset)
            if exact and request.htmx:
                context = {"total": _count(form, queryset), "filtered": filtered}
                return render(request, "contacts/contact_list.html#total", context)
            page = keyset(queryset, cursor(request))
            if exact or counts.with_page(account):
                total = _count(form, queryset)
            else:
                count_later = True
            annotate(account, page["rows"])
    if exact and request.htmx:  # a search that cannot be read: nothing to count
        return render(request, "contacts/contact_list.html#total", {"total": None})
    editable = can_edit(request)
    has_lists = ContactList.objects.filter(account=account).exists()
    return render(
        request,
        "contacts/contact_list.html",
        {
            "form": form,
            "page": page,
            "total": total,
            "count_later": count_later,
            "segment_error": segment_error,
            "filtered": filtered,
            "cursor_error": bool(request.GET.get("after")) and cursor(request) is None,
            "can_edit": editable,
            "bulk": bulk or (BulkAddForm(account=account) if editable and has_lists else None),
            "ticked": set(bulk.cleaned_data.get("contact", [])) if bulk and bulk.is_bound else (),
        },
        status=status,
    )


def _count(form: ContactFilterForm, queryset) -> int:
    """How many contacts the filters find: with a list alone, its memberships (of its account's
    contacts only), read from their index without a join."""
    data = form.cleaned_data
    if data["list"] and not data["segment"] and not data["q"].strip():
        return InList.objects.filter(contact_list_id=int(data["list"])).count()
    return queryset.count()


@allowed(READ)
def contact_list(request: HttpRequest) -> HttpResponse:
    """GET: the contacts. POST (operators, account admins): add the ticked ones to a list."""
    if request.method != "POST":
        return _list_page(request)
    if not can_edit(request):
        return forbidden(request, gettext("Only operators and account admins can change lists."))
    bulk = BulkAddForm(request.POST, account=request.membership.account)
    if not bulk.is_valid():
        return _list_page(request, bulk, status=400)
    contact_list = bulk.chosen()
    if contact_list is None:  # deleted meanwhile
        bulk.add_error("contact_list", gettext("This list no longer exists."))
        return _list_page(request, bulk, status=400)
    ids = bulk.contact_ids()
    added = services.add_to_list(contact_list, ids)
    already = len(ids) - added
    said = ngettext(
        "%(count)s contact added to “%(list)s”",
        "%(count)s contacts added to “%(list)s”",
        added,
    ) % {"count": amount(added), "list": contact_list.name}
    if already:
        note = ngettext("%(count)s was in it already", "%(count)s were in it already", already) % {
            "count": amount(already)
        }
        said = gettext("%(added)s (%(already)s).") % {"added": said, "already": note}
    else:
        said += "."
    flash.success(request, said)
    return redirect(request.get_full_path())


def _contact(request: HttpRequest, pk: int) -> Contact:
    return get_for_account(Contact.objects, request, pk=pk)


@allowed(EDIT)
def contact_add(request: HttpRequest) -> HttpResponse:
    account = request.membership.account
    form = ContactForm(request.POST or None, account=account)
    if request.method == "POST" and form.is_valid():
        contact = form.save()
        if contact is not None:
            flash.success(request, gettext("Contact %(contact)s added.") % {"contact": contact})
            return redirect("contacts:contact_detail", contact.pk)
    status = 400 if form.is_bound else 200
    return render(
        request, "contacts/contact_form.html", {"form": form, "contact": None}, status=status
    )


@allowed(EDIT)
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    shown_as = str(contact)  # as saved, whatever is typed
    form = ContactForm(request.POST or None, account=request.membership.account, contact=contact)
    if request.method == "POST" and form.is_valid() and form.save() is not None:
        flash.success(request, gettext("Contact %(contact)s saved.") % {"contact": contact})
        return redirect("contacts:contact_detail", contact.pk)
    return render(
        request,
        "contacts/contact_form.html",
        {"form": form, "contact": contact, "shown_as": shown_as},
        status=400 if form.is_bound else 200,
    )


def _detail_context(request: HttpRequest, contact: Contact, list_form=None) -> dict:
    account = request.membership.account
    custom = [
        (field, shown((contact.values or {}).get(field.key)))
        for field in ContactField.objects.filter(account=account)
    ]
    in_lists = ContactList.objects.filter(account=account, membership__contact=contact)
    sent = keyset(
        Message.objects.filter(account=account, recipient=contact.number),
        cursor(request, "sent_after"),
        HISTORY_SIZE,
    )
    replies = keyset(
        Reply.objects.filter(account=account, from_number=contact.number).select_related("message"),
        cursor(request, "replies_after"),
        HISTORY_SIZE,
    )
    editable = can_edit(request)
    if list_form is None and editable:
        list_form = ListChoiceForm(account=account, exclude=in_lists.values("pk"))
    return {
        "contact": contact,
        "custom": custom,
        "in_lists": in_lists,
        "optout": OptOut.objects.filter(account=account, number=contact.number).first(),
        "sent": sent,
        "replies": replies,
        "has_conversation": has_conversation(account, contact.number),
        "can_edit": editable,
        "list_form": list_form,
        "lists_to_add": bool(list_form and list_form.fields["contact_list"].choices[1:]),
    }


def has_conversation(account, number: str) -> bool:
    """Whether the inbox has a conversation with `number` (a message to it or a reply)."""
    return (
        Message.objects.filter(account=account, recipient=number).exists()
        or Reply.objects.filter(account=account, from_number=number).exists()
    )


@allowed(READ)
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    return render(request, "contacts/contact_detail.html", _detail_context(request, contact))


@allowed(EDIT)
@require_POST
def contact_add_to_list(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    form = ListChoiceForm(request.POST, account=request.membership.account)
    contact_list = form.chosen() if form.is_valid() else None
    if contact_list is None:
        if form.is_valid():
            form.add_error("contact_list", gettext("This list no longer exists."))
        context = _detail_context(request, contact, list_form=form)
        return render(request, "contacts/contact_detail.html", context, status=400)
    if services.add_to_list(contact_list, [contact]):
        flash.success(
            request,
            gettext("%(contact)s added to “%(list)s”.")
            % {"contact": contact, "list": contact_list.name},
        )
    else:
        flash.success(
            request,
            gettext("%(contact)s was in “%(list)s” already.")
            % {"contact": contact, "list": contact_list.name},
        )
    return redirect("contacts:contact_detail", contact.pk)


@allowed(EDIT)
@require_POST
def contact_remove_from_list(request: HttpRequest, pk: int, list_pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    contact_list = get_for_account(ContactList.objects, request, pk=list_pk)
    if services.remove_from_list(contact_list, [contact]):
        flash.success(
            request,
            gettext("%(contact)s removed from “%(list)s”.")
            % {"contact": contact, "list": contact_list.name},
        )
    else:
        flash.success(
            request,
            gettext("%(contact)s was not in “%(list)s”.")
            % {"contact": contact, "list": contact_list.name},
        )
    return redirect("contacts:contact_detail", contact.pk)


def delete_consequences(contact: Contact) -> list[str]:
    """What deleting the contact does, with its own figures."""
    account, number = contact.account, contact.number
    to_number = Message.objects.filter(account=account, recipient=number)
    sent = to_number.count()
    waiting = to_number.filter(status__in=statuses.CANCELABLE).count()
    replies = Reply.objects.filter(account=account, from_number=number).count()
    masked = services.masked(number)
    messages = ngettext(
        "the %(count)s message sent to it", "the %(count)s messages sent to it", sent
    ) % {"count": amount(sent)}
    answers = ngettext("the %(count)s reply it sent", "the %(count)s replies it sent", replies) % {
        "count": amount(replies)
    }
    said = [
        gettext("Its name, language, custom field values and list memberships are deleted."),
        gettext(
            "Its number is masked (%(masked)s) on %(messages)s and %(replies)s: they stay in "
            "the statistics, without the number."
        )
        % {"masked": masked, "messages": messages, "replies": answers},
    ]
    if waiting:
        said.append(
            ngettext(
                "%(count)s message still waiting to be sent to it is canceled.",
                "%(count)s messages still waiting to be sent to it are canceled.",
                waiting,
            )
            % {"count": amount(waiting)}
        )
    else:
        said.append(gettext("No message is waiting to be sent to it: nothing is canceled."))
    if OptOut.objects.filter(account=account, number=number).exists():
        said.append(
            gettext(
                "Its opt-out stays: the number still cannot be sent to (remove it on the "
                "Opt-outs page if it should)."
            )
        )
    return said


@allowed(EDIT)
def contact_delete(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    error = ""
    if request.method == "POST":
        try:
            deleted = services.delete_contact(contact, by=request.user.get_username())
        except services.StillSending:
            error = gettext(
                "A message to this number is being handed to a provider right now, so the "
                "contact cannot be deleted this very moment: try again in a few seconds."
            )
        else:
            canceled = deleted.canceled
            said = gettext(
                "Contact %(contact)s deleted: its number is masked on %(messages)s and %(replies)s."
            ) % {
                "contact": contact,
                "messages": ngettext(
                    "%(count)s message", "%(count)s messages", deleted.masked_messages
                )
                % {"count": amount(deleted.masked_messages)},
                "replies": ngettext("%(count)s reply", "%(count)s replies", deleted.masked_replies)
                % {"count": amount(deleted.masked_replies)},
            }
            if canceled:
                said += " " + ngettext(
                    "%(count)s waiting message canceled.",
                    "%(count)s waiting messages canceled.",
                    canceled,
                ) % {"count": amount(canceled)}
            flash.success(request, said)
            return redirect("contacts:contact_list")
    return confirm(
        request,
        title=gettext("Delete the contact %(contact)s?") % {"contact": contact},
        consequences=delete_consequences(contact),
        cancel=reverse("contacts:contact_detail", args=[contact.pk]),
        button=gettext("Delete the contact"),
        error=error,
        status=409 if error else 200,
    )
