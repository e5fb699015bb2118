"""Importing contacts from a CSV file or a pasted list, and exporting them as CSV.

An import is three steps on one page: choose a file (or paste a list), map its columns, import.
The file is kept on disk between the steps under a random name known only to the uploader's
session (a pasted list is saved as a file too) and read as a stream. The import runs in the
request, as compose's campaign import does: the page polls a progress fragment fed from the
cache after each batch, and the answer is the summary (created, updated, skipped, duplicates,
bad rows with their lines). Operators and account admins import; only account admins add
custom fields, so only they can map a column to a new one.

Exports (a list, a segment, every contact) are streamed: contacts are read in pages along the
primary key, so any number of them goes out in constant memory.
"""

import csv
import logging
import time
from collections import defaultdict
from dataclasses import asdict

from django import forms
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.text import slugify
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from campaigns import uploads
from campaigns.views.shared import get_for_account

from . import importing, segments
from .fields import cast, shown
from .merge import column_key
from .models import BUILT_IN, Contact, ContactField, ContactList, Membership, Segment, validate_key
from .views.common import EDIT, READ, allowed, can_manage

logger = logging.getLogger(__name__)

MAX_PASTED = 2 * 1024 * 1024  # characters
PROGRESS_SECONDS = 3600
DONE_SECONDS = 3600  # an import's summary is remembered (a second click shows it)
RUNNING = "running"
EXPORT_CHUNK = 2000


# --- uploads kept between the steps -------------------------------------------------------


class Upload(uploads.Upload):
    """A file uploaded (or a list pasted) in this session, for this account."""

    info_class = importing.FileInfo


UPLOADS = uploads.Uploads("contacts", "contact_imports", "contacts", Upload)


def save_upload(request: HttpRequest, chunks, filename: str, size: int) -> Upload:
    """Keep the file and inspect its first lines (`uploads.Uploads.save`).

    Raises FileError for a file that is too large or not CSV."""
    account = request.membership.account

    def inspect(stream) -> importing.FileInfo:
        info = importing.inspect_file(stream, account.region)
        # Shown in the mapping step: keep the session small.
        info.headers = [cell[:100] for cell in info.headers[: importing.MAX_COLUMNS]]
        info.samples = [
            [cell[:100] for cell in row[: importing.MAX_COLUMNS]] for row in info.samples
        ]
        return info

    return UPLOADS.save(
        request,
        account,
        chunks,
        filename=filename,
        size=size,
        inspect=inspect,
        error=importing.FileError,
    )


# --- forms ------------------------------------------------------------------------------------


