-- Grain: one row per deviation_id (latest ingested version). See curated.yml.
with latest as (
    {{ latest_per_key(ref('stg_qms__deviations'), ['deviation_id']) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
