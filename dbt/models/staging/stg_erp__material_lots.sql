-- Material and reagent lots (vector, media, beads) from the ERP (CSV).
with source as (
    select * from {{ landing('erp', 'material_lots') }}
),

renamed as (
    select
        cast(material_lot_id as varchar) as material_lot_id,
        cast(material_code as varchar) as material_code,
        cast(material_name as varchar) as material_name,
        cast(supplier as varchar) as supplier,
        cast(expiry_date as date) as expiry_date,
        cast(received_at as timestamptz) as received_at,
        cast(status as varchar) as status,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
