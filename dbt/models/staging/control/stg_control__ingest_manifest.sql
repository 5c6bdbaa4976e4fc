-- Landed files from the ingest manifest (one row per manifest row).
with source as (
    select * from {{ source('control', 'ingest_manifest') }}
),

renamed as (
    select
        cast(seq as bigint) as manifest_seq,
        cast(run_id as varchar) as ingest_run_id,
        cast(received_at as timestamptz) as received_at,
        cast(source_system as varchar) as source_system,
        cast(feed as varchar) as feed,
        cast(instrument_id as varchar) as instrument_id,
        cast(original_name as varchar) as original_name,
        cast(sha256 as varchar) as sha256,
        cast(size_bytes as bigint) as size_bytes
    from source
)

select * from renamed
