"""The clinic staff review page: escalations, patients, conversations, replies.

A small server-rendered aiohttp application (no JavaScript). `python -m
review` serves it; `aftercare run` starts it next to Rasa and the action
server. See app.py for how requests flow, auth.py for sessions and CSRF.
"""
