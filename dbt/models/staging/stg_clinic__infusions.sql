-- Infusions reported by treatment centres (CSV).
with source as (
    select * from {{ landing('clinic', 'infusions') }}
),

renamed as (
    select
        cast(coi_id as varchar) as coi_id,
        cast(batch_id as varchar) as batch_id,
        cast(treatment_site as varchar) as treatment_site,
        cast(infused_at as timestamptz) as infused_at,
        cast(dose_cells as double) as dose_cells,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
