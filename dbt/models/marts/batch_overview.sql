-- Grain: one row per batch. Product, chain of identity (collection -> batch -> infusion, checked), step
-- durations, cell yields and fold expansion, QC and deviation counts, disposition and cycle times.
with batches as (
    select * from {{ ref('batches') }}
),

collections as (
    select * from {{ ref('collections') }}
),

infusions as (
    -- a batch is infused at most once; keep the first infusion if a site reported more
    select * from {{ ref('infusions') }}
    qualify row_number() over (partition by batch_id order by infused_at) = 1
),

steps as (
    select * from {{ ref('int_batch_steps_summarised') }}
),

qc as (
    select
        batch_id,
        count(*) as qc_results,
        count(*) filter (where conformance = 'oos') as qc_oos_results,
        count(*) filter (where conformance in ('indeterminate', 'no_result', 'no_spec')) as qc_unassessed_results,
        max(tested_at) as last_qc_tested_at
    from {{ ref('int_qc_results_specified') }}
    group by batch_id
),

deviations as (
    select
        batch_id,
        count(*) as deviations,
        count(*) filter (where severity in ('major', 'critical')) as major_critical_deviations,
        count(*) filter (where closed_at is null) as open_deviations
    from {{ ref('deviations') }}
    where batch_id is not null
    group by batch_id
),

shipments as (
    select
        coi_id,
        count(*) as shipments,
        bool_or(temperature_excursion) as any_temperature_excursion
    from {{ ref('shipments') }}
    group by coi_id
),

products as (
    select * from {{ ref('products') }}
)

select
    b.batch_id,
    b.product_code,
    p.product_name,
    b.site,
    b.process_version,
    -- chain of identity
    b.coi_id,
    b.din,
    c.patient_id,
    c.collection_site,
    i.treatment_site,
    (c.coi_id is not null and c.coi_id = b.coi_id and (i.coi_id is null or i.coi_id = b.coi_id)) as coi_verified,
    -- timeline
    c.collected_at,
    c.received_at as apheresis_received_at,
    b.started_at,
    b.ended_at,
    b.disposition,
    b.disposition_at,
    i.infused_at,
    {{ hours_between('b.started_at', 'b.ended_at') }} as manufacturing_hours,
    {{ hours_between('c.received_at', 'b.disposition_at') }} / 24.0 as turnaround_days,
    {{ hours_between('c.collected_at', 'i.infused_at') }} / 24.0 as vein_to_vein_days,
    -- steps
    s.n_steps,
    {%- for step in process_step_names() %}
    s.{{ step }}_hours,
    {%- endfor %}
    -- cells
    c.cd3_count as collected_cd3_cells,
    s.selection_cells_in,
    s.selection_cells_out,
    s.expansion_cells_in,
    s.expansion_cells_out,
    s.final_viable_cells,
    s.expansion_cells_out / nullif(s.expansion_cells_in, 0) as fold_expansion,
    100.0 * s.selection_cells_out / nullif(s.selection_cells_in, 0) as selection_yield_pct,
    100.0 * s.final_viable_cells / nullif(s.harvest_cells_out, 0) as downstream_yield_pct,
    i.dose_cells,
    -- quality
    coalesce(q.qc_results, 0) as qc_results,
    coalesce(q.qc_oos_results, 0) as qc_oos_results,
    coalesce(q.qc_unassessed_results, 0) as qc_unassessed_results,
    q.last_qc_tested_at,
    coalesce(d.deviations, 0) as deviations,
    coalesce(d.major_critical_deviations, 0) as major_critical_deviations,
    coalesce(d.open_deviations, 0) as open_deviations,
    coalesce(sh.shipments, 0) as shipments,
    coalesce(sh.any_temperature_excursion, false) as any_temperature_excursion,
    b.disposition = 'released' and coalesce(q.qc_oos_results, 0) = 0 and coalesce(d.deviations, 0) = 0
        as right_first_time,
    -- lineage
    b._source_sha256,
    b._ingest_run_id,
    {{ run_id() }} as _run_id
from batches as b
left join collections as c on b.din = c.din
left join infusions as i on b.batch_id = i.batch_id
left join steps as s on b.batch_id = s.batch_id
left join qc as q on b.batch_id = q.batch_id
left join deviations as d on b.batch_id = d.batch_id
left join shipments as sh on b.coi_id = sh.coi_id
left join products as p on b.product_code = p.product_code
