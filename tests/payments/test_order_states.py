"""The order state machine as plain functions."""

from __future__ import annotations

import pytest

from domain.errors import Conflict
from domain.orders import TRANSITIONS, IllegalTransition, OrderStatus, restocks, transition

S = OrderStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.pending_payment, S.paid),
        (S.pending_payment, S.cancelled),
        (S.paid, S.fulfilled),
        (S.paid, S.refunded),
        (S.paid, S.partially_refunded),
        (S.fulfilled, S.delivered),
        (S.delivered, S.refunded),
        (S.partially_refunded, S.refunded),
        (S.partially_refunded, S.partially_refunded),
    ],
)
def test_legal_transitions(current: OrderStatus, target: OrderStatus) -> None:
    assert transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.pending_payment, S.fulfilled),
        (S.pending_payment, S.refunded),
        (S.paid, S.cancelled),
        (S.paid, S.pending_payment),
        (S.delivered, S.fulfilled),
        (S.cancelled, S.paid),
        (S.refunded, S.paid),
        (S.refunded, S.partially_refunded),
    ],
)
def test_illegal_transitions_are_conflicts(current: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(current, target)
    assert isinstance(raised.value, Conflict)


def test_terminal_states_and_every_state_listed() -> None:
    assert set(TRANSITIONS) == set(S)
    assert TRANSITIONS[S.cancelled] == frozenset()
    assert TRANSITIONS[S.refunded] == frozenset()


def test_only_ending_the_sale_restocks() -> None:
    assert restocks(S.pending_payment, S.cancelled)
    assert restocks(S.paid, S.refunded)
    assert restocks(S.partially_refunded, S.refunded)
    assert not restocks(S.paid, S.partially_refunded)
    assert not restocks(S.pending_payment, S.paid)
