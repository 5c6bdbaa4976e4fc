-- Apheresis collections as exported by the collection centre's LIMS (CSV).
with source as (
    select * from {{ landing('apheresis', 'collections') }}
),

renamed as (
    select
        cast(din as varchar) as din,
        cast(coi_id as varchar) as coi_id,
        cast(patient_id as varchar) as patient_id,
        cast(product_code as varchar) as product_code,
        cast(collection_site as varchar) as collection_site,
        cast(collected_at as timestamptz) as collected_at,
        cast(received_at as timestamptz) as received_at,
        cast(cd3_count as double) as cd3_count,
        cast(volume_ml as double) as volume_ml,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
