"""pawhub: the process layer. Settings, logging, the CLI and the composition roots.

The composition roots (the functions that build the hub and the API) live here, above
`realtime/`, `signaling/`, `moderation/` and `rest/`, so those packages never import each other
upward.
"""
