"""A room's delivery order (`realtime.room_cursor.RoomCursor`), without servers."""

from __future__ import annotations

from realtime.room_cursor import RoomCursor


def test_the_next_message_goes_out_at_once_and_repeats_never() -> None:
    cursor: RoomCursor[str] = RoomCursor(3)
    assert cursor.offer(4, "m4") == ["m4"]
    assert cursor.offer(4, "m4 again") == []
    assert cursor.offer(2, "m2") == []
    assert cursor.seq == 4
    assert cursor.gap_end is None


def test_a_message_past_a_gap_waits_until_the_gap_closes_then_all_go_in_order() -> None:
    cursor: RoomCursor[str] = RoomCursor(0)
    assert cursor.offer(3, "m3") == []
    assert cursor.offer(5, "m5") == []
    assert cursor.gap_end == 2
    assert cursor.offer(2, "m2") == []  # 1 is still missing
    assert cursor.offer(1, "m1") == ["m1", "m2", "m3"]
    assert cursor.seq == 3
    assert cursor.gap_end == 4
    assert cursor.offer(4, "m4") == ["m4", "m5"]
    assert cursor.gap_end is None


def test_a_gap_filled_by_another_way_releases_what_waited_and_drops_repeats() -> None:
    cursor: RoomCursor[str] = RoomCursor(10)
    cursor.offer(12, "m12")
    cursor.offer(14, "m14")
    cursor.offer(15, "m15")
    for seq in (11, 12, 13):  # read from PostgreSQL, 12 among them
        cursor.delivered(seq)
    assert cursor.release() == ["m14", "m15"]
    assert cursor.seq == 15
    assert cursor.gap_end is None
    assert cursor.release() == []


def test_delivered_never_moves_the_cursor_back() -> None:
    cursor: RoomCursor[str] = RoomCursor(7)
    cursor.delivered(5)
    assert cursor.seq == 7
