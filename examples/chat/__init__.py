"""Multi-room chat example: rooms, presence and history over triows' channels."""
