"""The load tester (`pawhub bench`), benchmark scenarios, and the Node socket.io reference server
it compares against."""
