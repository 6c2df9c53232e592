"""What an analysis, export or diff request asks for: the task's newest profile per chosen
instance, a sample type and a granularity."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import dataclasses

from proftask.clickhouse.client import ClickHouse
from proftask.core.echo import echo
from proftask.core.value_range import INT64_MAX, INT64_MIN, merged_sum_beyond_int64
from proftask.http.errors import ApiError
from proftask.pprof.fold import GRANULARITIES, select_sample_type
from proftask.analysis import analysis_queries, progress_queries
from proftask.analysis.analysis_queries import StoredProfile

if TYPE_CHECKING:
    from proftask.task_view import TaskView


@dataclasses.dataclass
class Selection:
    tenant: str
    task_id: str
    profiles: list[StoredProfile]
    sample_types: list[str]
    sample_type: str | None
    granularity: str

    @property
    def value_index(self) -> dict[str, int]:
        """profile id → 1-based position of the chosen sample type in its values."""
        return {p.profile_id: p.sample_types.index(self.sample_type) + 1
                for p in self.profiles if self.sample_type in p.sample_types}

    @property
    def cache_key(self) -> tuple:
        """What an answer of this selection is made of: every chosen profile (an answer names
        their instances and sample types, not only those with the chosen type), the chosen type
        and the granularity."""
        return (self.tenant, self.task_id, tuple(sorted((p.instance_id, p.profile_id) for p in self.profiles)),
                tuple(sorted(self.value_index.items())), self.sample_type, self.granularity)

    @property
    def instance_ids(self) -> list[str]:
        return sorted(p.instance_id for p in self.profiles)


def parse_granularity(value: str | None) -> str:
    granularity = value or "function"
    if granularity not in GRANULARITIES:
        raise ApiError(400, "ARGUMENT_ERROR", f"granularity must be one of {', '.join(GRANULARITIES)}")
    return granularity


def parse_instance_ids(values: Iterable[str]) -> frozenset[str]:
    """The instanceIds parameters as sent (repeated, or one listing several comma-separated):
    resolve_instances reads them against the task's instances. None: every instance."""
    return frozenset(v for v in values if v)


def resolve_instances(choices: Iterable[str], instances: Sequence[str]) -> set[str]:
    """Each choice is an instance of the task by its whole name, else the comma-separated names
    it lists: an instance whose name holds a comma (which names may) is chosen by its name, as
    one choice (split, it could never be chosen). A choice `a,b` of a task with instances `a`,
    `b` and `a,b` is the last: repeat the parameter to choose the first two."""
    known, wanted = set(instances), set[str]()
    for choice in choices:
        wanted.update([choice] if choice in known else (i for i in choice.split(",") if i))
    return wanted


async def require_task(ch: ClickHouse, tasks: TaskView | None, tenant: str, task_id: str,
                       missing_status: int = 404) -> list[str]:
    """The task's instances; 404 (or missing_status) when the tenant has no such task.

    Asked of the task view (Kafka, the truth), not ClickHouse: ClickHouse knows a task once the
    processor wrote its row, a moment after the 201, while the view finds it on every replica
    as soon as it is created (find() syncs to the topic's end for an id it has not read yet). So
    a task that exists answers, with every instance pending until the processor catches up.
    ClickHouse only without a view. A view still loading the history (a server starting) is
    503: it would call a task not found that exists, or fail on a consumer not started yet."""
    if tasks is not None:
        task = await tasks.require_ready().find(tenant, task_id)
        instances = list(task.spec.service_instance_ids) if task is not None else None
    else:
        instances = await progress_queries.task_instances(ch, tenant, task_id)
    if instances is None:
        if missing_status == 404:
            raise ApiError(404, "NOT_FOUND", f"task {echo(task_id)} not found")
        raise ApiError(missing_status, "ARGUMENT_ERROR", f"task {echo(task_id)} not found")
    return instances


MAX_NAMED = 10


def _names(values: list[str]) -> str:
    named = ", ".join(echo(v) for v in values[:MAX_NAMED])
    return named + (f" and {len(values) - MAX_NAMED} more" if len(values) > MAX_NAMED else "")


def check_instances(task_id: str, wanted: set[str], instances: list[str]) -> None:
    """Naming an instance the task does not have is a mistake to report, not an empty tree."""
    unknown = sorted(wanted - set(instances))
    if unknown:
        raise ApiError(400, "ARGUMENT_ERROR", f"instance(s) {_names(unknown)} are not instances of task "
                       f"{echo(task_id)} (its instances: {_names(list(instances))})")


async def select(ch: ClickHouse, tasks: TaskView | None, tenant: str, task_id: str, wanted: set[str],
                 sample_type: str | None, granularity: str, missing_status: int = 404,
                 names: bool = False) -> Selection:
    """`wanted`: instance choices as REST takes them (resolve_instances), or with names=True the
    instances' names (GraphQL's list: a name is never split); none: every instance."""
    instances = await require_task(ch, tasks, tenant, task_id, missing_status)
    if not names:
        wanted = resolve_instances(wanted, instances)
    check_instances(task_id, wanted, instances)
    profiles = [p for p in await analysis_queries.latest_profiles(ch, tenant, task_id)
                if not wanted or p.instance_id in wanted]
    sample_types: list[str] = []
    for p in profiles:
        sample_types += [t for t in p.sample_types if t not in sample_types]
    chosen = resolve_sample_type(profiles, sample_types, sample_type)
    if chosen is not None:
        require_merge_fits(profiles, chosen)
    return Selection(tenant, task_id, profiles, sample_types, chosen, granularity)


def require_merge_fits(profiles: list[StoredProfile], sample_type: str) -> None:
    """422 when the profiles' merge of the sample type (each profile's first column of that name,
    the one an analysis sums) would sum past 64 bits (core.value_range): its numbers would wrap,
    so it is refused rather than shown wrong, as a single such profile is at upload."""
    having = [p for p in profiles if sample_type in p.sample_types]
    _require_fits(sample_type, [p.value_bounds(p.sample_types.index(sample_type)) for p in having])


def require_columns_fit(profiles: list[StoredProfile], sample_types: list[str], columns: list[list[int]]) -> None:
    """require_merge_fits for each sample type of a pprof export (it sums each), from each
    profile's column of it (core.merged_sample_types): a profile may name two columns alike."""
    for at, sample_type in enumerate(sample_types):
        _require_fits(sample_type, [p.value_bounds(picked[at]) for p, picked in zip(profiles, columns, strict=True)])


def _require_fits(sample_type: str, bounds: list[tuple[int, int]]) -> None:
    beyond = merged_sum_beyond_int64(bounds)
    if beyond is not None:
        raise ApiError(422, "VALUES_OUT_OF_RANGE", (
            f"the values of sample type {echo(sample_type)} of the {len(bounds)} chosen instances sum to "
            f"{beyond}, beyond the 64-bit range of totals ({INT64_MIN}..{INT64_MAX}); refused rather than "
            "shown wrong: choose fewer instances (instanceIds)"))


def resolve_sample_type(profiles: list[StoredProfile], sample_types: list[str], requested: str | None) -> str | None:
    """The sample type of a merge of `profiles` whose types are `sample_types` (in order of
    appearance): pprof's rule (proftask.pprof.fold.select_sample_type) with the default of the
    first profile that names one, else the first profile's (its last type), as pprof's merge
    takes the first default a profile names. Without profiles, whatever was requested."""
    if not profiles:
        return requested
    first = next((p for p in profiles if p.default_named), profiles[0])
    default = sample_types.index(first.sample_types[first.default_index])
    return sample_types[select_sample_type(sample_types, default, requested)]
