"""`pawhub bench chat`: an open-loop Socket.IO load tester for the `/chat` namespace."""
