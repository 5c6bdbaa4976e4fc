-- Daily offline in-process samples (cell counter, metabolite analyzer), Parquet.
with source as (
    select * from {{ landing('analyzer', 'samples') }}
),

renamed as (
    select
        cast(sample_id as varchar) as sample_id,
        cast(batch_id as varchar) as batch_id,
        cast(instrument_id as varchar) as instrument_id,
        cast(sampled_at as timestamptz) as sampled_at,
        cast(culture_day as bigint) as culture_day,
        cast(param as varchar) as param,
        cast(value as double) as value,
        cast(unit as varchar) as unit,
        cast(analyst_id as varchar) as analyst_id,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
