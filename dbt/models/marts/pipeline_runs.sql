-- Grain: one row per pipeline run in the run ledger: who/what started it, when, its status (succeeded, failed,
-- or running: no end row yet, which includes the run that builds this mart) and its duration in seconds.
with events as (
    select * from {{ ref('stg_control__run_ledger') }}
),

started as (
    select * from events
    where event = 'started'
    qualify row_number() over (partition by run_id order by ledger_seq) = 1
),

ended as (
    select * from events
    where event in ('succeeded', 'failed')
    qualify row_number() over (partition by run_id order by ledger_seq desc) = 1
)

select
    s.run_id,
    s.trigger,
    s.who,
    s.stages,
    s.package_version,
    s.git_commit,
    s.started_at,
    e.ended_at,
    coalesce(e.event, 'running') as status,
    extract(epoch from e.ended_at - s.started_at) as duration_s,
    e.error,
    {{ run_id() }} as _run_id
from started as s
left join ended as e on s.run_id = e.run_id
