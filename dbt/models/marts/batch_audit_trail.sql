-- Grain: one row per batch x feed x raw file (SHA-256) holding rows of that batch: when it was received, how many
-- times it was delivered (re-deliveries are duplicates), its outcome, rows landed / current in the curated table /
-- superseded by a later delivery / flagged, whether it arrived after the batch's disposition, and the run that
-- ingested it. The data-integrity dashboard's per-batch view; `lakehouse audit-trail BATCH` prints the full report
-- (corrections value by value, rejects, quarantined files, runs) from the same record (pipelines/audit.py).
{%- set feeds = [
    ('mes', 'batches', 'batches'),
    ('mes', 'process_steps', 'process_steps'),
    ('bioreactor', 'readings', 'bioreactor_readings'),
    ('analyzer', 'samples', 'analyzer_samples'),
    ('lims', 'qc_results', 'qc_results'),
    ('qms', 'deviations', 'deviations'),
    ('logistics', 'shipments', 'shipments'),
    ('clinic', 'infusions', 'infusions'),
] %}
with landed as (
    {%- for system, entity, _curated in feeds %}
    select
        '{{ system }}__{{ entity }}' as feed,
        batch_id,
        _source_sha256 as sha256,
        any_value(_source_file) as file_name,
        any_value(_ingest_run_id) as ingest_run_id,
        count(*) as rows_landed,
        count(_dq_flags) as rows_flagged
    from {{ ref('stg_' ~ system ~ '__' ~ entity) }}
    where batch_id is not null
    group by batch_id, _source_sha256
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

current_rows as (
    {%- for system, entity, curated in feeds %}
    select
        '{{ system }}__{{ entity }}' as feed,
        batch_id,
        _source_sha256 as sha256,
        count(*) as rows_current
    from {{ ref(curated) }}
    where batch_id is not null
    group by batch_id, _source_sha256
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

latest_outcome as (
    select * from {{ ref('stg_control__file_outcomes') }}
    qualify row_number() over (partition by manifest_seq order by outcome_seq desc) = 1
),

deliveries as (
    select
        m.sha256,
        m.feed,
        count(*) as deliveries,
        count(*) filter (where o.outcome = 'duplicate') as redeliveries,
        min(m.received_at) as first_received_at,
        max(m.received_at) as last_received_at,
        bool_or(o.outcome = 'accepted') as any_accepted
    from {{ ref('stg_control__ingest_manifest') }} as m
    left join latest_outcome as o on m.manifest_seq = o.manifest_seq
    group by m.sha256, m.feed
),

batches as (
    select batch_id, disposition_at from {{ ref('batches') }}
)

select
    l.batch_id,
    l.feed,
    l.sha256,
    l.file_name,
    d.first_received_at,
    coalesce(d.deliveries, 0) as deliveries,
    coalesce(d.redeliveries, 0) as redeliveries,
    -- the landing Parquet holds only accepted files' rows; 'not on record' means the control DB lacks it
    case when d.any_accepted then 'accepted' else 'not on record' end as outcome,
    l.rows_landed,
    coalesce(c.rows_current, 0) as rows_current,
    l.rows_landed - coalesce(c.rows_current, 0) as rows_superseded,
    l.rows_flagged,
    coalesce(d.last_received_at > b.disposition_at, false) as received_after_disposition,
    l.ingest_run_id,
    {{ run_id() }} as _run_id
from landed as l
left join current_rows as c on l.feed = c.feed and l.batch_id = c.batch_id and l.sha256 = c.sha256
left join deliveries as d on l.sha256 = d.sha256 and l.feed = d.feed
left join batches as b on l.batch_id = b.batch_id
