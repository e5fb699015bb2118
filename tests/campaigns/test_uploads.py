"""Files uploaded at one step and read at the next (the compose page's CSV, a contacts import):
kept per session and per kind, the last three of a kind, a day at most on disk."""

import os
import time

import pytest

from campaigns import uploads

from ..contacts.test_transfer import IMPORT
from ..contacts.test_transfer import upload as contacts_upload
from .test_compose import CSV, preview, token
from .test_compose import upload as compose_upload

pytestmark = pytest.mark.django_db

GONE = "This file is no longer on the server: choose it again."
PEOPLE = "Phone;Name\n06 12 34 56 78;Ann\n"


@pytest.fixture(autouse=True)
def folder(settings, tmp_path):
    settings.SMSHUB_UPLOAD_DIR = tmp_path / "uploads"
    return settings.SMSHUB_UPLOAD_DIR


def compose_token(client) -> str:
    return token(compose_upload(client, CSV))


def contacts_token(client) -> str:
    response = contacts_upload(client, PEOPLE)
    assert response.status_code == 200
    return response.context["upload"].token


def previewed(client, upload_token: str) -> str:
    data = {"upload": upload_token, "column": "1", "has_header": "on", "name": "List"}
    return preview(client, **data).content.decode()


def on_disk(folder) -> set[str]:
    return {path.stem for path in folder.glob("*.csv")}


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_session_keeps_its_last_three_uploads_of_each_kind(operator_client, folder):
    first, *kept = [compose_token(operator_client) for _ in range(3)]
    imports = [contacts_token(operator_client) for _ in range(3)]  # another kind: not counted
    assert on_disk(folder) == {first, *kept}
    assert on_disk(folder / "contacts") == set(imports)
    newest = compose_token(operator_client)
    assert on_disk(folder) == {*kept, newest}  # the oldest of the compose page's went
    assert GONE in previewed(operator_client, first)
    for upload_token in (*kept, newest):
        assert "Check before sending" in previewed(operator_client, upload_token)
    assert on_disk(folder / "contacts") == set(imports)


def test_an_upload_nobody_confirmed_is_removed_after_a_day_by_the_next_of_its_kind(
    operator_client, folder
):
    old, recent = compose_token(operator_client), compose_token(operator_client)
    old_import = contacts_token(operator_client)
    age(folder / f"{old}.csv", uploads.MAX_AGE + 60)
    age(folder / f"{recent}.csv", uploads.MAX_AGE - 60)
    age(folder / "contacts" / f"{old_import}.csv", uploads.MAX_AGE + 60)
    newest = compose_token(operator_client)
    assert on_disk(folder) == {recent, newest}
    assert GONE in previewed(operator_client, old)
    assert on_disk(folder / "contacts") == {old_import}  # its own kind's next upload removes it
    new_import = contacts_token(operator_client)
    assert on_disk(folder / "contacts") == {new_import}


def test_an_upload_of_one_kind_is_not_found_by_the_other(operator_client, folder):
    compose_file = compose_token(operator_client)
    page = operator_client.post(IMPORT, {"action": "import", "upload": compose_file})
    assert GONE in page.content.decode()
    import_file = contacts_token(operator_client)
    assert GONE in previewed(operator_client, import_file)
    # Both still there for their own step.
    assert on_disk(folder) == {compose_file} and on_disk(folder / "contacts") == {import_file}


def test_a_file_that_is_not_csv_leaves_nothing_behind(operator_client, folder):
    response = contacts_upload(operator_client, b"\x00\x01\x02 not a csv \xff" * 100, "x.csv")
    assert response.status_code == 400
    assert not list((folder / "contacts").glob("*"))