class UploadForm(forms.Form):
    csv_file = forms.FileField(
        label=_("CSV file"),
        required=False,
        help_text=_(
            "One contact per line; a first line of column names helps. UTF-8, or Excel's CSV."
        ),
    )
    pasted = forms.CharField(
        label=_("Or paste a list"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        help_text=_(
            "One contact per line: a number, then other values separated by commas, "
            "semicolons or tabs."
        ),
    )

    def clean_pasted(self) -> str:
        pasted = self.cleaned_data["pasted"]
        if len(pasted) > MAX_PASTED:
            raise ValidationError(
                gettext("At most %(count)s characters can be pasted: upload a file instead.")
                % {"count": number_format(MAX_PASTED, force_grouping=True)}
            )
        return pasted

    def clean(self):
        data = super().clean()
        if not data.get("csv_file") and not (data.get("pasted") or "").strip():
            raise ValidationError(gettext("Choose a file, or paste a list."))
        return data


NUMBER, NAME, LANGUAGE, IGNORE, NEW = "number", "name", "language", "ignore", "new"
IMPORT_REFUSAL = _("Only operators and account admins can import contacts.")
FIELD = "field:"


class MappingForm(forms.Form):
    """What each column holds, whether existing contacts are updated, and the list to add
    them to. Built for one file: `column_<i>`, and `key_<i>`, `label_<i>`, `type_<i>` for a
    column that becomes a new custom field."""

    upload = forms.CharField(widget=forms.HiddenInput)
    has_header = forms.BooleanField(label=_("The first line holds column names"), required=False)
    mode = forms.ChoiceField(
        label=_("Contacts that exist already"),
        choices=[
            ("update", _("Update them with the file's values (empty cells change nothing)")),
            ("skip", _("Leave them as they are")),
        ],
        initial="update",
        widget=forms.RadioSelect,
    )
    contact_list = forms.ChoiceField(label=_("Add the contacts to a list"), required=False)
    new_list = forms.CharField(
        label=_("New list's name"),
        required=False,
        max_length=100,
        help_text=_("With “A new list”."),
    )

    def __init__(self, *args, account, upload: Upload, admin: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account, self.upload, self.admin = account, upload, admin
        self.custom = {f.key: f for f in ContactField.objects.filter(account=account)}
        lists = ContactList.objects.filter(account=account).values_list("pk", "name")
        self.fields["contact_list"].choices = [
            ("", gettext("No list")),
            *((str(pk), name) for pk, name in lists),
            (NEW, gettext("A new list…")),
        ]
        choices = [
            (IGNORE, gettext("Ignore")),
            (NUMBER, gettext("Number")),
            (NAME, gettext("Name")),
            (LANGUAGE, gettext("Language")),
            *((f"{FIELD}{key}", f"{f.label} ({{{key}}})") for key, f in self.custom.items()),
        ]
        if admin:
            choices.append((NEW, gettext("A new custom field…")))
        info = upload.info
        self.columns = []
        for i in range(info.columns):
            header = info.headers[i] if i < len(info.headers) else ""
            self.fields[f"column_{i}"] = forms.ChoiceField(
                label=header or gettext("Column %(number)s") % {"number": i + 1}, choices=choices
            )
            self.fields[f"key_{i}"] = forms.CharField(
                label=gettext("Key"), required=False, max_length=40
            )
            self.fields[f"label_{i}"] = forms.CharField(
                label=gettext("Label"), required=False, max_length=100
            )
            self.fields[f"type_{i}"] = forms.ChoiceField(
                label=gettext("Type"), choices=ContactField.Type.choices, required=False
            )
            self.columns.append(
                {
                    "index": i,
                    "header": header,
                    "samples": [row[i] if i < len(row) else "" for row in info.samples],
                    "choice": self[f"column_{i}"],
                    "key": self[f"key_{i}"],
                    "label": self[f"label_{i}"],
                    "type": self[f"type_{i}"],
                }
            )

    @classmethod
    def guessed(cls, upload: Upload, account, admin: bool) -> dict:
        """The initial mapping: the number column, name and language by their header, a
        column named like a custom field to it, others to a new field (account admins) of the
        type their samples suggest."""
        info = upload.info
        custom = dict(ContactField.objects.filter(account=account).values_list("key", "type"))
        labels = {
            label.strip().lower(): key
            for key, label in ContactField.objects.filter(account=account).values_list(
                "key", "label"
            )
        }
        number = importing.Numbers(account.region)
        initial = {
            "has_header": info.has_header,
            "mode": "update",
            "upload": upload.token,
        }
        headers = [info.headers[i] if i < len(info.headers) else "" for i in range(info.columns)]
        samples = [
            [row[i].strip() for row in info.samples if i < len(row) and row[i].strip()]
            for i in range(info.columns)
        ]
        # The numbers: the first column with one, else the first with a header that says so.
        numbers = [
            i
            for i in range(info.columns)
            if any(importing.is_number(number, sample) for sample in samples[i])
        ] or [i for i, header in enumerate(headers) if importing.NUMBER_HEADERS.search(header)]
        taken, new_keys = set(), set()
        for i in range(info.columns):
            header = headers[i]
            key = column_key(header)
            choice = IGNORE
            if numbers and i == numbers[0]:
                choice = NUMBER
            elif key in importing.NAME_KEYS:
                choice = NAME
            elif key in importing.LANGUAGE_KEYS:
                choice = LANGUAGE
            elif key in custom or header.strip().lower() in labels:
                choice = f"{FIELD}{key if key in custom else labels[header.strip().lower()]}"
            elif admin and header and key and key not in BUILT_IN and key not in new_keys:
                choice = NEW
                initial[f"type_{i}"] = str(_type_of(samples[i]))
                new_keys.add(key)
            if choice in taken:
                choice = IGNORE
            if choice not in (NEW, IGNORE):
                taken.add(choice)
            initial[f"column_{i}"] = choice
            initial[f"key_{i}"] = key
            initial[f"label_{i}"] = header.strip()[:100]
        return initial

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        chosen: dict[str, list[int]] = defaultdict(list)
        new_keys: dict[str, int] = {}
        for column in self.columns:
            i = column["index"]
            choice = data.get(f"column_{i}", IGNORE)
            if choice == NEW:
                if not self.admin:
                    self.add_error(
                        f"column_{i}", gettext("Only account admins can add custom fields.")
                    )
                    continue
                key = (data.get(f"key_{i}") or "").strip() or column_key(column["header"])
                try:
                    validate_key(key)
                except ValidationError as error:
                    self.add_error(f"key_{i}", error)
                    continue
                if key in self.custom:
                    self.add_error(
                        f"key_{i}",
                        gettext(
                            "This account already has a field “%(key)s”: choose it in the list "
                            "instead, or give another key."
                        )
                        % {"key": key},
                    )
                elif key in new_keys:
                    self.add_error(
                        f"key_{i}",
                        gettext("Two columns cannot both be new field “%(key)s”.") % {"key": key},
                    )
                else:
                    new_keys[key] = i
                    data[f"key_{i}"] = key
                    label = (data.get(f"label_{i}") or "").strip() or column["header"] or key
                    data[f"label_{i}"] = label[:100]
                    data[f"type_{i}"] = data.get(f"type_{i}") or ContactField.Type.TEXT
            elif choice != IGNORE:
                chosen[choice].append(i)
        if not chosen[NUMBER]:
            self.add_error(None, gettext("Choose the column that holds the numbers."))
        for choice, columns in chosen.items():
            if len(columns) > 1:
                what = choice.removeprefix(FIELD)
                for i in columns[1:]:
                    self.add_error(
                        f"column_{i}",
                        gettext("Another column is “%(what)s” already: choose one.")
                        % {"what": what},
                    )
        if data.get("contact_list") == NEW:
            name = (data.get("new_list") or "").strip()
            if not name:
                self.add_error("new_list", gettext("Give the new list a name."))
            elif ContactList.objects.filter(account=self.account, name__iexact=name).exists():
                self.add_error(
                    "new_list", gettext("A list with this name exists: choose it above.")
                )
            data["new_list"] = name
        return data

    def mapping(self) -> importing.Mapping:
        data = self.cleaned_data
        mapping = importing.Mapping(number=-1)
        for column in self.columns:
            i = column["index"]
            choice = data[f"column_{i}"]
            if choice == NUMBER:
                mapping.number = i
            elif choice == NAME:
                mapping.name = i
            elif choice == LANGUAGE:
                mapping.language = i
            elif choice == NEW:
                mapping.fields.append((i, data[f"key_{i}"]))
            elif choice.startswith(FIELD):
                mapping.fields.append((i, choice.removeprefix(FIELD)))
        return mapping

    def new_fields(self) -> list[ContactField]:
        data = self.cleaned_data
        return [
            ContactField(
                account=self.account,
                key=data[f"key_{c['index']}"],
                label=data[f"label_{c['index']}"],
                type=data[f"type_{c['index']}"],
            )
            for c in self.columns
            if data[f"column_{c['index']}"] == NEW
        ]


def _type_of(samples: list[str]) -> str:
    """The type a column's sample values suggest."""
    for type_ in (ContactField.Type.NUMBER, ContactField.Type.DATE):
        try:
            if samples and all(cast(s, type_) is not None for s in samples):
                return type_
        except ValidationError:
            continue
    return ContactField.Type.TEXT


# --- the import page --------------------------------------------------------------------------


def _progress_key(request: HttpRequest, token: str) -> str:
    return f"contacts-import-progress:{request.user.pk}:{token}"


def _done_key(request: HttpRequest, token: str) -> str:
    return f"contacts-import-done:{request.membership.account_id}:{request.user.pk}:{token}"


@allowed(EDIT, IMPORT_REFUSAL)
def contact_import(request: HttpRequest) -> HttpResponse:
    """GET: choose a file. POST `upload`: keep it and show the mapping; POST `import`: import
    it as mapped; POST `cancel`: forget the file."""
    if request.method != "POST":
        return _page(request, "upload", form=UploadForm())
    action = request.POST.get("action", "upload")
    if action == "cancel":
        UPLOADS.discard(request, request.POST.get("upload", ""))
        return _page(request, "upload", form=UploadForm())
    if action == "import":
        return _import(request)
    return _upload(request)


def _page(request: HttpRequest, step: str, status: int = 200, **context) -> HttpResponse:
    """The page at `step` (upload, map, done); for htmx, its card alone, and a form's errors
    with a 200 (htmx swaps no 4xx answer)."""
    template = "contacts/import.html"
    if request.htmx:
        template += "#import-card"
        status = 200 if status == 400 else status
    return render(
        request,
        template,
        {"step": step, "can_manage": can_manage(request), **context},
        status=status,
    )


def _upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, "upload", form=form, status=400)
    file = form.cleaned_data["csv_file"]
    try:
        if file:
            upload = save_upload(request, file.chunks(), file.name, file.size)
        else:
            data = form.cleaned_data["pasted"].encode()
            upload = save_upload(request, [data], gettext("pasted list"), len(data))
    except importing.FileError as error:
        form.add_error("csv_file" if file else "pasted", str(error))
        return _page(request, "upload", form=form, status=400)
    account = request.membership.account
    admin = can_manage(request)
    mapping = MappingForm(
        account=account,
        upload=upload,
        admin=admin,
        initial=MappingForm.guessed(upload, account, admin),
    )
    return _page(request, "map", form=mapping, upload=upload)


def _import(request: HttpRequest) -> HttpResponse:
    token = request.POST.get("upload", "")
    done = cache.get(_done_key(request, token)) if uploads.TOKEN.fullmatch(token or "") else None
    if done is not None:
        # The same import confirmed twice (a double click, a page sent again): done once.
        return _page(request, "done", summary=done, again=True)
    upload = UPLOADS.get(request, token, request.membership.account)
    if upload is None:
        return _page(
            request,
            "upload",
            form=UploadForm(),
            problem=gettext("This file is no longer on the server: choose it again."),
            status=400,
        )
    account = request.membership.account
    form = MappingForm(request.POST, account=account, upload=upload, admin=can_manage(request))
    if not form.is_valid():
        return _page(request, "map", form=form, upload=upload, status=400)
    if not cache.add(_done_key(request, token), RUNNING, DONE_SECONDS):
        return _page(request, "done", summary=RUNNING, again=True)
    try:
        summary = _run(request, form, upload)
    except BaseException:
        cache.delete(_done_key(request, token))
        raise
    if summary is None:  # the form got an error meanwhile (a field or list added by someone)
        cache.delete(_done_key(request, token))
        return _page(request, "map", form=form, upload=upload, status=400)
    cache.set(_done_key(request, token), summary, DONE_SECONDS)
    UPLOADS.discard(request, token)
    return _page(request, "done", summary=summary)


def _run(request: HttpRequest, form: MappingForm, upload: Upload) -> dict | None:
    account = request.membership.account
    data = form.cleaned_data
    new_fields = form.new_fields()
    try:
        with transaction.atomic():
            for new in new_fields:
                new.save()
            contact_list = None
            if data["contact_list"] == NEW:
                contact_list = ContactList.objects.create(account=account, name=data["new_list"])
            elif data["contact_list"]:
                contact_list = ContactList.objects.get(account=account, pk=data["contact_list"])
    except (IntegrityError, ContactList.DoesNotExist):
        form.add_error(
            None,
            gettext("A field or list was added or removed meanwhile: check the mapping again."),
        )
        return None
    info = form.upload.info
    info.has_header = data["has_header"]
    rows = importing.CsvRows(upload.path, form.mapping(), info)
    key = _progress_key(request, upload.token)

    def progress(result: importing.UpsertResult) -> None:
        cache.set(key, {"done": rows.line, "total": info.lines}, PROGRESS_SECONDS)

    cache.set(key, {"done": 0, "total": info.lines}, PROGRESS_SECONDS)
    started = time.monotonic()
    result = importing.upsert_rows(
        account,
        rows,
        update_existing=data["mode"] == "update",
        contact_list=contact_list,
        progress=progress,
    )
    cache.delete(key)
    logger.info(
        "contacts imported: account=%s rows=%s created=%s updated=%s skipped=%s duplicates=%s "
        "rejected=%s list=%s seconds=%.1f user=%s",
        account.pk,
        result.rows,
        result.created,
        result.updated,
        result.skipped,
        result.duplicates,
        result.rejected_count,
        contact_list.pk if contact_list else None,
        time.monotonic() - started,
        request.user.pk,
    )
    return {
        "filename": upload.filename,
        "rows": result.rows,
        "created": result.created,
        "updated": result.updated,
        "skipped": result.skipped,
        "duplicates": result.duplicates,
        "rejected_count": result.rejected_count,
        "rejected": [asdict(row) for row in result.rejected],
        "added_to_list": result.added_to_list,
        "list": {"pk": contact_list.pk, "name": contact_list.name} if contact_list else None,
        "new_fields": [f"{{{new.key}}}" for new in new_fields],
        "mode": data["mode"],
    }


@allowed(EDIT, IMPORT_REFUSAL)
@require_GET
def import_progress(request: HttpRequest, token: str) -> HttpResponse:
    """How far the import of this file has got (polled while it runs)."""
    state = (
        cache.get(_progress_key(request, token)) if uploads.TOKEN.fullmatch(token or "") else None
    )
    if state and state.get("total"):
        state["done"] = min(state["done"], state["total"])
    return render(request, "contacts/import.html#progress", {"progress": state})


# --- exports ----------------------------------------------------------------------------------

# A cell starting with one of these is a formula to a spreadsheet: it is prefixed with an
# apostrophe so that it stays text (numbers such as +33 6... and -12.5 stay as they are).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    if value.startswith(FORMULA_START):
        rest = value[1:].replace(" ", "")
        if not (rest.replace(".", "", 1).isdigit() and rest.isascii()):
            return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def _export(request: HttpRequest, contacts: QuerySet[Contact], name: str) -> StreamingHttpResponse:
    """The contacts as CSV: number, name, language, each custom field by key, their lists."""
    account = request.membership.account
    keys = list(ContactField.objects.filter(account=account).values_list("key", flat=True))
    contacts = contacts.order_by("pk").values_list("pk", "number", "name", "language", "values")

    def lines():
        writer = csv.writer(_Echo())
        yield "\ufeff" + writer.writerow(["number", "name", "language", *keys, "lists"])
        last = 0
        while True:
            chunk = list(contacts.filter(pk__gt=last)[:EXPORT_CHUNK])
            if not chunk:
                return
            last = chunk[-1][0]
            lists = defaultdict(list)
            memberships = (
                Membership.objects.filter(contact_id__in=[row[0] for row in chunk])
                .order_by("contact_list__name")
                .values_list("contact_id", "contact_list__name")
            )
            for contact_id, list_name in memberships:
                lists[contact_id].append(list_name)
            out = []
            for pk, number, contact_name, language, values in chunk:
                values = values if isinstance(values, dict) else {}
                cells = [number, contact_name, language]
                cells += [shown(values.get(key)) for key in keys]
                cells.append("; ".join(lists[pk]))
                out.append(writer.writerow([_cell(cell) for cell in cells]))
            yield "".join(out)

    stamp = timezone.localdate().isoformat()
    filename = f"contacts-{slugify(name)[:40] or 'export'}-{stamp}.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    logger.info("contacts exported: account=%s what=%s user=%s", account.pk, name, request.user.pk)
    return response


@allowed(READ)
@require_GET
def export_all(request: HttpRequest) -> StreamingHttpResponse:
    """Every contact of the account."""
    return _export(request, Contact.objects.filter(account=request.membership.account), "all")


@allowed(READ)
@require_GET
def export_list(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    contact_list = get_for_account(ContactList.objects, request, pk=pk)
    members = Contact.objects.filter(account=request.membership.account, lists=contact_list)
    return _export(request, members, contact_list.name)


@allowed(READ)
@require_GET
def export_segment(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    segment = get_for_account(Segment.objects, request, pk=pk)
    account = request.membership.account
    return _export(request, segments.contacts(account, segment.rules), segment.name)
