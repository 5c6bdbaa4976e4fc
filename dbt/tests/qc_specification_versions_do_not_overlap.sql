-- Two versions of one product x attribute specification must never apply on the same day: otherwise a result
-- would be judged against two specs (and counted twice). Returns the overlapping pairs.
select
    a.spec_id,
    b.spec_id as overlapping_spec_id
from {{ ref('qc_specifications') }} as a
inner join {{ ref('qc_specifications') }} as b
    on
        a.product_code = b.product_code
        and a.attribute = b.attribute
        and a.spec_id < b.spec_id
        and a.effective_from < coalesce(b.effective_to, date '9999-12-31')
        and b.effective_from < coalesce(a.effective_to, date '9999-12-31')
