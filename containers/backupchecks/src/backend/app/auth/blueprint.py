"""The auth blueprint (/auth): login, logout, first-run setup, profile, role switch (``routes.py``)."""
from flask import Blueprint

auth_bp = Blueprint("auth", __name__, url_prefix="/auth")
