"""`rq cron jobs/cron_config.py`: one tick a minute; the plans themselves live in the database."""
import os

from rq import cron

from jobs import queue_name
from jobs.plans import dispatch

cron.register(dispatch, queue_name=queue_name("background", os.environ.get("RQ_QUEUE", "portal")), interval=60)
