-- Grain: one row per sample_id x test_code (latest ingested version). See curated.yml.
with latest as (
    {{ latest_per_key(ref('stg_lims__qc_results'), ['sample_id', 'test_code']) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
