-- QC release results exported from the LIMS (CSV).
with source as (
    select * from {{ landing('lims', 'qc_results') }}
),

renamed as (
    select
        cast(sample_id as varchar) as sample_id,
        cast(batch_id as varchar) as batch_id,
        cast(test_code as varchar) as test_code,
        cast(attribute as varchar) as attribute,
        cast(result_text as varchar) as result_text,
        cast(result_value as double) as result_value,
        cast(unit as varchar) as unit,
        cast(sampled_at as timestamptz) as sampled_at,
        cast(tested_at as timestamptz) as tested_at,
        cast(reviewed_at as timestamptz) as reviewed_at,
        cast(analyst_id as varchar) as analyst_id,
        cast(method_version as varchar) as method_version,
        {{ lineage_columns() | indent(8) }}
    from source
)

select * from renamed
