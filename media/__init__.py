"""aiortc peers run by the hub: the embedded SFU (relay), the recorder peer, and the LiveKit
bridge. Never talks to clients directly: `signaling/` carries its offers and answers."""
