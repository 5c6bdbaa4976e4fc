-- Grain: one row per feed x data-quality rule x UTC day of ingest: curated rows kept with that rule's flag
-- (validation policy `flag`: the row stays, the rule's name is in `_dq_flags`, several joined with ';').
-- Rejected rows are not here: they never reach curated (see ingest_files_daily.rows_rejected).
{%- set curated = ['collections', 'batches', 'process_steps', 'bioreactor_readings', 'analyzer_samples',
                   'qc_results', 'deviations', 'material_lots', 'shipments', 'infusions'] %}
with flagged as (
    {%- for table in curated %}
    select '{{ table }}' as feed, _dq_flags, _ingested_at
    from {{ ref(table) }}
    where _dq_flags is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

rules as (
    select feed, unnest(string_split(_dq_flags, ';')) as rule, date_trunc('day', _ingested_at) as ingested_day
    from flagged
)

select
    feed,
    rule,
    ingested_day,
    count(*) as rows_flagged,
    {{ run_id() }} as _run_id
from rules
group by feed, rule, ingested_day
