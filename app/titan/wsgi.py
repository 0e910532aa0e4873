"""WSGI entry point for gunicorn: `titan.wsgi:app`, configured from the environment."""
import os

from titan.app import create_app
from titan.config import load_config

app = create_app(load_config(os.environ))
