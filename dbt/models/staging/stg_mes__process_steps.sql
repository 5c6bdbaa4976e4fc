-- Process step executions from the MES (CSV).
with source as (
    select * from {{ landing('mes', 'process_steps') }}
),

renamed as (
    select
        cast(batch_id as varchar) as batch_id,
        cast(step_seq as bigint) as step_seq,
        cast(step_name as varchar) as step_name,
        cast(started_at as timestamptz) as started_at,
        cast(ended_at as timestamptz) as ended_at,
        cast(operator_id as varchar) as operator_id,
        cast(equipment_id as varchar) as equipment_id,
        cast(material_lot_ids as varchar) as material_lot_ids,
        cast(viable_cells_in as double) as viable_cells_in,
        cast(viable_cells_out as double) as viable_cells_out,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
