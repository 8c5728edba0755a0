"""The order state machine as plain functions."""

from __future__ import annotations

import pytest

from domain.commerce.orders import TRANSITIONS, IllegalTransition, OrderStatus, restocks, transition
from domain.errors import Conflict

S = OrderStatus


# The sale's lifecycle, written out independently of TRANSITIONS: from a state, to these.
LEGAL = {
    S.pending_payment: [S.paid, S.cancelled],
    S.paid: [S.fulfilled, S.refunded, S.partially_refunded],
    S.fulfilled: [S.delivered],
    S.delivered: [S.refunded],
    S.partially_refunded: [S.refunded, S.partially_refunded],
}
ILLEGAL = {
    S.pending_payment: [S.fulfilled, S.refunded],
    S.paid: [S.cancelled, S.pending_payment],
    S.delivered: [S.fulfilled],
    S.cancelled: [S.paid],
    S.refunded: [S.paid, S.partially_refunded],
}


def pairs(table: dict[OrderStatus, list[OrderStatus]]) -> list[tuple[OrderStatus, OrderStatus]]:
    return [(current, target) for current, targets in table.items() for target in targets]


@pytest.mark.parametrize(("current", "target"), pairs(LEGAL))
def test_legal_transitions(current: OrderStatus, target: OrderStatus) -> None:
    assert transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), pairs(ILLEGAL))
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
