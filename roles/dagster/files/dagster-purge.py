#!/usr/bin/env python3
"""Delete finished Dagster runs (and their event logs) created more than --days days ago.

Dagster keeps every run and event forever; the dagster-purge timer runs this daily with the release's Python and
the instance of DAGSTER_HOME. The lakehouse run ledger (control database) is a separate, append-only record and is
never touched. Prints one line: how many runs were deleted.
"""

import argparse
from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, required=True, help="keep runs created in the last DAYS days")
    args = parser.parse_args()
    cutoff = datetime.now(UTC) - timedelta(days=args.days)
    deleted = 0
    with DagsterInstance.get() as instance:
        while True:
            records = instance.get_run_records(filters=RunsFilter(statuses=FINISHED, created_before=cutoff), limit=100)
            if not records:
                break
            for record in records:
                instance.delete_run(record.dagster_run.run_id)
                deleted += 1
    print(f"dagster-purge: deleted {deleted} finished runs created before {cutoff:%Y-%m-%dT%H:%M:%SZ}")


if __name__ == "__main__":
    main()
