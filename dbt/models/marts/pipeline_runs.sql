-- Grain: one row per pipeline run in the run ledger: who/what started it, when, its status and its duration in
-- seconds. A run may be recorded in parts (a Dagster run: one start/end pair per step); its status folds them as
-- pipelines.ledger.runs does: failed if a part failed, abandoned if a part's process died (closed by a later
-- run), running while a part has no end row (the run building this mart is one), else succeeded.
with events as (
    select * from {{ ref('stg_control__run_ledger') }}
),

started as (
    select * from events
    where event = 'started'
    qualify row_number() over (partition by run_id order by ledger_seq) = 1
),

parts as (
    select
        run_id,
        count(*) filter (where event = 'started') as started_parts,
        count(*) filter (where event <> 'started') as ended_parts,
        bool_or(event = 'failed') as any_failed,
        bool_or(event = 'abandoned') as any_abandoned,
        max(ended_at) as ended_at,
        string_agg(error, '; ' order by ledger_seq) as error
    from events
    group by run_id
)

select
    s.run_id,
    s.trigger,
    s.who,
    s.stages,
    s.package_version,
    s.git_commit,
    s.started_at,
    p.ended_at,
    case
        when p.any_failed then 'failed'
        when p.any_abandoned then 'abandoned'
        when p.ended_parts < p.started_parts then 'running'
        else 'succeeded'
    end as status,
    extract(epoch from p.ended_at - s.started_at) as duration_s,
    p.error,
    {{ run_id() }} as _run_id
from started as s
inner join parts as p on s.run_id = p.run_id
