"""Titan: a small Flask application that produces realistic metrics and logs."""
