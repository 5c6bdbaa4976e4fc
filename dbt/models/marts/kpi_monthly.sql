-- Grain: one row per product x calendar month (UTC) of batch start. Batch success, cycle times and QC rates.
-- Success rate = released / dispositioned (released + rejected + exception_release) batches of the month.
with batches as (
    select
        *,
        date_trunc('month', started_at) as month
    from {{ ref('batch_overview') }}
),

qc as (
    -- QC results counted in the month their batch started, like the batch KPIs
    select
        b.product_code,
        date_trunc('month', b.started_at) as month,
        count(*) as qc_results,
        count(*) filter (where q.conformance = 'oos') as qc_oos_results,
        median(q.assay_turnaround_hours) as median_assay_turnaround_hours
    from {{ ref('qc_results_vs_spec') }} as q
    inner join {{ ref('batches') }} as b on q.batch_id = b.batch_id
    group by b.product_code, date_trunc('month', b.started_at)
)

select
    b.product_code,
    b.month,
    count(*) as batches_started,
    count(*) filter (where b.disposition in ('released', 'rejected', 'exception_release')) as batches_dispositioned,
    count(*) filter (where b.disposition = 'released') as batches_released,
    count(*) filter (where b.disposition = 'rejected') as batches_rejected,
    count(*) filter (where b.disposition = 'exception_release') as batches_exception_released,
    count(*) filter (where b.disposition = 'in_process') as batches_in_process,
    count(*) filter (where b.disposition = 'released')
    / nullif(count(*) filter (where b.disposition in ('released', 'rejected', 'exception_release')), 0)
        as batch_success_rate,
    -- right first time: released with no OOS result and no deviation, among dispositioned batches
    avg(case when b.disposition in ('released', 'rejected', 'exception_release') then b.right_first_time::int end)
        as right_first_time_rate,
    median(b.turnaround_days) filter (where b.disposition in ('released', 'exception_release'))
        as median_turnaround_days,
    median(b.vein_to_vein_days) as median_vein_to_vein_days,
    median(b.fold_expansion) as median_fold_expansion,
    sum(b.deviations) as deviations,
    any_value(q.qc_results) as qc_results,
    any_value(q.qc_oos_results) as qc_oos_results,
    any_value(q.qc_oos_results) / nullif(any_value(q.qc_results), 0) as qc_oos_rate,
    any_value(q.median_assay_turnaround_hours) as median_assay_turnaround_hours,
    {{ run_id() }} as _run_id
from batches as b
left join qc as q on b.product_code = q.product_code and b.month = q.month
group by b.product_code, b.month
