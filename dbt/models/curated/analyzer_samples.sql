-- Grain: one row per sample_id x param (latest ingested version). See curated.yml.
with latest as (
    {{ latest_per_key(ref('stg_analyzer__samples'), ['sample_id', 'param']) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
