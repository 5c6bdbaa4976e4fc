-- Grain: one row per UTC day of receipt x source system x feed x current outcome x quarantine reason: how many
-- landed files ended accepted, quarantined (and why), duplicate or are still pending validation.
with manifest as (
    select * from {{ ref('stg_control__ingest_manifest') }}
),

latest_outcome as (
    -- a file's newest verdict counts (re-validation appends a row; control.py)
    select * from {{ ref('stg_control__file_outcomes') }}
    qualify row_number() over (partition by manifest_seq order by outcome_seq desc) = 1
),

files as (
    select
        date_trunc('day', m.received_at) as received_day,
        m.source_system,
        coalesce(m.feed, '(no feed)') as feed,
        coalesce(o.outcome, 'pending') as outcome,
        case when o.outcome = 'quarantined' then coalesce(o.reason_kind, 'unspecified') else 'n/a' end
            as reason_kind,
        m.size_bytes,
        coalesce(o.rows_accepted, 0) as rows_accepted,
        coalesce(o.rows_flagged, 0) as rows_flagged,
        coalesce(o.rows_rejected, 0) as rows_rejected
    from manifest as m
    left join latest_outcome as o on m.manifest_seq = o.manifest_seq
)

select
    received_day,
    source_system,
    feed,
    outcome,
    reason_kind,
    count(*) as files,
    sum(size_bytes) as bytes,
    sum(rows_accepted) as rows_accepted,
    sum(rows_flagged) as rows_flagged,
    sum(rows_rejected) as rows_rejected,
    {{ run_id() }} as _run_id
from files
group by received_day, source_system, feed, outcome, reason_kind
