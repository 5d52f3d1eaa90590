"""Custom actions for the Rasa assistant (served by `python -m actions.server`, see there)."""
