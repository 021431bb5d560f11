from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..models import ROLES, THEMES


class LoginForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=500)])


class SetupForm(FlaskForm):
    username = StringField("Admin user name", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=10, max=500, message="The password needs at least 10 characters.")])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])


class InvitationForm(FlaskForm):
    username = StringField("Choose a user name", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Choose a password", validators=[DataRequired(), Length(min=10, max=500, message="The password needs at least 10 characters.")])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=[DataRequired(), Length(min=10, max=500, message="The password needs at least 10 characters.")])
    confirm = PasswordField("Repeat new password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])


class ThemeForm(FlaskForm):
    theme = SelectField("Theme", choices=[(t, t.capitalize()) for t in THEMES])


class RoleSwitchForm(FlaskForm):
    role = SelectField("Active role", choices=[(r, r.capitalize()) for r in ROLES])
