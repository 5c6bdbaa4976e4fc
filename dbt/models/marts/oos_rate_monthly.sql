-- Grain: one row per product x QC attribute x calendar month (UTC) of sampling: results assessed against their
-- specification and the share out of specification (indeterminate/no-spec results are counted, not rated).
select
    product_code,
    attribute,
    date_trunc('month', sampled_at) as month,
    count(*) as results,
    count(*) filter (where conformance in ('pass', 'oos')) as results_assessed,
    count(*) filter (where conformance = 'oos') as results_oos,
    count(*) filter (where conformance not in ('pass', 'oos')) as results_unassessed,
    count(*) filter (where conformance = 'oos') / nullif(count(*) filter (where conformance in ('pass', 'oos')), 0)
        as oos_rate,
    {{ run_id() }} as _run_id
from {{ ref('qc_results_vs_spec') }}
where product_code is not null
group by product_code, attribute, date_trunc('month', sampled_at)
