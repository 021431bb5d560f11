"""Login, logout, setup and profile. Importing this package registers the routes on ``auth_bp``."""
from . import routes, routes_tokens, routes_two_factor  # noqa: F401
from .blueprint import auth_bp  # noqa: F401
from . import routes_oidc  # noqa: F401,E402
