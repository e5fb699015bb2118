"""Country and operator of a number (`campaigns.operators`): in Python and as the SQL the
reports group by, which must agree."""

import pytest
from django.db.models import CharField
from django.db.models.functions import Cast

from campaigns import operators
from campaigns.models import Message

from ..factories import MessageFactory

# (number, calling code, country label, operator) — the ranges as allocated (ARCEP, ANCOM).
NUMBERS = [
    ("+33607123456", "33", "France (+33)", "Orange"),
    ("+33609123456", "33", "France (+33)", "SFR"),
    ("+33660123456", "33", "France (+33)", "Bouygues Telecom"),
    ("+33698123456", "33", "France (+33)", "Bouygues Telecom"),
    ("+33651123456", "33", "France (+33)", "Free Mobile"),
    ("+33695123456", "33", "France (+33)", "Free Mobile"),
    ("+33142123456", "33", "France (+33)", operators.OTHER),  # a Paris landline
    ("+40744123456", "40", "Romania (+40)", "Orange"),
    ("+40722123456", "40", "Romania (+40)", "Vodafone"),
    ("+40771123456", "40", "Romania (+40)", "Digi"),
    ("+40211234567", "40", "Romania (+40)", operators.OTHER),  # a Bucharest landline
    ("+4915112345678", "49", "Germany (+49)", operators.UNKNOWN),
    ("+12025550123", "1", "United States (+1)", operators.UNKNOWN),
    ("+447700900123", "44", "United Kingdom (+44)", operators.UNKNOWN),
    ("+584141234567", "58", "Venezuela (+58)", operators.UNKNOWN),
    ("+3531234567", "353", "Ireland (+353)", operators.UNKNOWN),
]


@pytest.mark.parametrize(("number", "code", "country", "operator"), NUMBERS)
def test_country_and_operator_of_a_number(number, code, country, operator):
    assert operators.country_code(number) == code
    assert operators.country_label(code) == country
    assert operators.operator(number) == operator


def test_labels_for_what_is_not_known():
    assert operators.country_label("") == "Unknown country"
    assert operators.country_label("999") == "Unknown country"
    assert operators.operator_label(operators.OTHER) == "Other operator"
    assert operators.operator_label(operators.UNKNOWN) == "Unknown operator"
    assert operators.operator_label("SFR") == "SFR"


def test_a_longer_prefix_wins_over_a_shorter_one():
    # 3363 is Orange's, but 33634 and 33635 inside it went to SFR.
    assert operators.operator("+33630123456") == "Orange"
    assert operators.operator("+33634123456") == "SFR"


@pytest.mark.django_db
def test_the_database_reads_numbers_as_python_does(account):
    # Every French mobile hundred-block and a spread of others, through the SQL expressions.
    numbers = [number for number, *_ in NUMBERS]
    numbers += [f"+336{block:02d}{i:06d}" for block in range(100) for i in (0, 555555)]
    numbers += [f"+337{block:02d}123456" for block in range(100)]
    numbers += [f"+4070{block}123456" for block in range(10)]
    numbers += [f"+407{block}1234567"[:12] for block in range(10)]
    for number in numbers:
        MessageFactory(account=account, recipient=number)
    rows = Message.objects.annotate(
        code=Cast(operators.country_code_expression(), CharField()),
        operator=operators.operator_expression(),
    ).values_list("recipient", "code", "operator")
    assert len(rows) == len(numbers)
    for recipient, code, operator in rows:
        assert (recipient, code, operator) == (
            recipient,
            operators.country_code(recipient),
            operators.operator(recipient),
        )
