"""The failing step of a failed job, read once per job run from API v1.1 (the only API with
step-level results, docs/circleci-api.md §v1.1 single job).

Fallback: v1.1 does not answer for every project (some Bitbucket Cloud projects get a 4xx).
Then the job keeps its link and shows no step; the read is never retried for that run, and after
a 4xx the project's next failed jobs skip v1.1 for `pause` seconds, so a project where v1.1
never works costs one counted request per `pause`, not one per failed job or per cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from exporter.circleci import ApiStatusError, CircleCIClient, CircleCIError, models
from exporter.state import State
from exporter.state.updates import FailedStepUpdate, JobUpdate

logger = logging.getLogger(__name__)


def first_failed_action(job: models.JobV1) -> tuple[str, models.StepAction] | None:
    """The first step, in run order, with a failed action: its name and that action."""
    for step in job.steps:
        for action in step.actions:
            if action.failed or action.status in ("failed", "timedout", "infrastructure_fail"):
                return step.name, action
    return None


class FailedStepReader:
    def __init__(
        self,
        slug: str,
        *,
        client: CircleCIClient,
        state: State,
        pause: float,
        clock: Callable[[], float],
    ) -> None:
        self.slug = slug
        self.client = client
        self.state = state
        self.pause = pause
        self.clock = clock
        self._refused_until = 0.0

    async def read(self, job: JobUpdate) -> None:
        """Apply the failed step of this failed job run (step "" when v1.1 cannot tell)."""
        assert job.job_number is not None
        found = None
        if self.clock() >= self._refused_until:
            try:
                found = first_failed_action(await self.client.get_job_v1(self.slug, job.job_number))
            except CircleCIError as err:
                if isinstance(err, ApiStatusError) and 400 <= err.status < 500:
                    self._refused_until = self.clock() + self.pause
                logger.warning(
                    "failed step unavailable",
                    extra={"project": self.slug, "job_number": job.job_number, "error": str(err)},
                )
        name, action = found if found is not None else ("", None)
        self.state.apply(
            FailedStepUpdate(
                project=job.project,
                branch=job.branch,
                workflow=job.workflow,
                job=job.job,
                job_id=job.job_id,
                job_number=job.job_number,
                step=name,
                step_id=None if action is None else action.step,
                index=None if action is None else action.index,
                allocation_id=None if action is None else action.allocation_id,
                output_url=None if action is None else action.output_url,
            )
        )
