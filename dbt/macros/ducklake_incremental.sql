{#-
  Incremental models that replace whole groups (ADR 0141).

  A model materialized `ducklake_incremental` names its group columns (config `replace_groups`, e.g. batch_id,
  equipment_id) and filters its input with `changed_groups_filter(...)`. On the first build, or with
  `--full-refresh`, the filter is `true` and the table is created from everything (one CREATE OR REPLACE, as
  ducklake_table). Otherwise the filter keeps only the groups that new data touches, and the materialization
  deletes those groups from the table and inserts their recomputed rows in one transaction (one DuckLake
  snapshot): rows of other groups are left as they are. Because a group is always recomputed whole from all of
  its input, "latest version per key" and every aggregate over the group come out as a full rebuild would make
  them; the `--full-refresh` test (tests/transform/test_incremental.py) holds the two equal.

  Which groups are touched:
  * `landing='<system>__<entity>'` (curated models): the groups present in landing Parquet files of that feed
    whose SHA-256 the table does not hold yet (`_source_sha256`), i.e. files accepted since the last build;
  * `upstream=ref('<model>')` (marts): the groups of the upstream rows this run wrote (`_run_id`).
  The groups are kept in a temporary table `<model>__changed_groups` of the dbt session for the delete.
-#}

{% macro lakehouse_incremental() -%}
  {#- True when the model's table exists and this is not a full refresh (then only changed groups are built). -#}
  {%- if not execute or model.resource_type != 'model' or should_full_refresh() -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
  {{ return(existing is not none) }}
{%- endmacro %}


{% macro _changed_groups_table() -%}
  {{- return(this.identifier ~ '__changed_groups') -}}
{%- endmacro %}


{% macro changed_groups_filter(landing=none, upstream=none) -%}
  {%- if not lakehouse_incremental() -%}
    true
  {%- else -%}
    {%- set groups = config.require('replace_groups') | join(', ') -%}
    {%- set temp = _changed_groups_table() -%}
    {%- if landing is not none -%}
      {%- set glob = var('lake_root') ~ '/landing/' ~ landing ~ '/*.parquet' -%}
      {%- set new_files_sql -%}
        select file from glob('{{ glob }}')
        where parse_filename(file, true) <> '_schema'
          and parse_filename(file, true) not in (select distinct _source_sha256 from {{ this }})
        order by file
      {%- endset -%}
      {%- set new_files = run_query(new_files_sql).columns[0].values() -%}
      {%- if new_files | length -%}
        {%- set files = "['" ~ (new_files | join("', '")) ~ "']" -%}
        {%- do run_query("create or replace temp table " ~ temp ~ " as select distinct " ~ groups
              ~ " from read_parquet(" ~ files ~ ", union_by_name = true)") -%}
      {%- else -%}
        {%- do run_query("create or replace temp table " ~ temp ~ " as select distinct " ~ groups
              ~ " from " ~ this ~ " where false") -%}
      {%- endif -%}
    {%- else -%}
      {%- do run_query("create or replace temp table " ~ temp ~ " as select distinct " ~ groups ~ " from "
            ~ upstream ~ " where _run_id = " ~ run_id()) -%}
    {%- endif -%}
    ({{ groups }}) in (select {{ groups }} from {{ temp }})
  {%- endif -%}
{%- endmacro %}


{% materialization ducklake_incremental, adapter='duckdb' %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set groups = config.require('replace_groups') | join(', ') -%}
  {%- set incremental = lakehouse_incremental() -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% if incremental %}
    {% call statement('main') -%}
      delete from {{ target_relation }}
      where ({{ groups }}) in (select {{ groups }} from {{ _changed_groups_table() }});
      insert into {{ target_relation }} by name (
        {{ sql }}
      )
    {%- endcall %}
  {% else %}
    {% call statement('main') -%}
      create or replace table {{ target_relation }} as (
        {{ sql }}
      )
    {%- endcall %}
  {% endif %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
