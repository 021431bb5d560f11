"""The main blueprint: every page outside login and the documentation. Its routes live in the
``routes_*`` modules of this package (one module per page), which ``main/__init__.py`` imports."""
from flask import Blueprint

main_bp = Blueprint("main", __name__)
