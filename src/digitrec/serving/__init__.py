"""The web server: the FastAPI app, uploads and limits, corrections, and the page in web/."""
