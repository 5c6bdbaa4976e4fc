-- Grain: one row per QC result (sample_id x test_code), joined to the specification version in effect on the
-- day the sample was taken, with its conformance to that specification.
with results as (
    select
        r.*,
        b.product_code
    from {{ ref('qc_results') }} as r
    left join {{ ref('batches') }} as b on r.batch_id = b.batch_id
),

specs as (
    select * from {{ ref('qc_specifications') }}
),

specified as (
    select
        r.sample_id,
        r.test_code,
        r.batch_id,
        r.product_code,
        r.attribute,
        r.result_text,
        r.result_value,
        r.unit,
        r.sampled_at,
        r.tested_at,
        r.reviewed_at,
        r.analyst_id,
        r.method_version,
        r._source_sha256,
        r._source_file,
        r._dq_flags,
        s.spec_id,
        s.spec_version,
        s.result_type,
        s.operator,
        s.lsl,
        s.usl,
        s.unit as spec_unit,
        s.pass_text,
        s.loq,
        coalesce(s.is_cqa, false) as is_cqa,
        -- A censored result ('<0.05', '> 1000') has no result_value; its bound and direction still decide
        -- conformance when the bound lies on the right side of the limit.
        case
            when r.result_value is null and regexp_matches(trim(r.result_text), '^[<>]')
                then left(trim(r.result_text), 1)
        end as censor_direction,
        case
            when r.result_value is null
                then try_cast(regexp_extract(r.result_text, '^\s*[<>]=?\s*([0-9.eE+-]+)', 1) as double)
        end as censor_bound
    from results as r
    left join specs as s
        on
            r.product_code = s.product_code
            and r.attribute = s.attribute
            and s.effective_from <= cast(r.sampled_at as date)
            and (s.effective_to is null or cast(r.sampled_at as date) < s.effective_to)
)

select
    *,
    {{ qc_conformance('result_value', 'result_text', 'censor_direction', 'censor_bound') }} as conformance,
    result_type = 'numeric' and unit is distinct from spec_unit as unit_mismatch
from specified
