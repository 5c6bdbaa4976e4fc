-- Batch records from the MES (CSV).
with source as (
    select * from {{ landing('mes', 'batches') }}
),

renamed as (
    select
        cast(batch_id as varchar) as batch_id,
        cast(coi_id as varchar) as coi_id,
        cast(din as varchar) as din,
        cast(product_code as varchar) as product_code,
        cast(site as varchar) as site,
        cast(process_version as varchar) as process_version,
        cast(started_at as timestamptz) as started_at,
        cast(ended_at as timestamptz) as ended_at,
        cast(disposition as varchar) as disposition,
        cast(disposition_at as timestamptz) as disposition_at,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
