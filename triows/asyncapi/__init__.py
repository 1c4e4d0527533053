"""AsyncAPI 3.0: the document of an app's websocket routes, and a page that shows it."""
