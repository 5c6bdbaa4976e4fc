-- Deviations and linked CAPAs from the QMS (CSV).
with source as (
    select * from {{ landing('qms', 'deviations') }}
),

renamed as (
    select
        cast(deviation_id as varchar) as deviation_id,
        cast(batch_id as varchar) as batch_id,
        cast(opened_at as timestamptz) as opened_at,
        cast(closed_at as timestamptz) as closed_at,
        cast(category as varchar) as category,
        cast(severity as varchar) as severity,
        cast(description as varchar) as description,
        cast(capa_id as varchar) as capa_id,
        cast(capa_due_date as date) as capa_due_date,
        cast(capa_closed_at as timestamptz) as capa_closed_at,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
