"""aiortc peers run by the hub: the embedded SFU (forwarding) and the recorder peer. Never talks to
clients directly: `signaling/` carries its offers and answers.

- `media.sfu.SfuRoom`: one per consult in `sfu` mode; answers offers, forwards every
  participant's tracks to the others, renegotiates through a callback.
- `media.forwarding`: copies a published track's encoded frames to its subscribers' senders,
  with keyframe requests and loss recovery.
- `media._aiortc`: every touch of aiortc's internals, tested by tests/media/test_aiortc_hooks.py.
"""
