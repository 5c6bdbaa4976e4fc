-- Grain: one row per batch_id x equipment_id x param x ts_utc (latest ingested version). See curated.yml.
with latest as (
    {{ latest_per_key(
        ref('stg_bioreactor__readings'),
        ['batch_id', 'equipment_id', 'param', 'ts_utc'],
        single_file_groups=['batch_id', 'equipment_id']
    ) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
