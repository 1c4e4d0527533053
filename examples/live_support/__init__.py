"""Live-support chat example: an HTTP page plus a websocket chat endpoint."""
