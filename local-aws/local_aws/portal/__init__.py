"""The worker portal: where the people of private workteams sign in and label their tasks in a browser.

It serves the job's own worker UI template, rendered as Ground Truth renders it, with the portal's crowd
HTML elements instead of AWS's, and stores each answer in the service's SQLite file the moment it is
submitted (``local_aws.workforce.task_queue``), where the labeling engine collects it.
"""
