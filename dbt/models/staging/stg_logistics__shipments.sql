-- Chain-of-custody shipments from the courier portal (JSON array of records).
with source as (
    select * from {{ landing('logistics', 'shipments') }}
),

renamed as (
    select
        cast(shipment_id as varchar) as shipment_id,
        cast(coi_id as varchar) as coi_id,
        cast(batch_id as varchar) as batch_id,
        cast(direction as varchar) as direction,
        cast(from_site as varchar) as from_site,
        cast(to_site as varchar) as to_site,
        cast(shipped_at as timestamptz) as shipped_at,
        cast(delivered_at as timestamptz) as delivered_at,
        cast(min_temp_c as double) as min_temp_c,
        cast(max_temp_c as double) as max_temp_c,
        cast(temperature_excursion as boolean) as temperature_excursion,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
