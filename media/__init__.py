"""aiortc peers run by the hub: the embedded SFU (relay), the recorder peer, and the LiveKit
bridge. Never talks to clients directly: `signaling/` carries its offers and answers.

- `media.sfu.SfuRoom`: one per consult in `sfu` mode; answers offers, forwards every
  participant's tracks to the others, renegotiates through a callback.
- `media.livekit.LiveKitBridge`: rooms and room-scoped tokens for `livekit` mode;
  `verify_livekit_webhook` checks LiveKit's webhook signatures.
"""
