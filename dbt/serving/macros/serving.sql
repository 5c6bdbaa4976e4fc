{#- Serving-layer macros: indexes and grants, PostgreSQL only (DuckDB's marts file needs neither). -#}

{% macro dashboard_index_list() -%}
  {#- (table, columns): what the dashboards' filters, x axes and joins use. -#}
  {{ return([
      ('batch_overview', ['product_code', 'started_at']),
      ('batch_overview', ['site']),
      ('kpi_monthly', ['product_code', 'month']),
      ('qc_results_vs_spec', ['product_code', 'attribute', 'sampled_at']),
      ('qc_results_vs_spec', ['batch_id']),
      ('oos_rate_monthly', ['product_code', 'attribute', 'month']),
      ('spc_points', ['product_code', 'attribute', 'seq']),
      ('ppk_cqa', ['product_code', 'attribute']),
      ('bioreactor_hourly', ['batch_id', 'param', 'hour_utc']),
      ('ingest_files_daily', ['received_day']),
      ('pipeline_runs', ['started_at']),
      ('dq_flags_daily', ['ingested_day']),
  ]) }}
{%- endmacro %}


{% macro dashboard_index_name(table, columns) -%}
  ix_{{ table }}__{{ columns | join('_') }}
{%- endmacro %}


{% macro dashboard_indexes() -%}
  {#- Marts are re-created by every publication, so their indexes are too (IF NOT EXISTS keeps reruns quiet);
      ANALYZE gives the planner fresh statistics for the new tables. -#}
  {%- if target.type == 'postgres' -%}
    {%- for table, columns in dashboard_index_list() -%}
      create index if not exists {{ dashboard_index_name(table, columns) }}
        on {{ adapter.quote(target.schema) }}.{{ adapter.quote(table) }} ({{ columns | join(', ') }});
      analyze {{ adapter.quote(target.schema) }}.{{ adapter.quote(table) }};
    {% endfor -%}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}


{% macro grant_bi_read() -%}
  {#- USAGE on the schema and SELECT on every table and view in it, now and (default privileges of the role
      publishing the marts) for tables created later. Only for PostgreSQL and when var('bi_role') is set. -#}
  {%- set role = var('bi_role', none) -%}
  {%- if target.type == 'postgres' and role -%}
    grant usage on schema {{ adapter.quote(target.schema) }} to {{ adapter.quote(role) }};
    grant select on all tables in schema {{ adapter.quote(target.schema) }} to {{ adapter.quote(role) }};
    alter default privileges in schema {{ adapter.quote(target.schema) }}
      grant select on tables to {{ adapter.quote(role) }};
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}
