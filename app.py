"""WSGI entry point and `flask --app app …` CLI."""
from portal import create_app

app = create_app()
