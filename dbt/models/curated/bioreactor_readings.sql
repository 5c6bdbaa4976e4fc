-- Grain: one row per batch_id x equipment_id x param x ts_utc (latest ingested version). See curated.yml.
-- Incremental (macros/ducklake_incremental.sql): a run recomputes only the batch x bioreactor groups that new
-- landing files touch, each from all of its landing rows; --full-refresh rebuilds every group.
{{ config(materialized='ducklake_incremental', replace_groups=['batch_id', 'equipment_id']) }}

with changed as (
    select * from {{ ref('stg_bioreactor__readings') }}
    where {{ changed_groups_filter(landing='bioreactor__readings') }}
),

latest as (
    {{ latest_per_key(
        'changed',
        ['batch_id', 'equipment_id', 'param', 'ts_utc'],
        single_file_groups=['batch_id', 'equipment_id']
    ) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
