-- Online bioreactor parameters at 1 min: the controller's wide CSV export with '# key: value' metadata lines and a units row, melted to long format at ingest.
with source as (
    select * from {{ landing('bioreactor', 'readings') }}
),

renamed as (
    select
        cast(batch_id as varchar) as batch_id,
        cast(unit_op as varchar) as unit_op,
        cast(equipment_id as varchar) as equipment_id,
        cast(param as varchar) as param,
        cast(ts_utc as timestamptz) as ts_utc,
        cast(value as double) as value,
        cast(unit as varchar) as unit,
        cast(quality as varchar) as quality,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
