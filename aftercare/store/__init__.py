"""The patient store: patients, their treatments and escalations, in SQL.

models.py defines the tables, db.py opens and migrates the database,
repository.py holds the functions the rest of the project calls.
"""
