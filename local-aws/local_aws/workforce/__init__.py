"""Private workforces of the local stack: workteams, local worker accounts and the tasks of private jobs.

What the SageMaker API (workforce and workteam operations), the labeling engine (a job whose WorkteamArn is a
local team) and the worker portal share, kept in the service's SQLite file so that all three processes see it.
"""
