-- Grain: one row per batch x bioreactor (equipment_id) x parameter x UTC hour. Statistics use readings of
-- controller quality 'good' only; uncertain/bad readings are counted.
-- Incremental (macros/ducklake_incremental.sql): only the batch x bioreactor groups the curated readings got
-- from this run are recomputed; --full-refresh rebuilds all.
{{ config(materialized='ducklake_incremental', replace_groups=['batch_id', 'equipment_id']) }}

select
    batch_id,
    equipment_id,
    param,
    date_trunc('hour', ts_utc) as hour_utc,
    any_value(unit_op) as unit_op,
    any_value(unit) as unit,
    count(*) as readings,
    count(*) filter (where quality = 'good' and value is not null) as good_readings,
    count(*) filter (where quality = 'uncertain') as uncertain_readings,
    count(*) filter (where quality = 'bad') as bad_readings,
    avg(value) filter (where quality = 'good') as mean_value,
    min(value) filter (where quality = 'good') as min_value,
    max(value) filter (where quality = 'good') as max_value,
    stddev_samp(value) filter (where quality = 'good') as sd_value,
    {{ run_id() }} as _run_id
from {{ ref('bioreactor_readings') }}
where {{ changed_groups_filter(upstream=ref('bioreactor_readings')) }}
group by batch_id, equipment_id, param, date_trunc('hour', ts_utc)
