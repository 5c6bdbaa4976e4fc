-- Grain: one row per product x numeric CQA x batch: an XmR point with its limits, and the Nelson-rule marker.
-- Relations are named schema.table (no database) so the view also resolves where the marts file is attached
-- under another name (make dashboards).
select
    product_code || '|' || attribute || '|' || batch_id as point_key,
    product_code,
    attribute,
    batch_id,
    batch_started_at,
    seq,
    value,
    unit,
    centre,
    ucl,
    lcl,
    in_baseline,
    case when any_rule then value end as nelson_value,
    trim(
        case when rule_1 then '1 ' else '' end
        || case when rule_2 then '2 ' else '' end
        || case when rule_3 then '3 ' else '' end
        || case when rule_5 then '5 ' else '' end
        || case when rule_6 then '6 ' else '' end
        || case when rule_7 then '7' else '' end
    ) as nelson_rules
from {{ source('marts', 'spc_points').include(database=False) }}
