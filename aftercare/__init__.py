"""Aftercare assistant for SkinPen microneedling clinics: shared core.

The Rasa assistant (domain.yml, config.yml, data/, actions/), the Telegram
front end (bot/) and the staff tools all build on the modules here: the
clinic protocol, recovery-day arithmetic, the patient store and the red-flag
safety net.
"""
