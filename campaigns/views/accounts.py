"""The user's own settings: the current account, the language of the pages."""

from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from ..language import SESSION_KEY, save_language
from ..tenancy import SESSION_KEY as ACCOUNT_KEY


@login_required
@require_POST
def switch_account(request: HttpRequest) -> HttpResponse:
    try:
        account_id = int(request.POST.get("account", ""))
    except ValueError:
        raise Http404("No such account.") from None
    if not any(m.account_id == account_id for m in request.memberships):
        raise Http404("No such account.")
    request.session[ACCOUNT_KEY] = account_id
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "campaigns:dashboard"
    return redirect(target)


class LanguageForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language of the pages"),
        required=False,
        widget=forms.RadioSelect,
        help_text=_("Your choice, for every page you see, on any computer you log in from."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Each language named in its own words; "" follows the browser.
        self.fields["language"].choices = [("", _("The browser's language")), *settings.LANGUAGES]


@login_required
def language(request: HttpRequest) -> HttpResponse:
    """The user's language for the pages: English, French, Romanian or the browser's."""
    if request.method == "POST":
        form = LanguageForm(request.POST)
        if form.is_valid():
            code = form.cleaned_data["language"]
            save_language(request, code)
            # Said in the language just chosen.
            translation.activate(code or translation.get_language_from_request(request))
            flash.success(request, _("Language saved."))
            return redirect("campaigns:language")
    else:
        form = LanguageForm(initial={"language": request.session.get(SESSION_KEY, "")})
    return render(request, "campaigns/language.html", {"form": form})
