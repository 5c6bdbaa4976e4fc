{#-
  Materialization for the curated DuckLake tables: one atomic `CREATE OR REPLACE TABLE ... AS` per model.

  Why not dbt-duckdb's `table`: it builds `<name>__dbt_tmp`, renames, and drops a backup — four DuckLake catalog
  commits per model, and DuckLake keeps writing the table's Parquet files under the temporary name's directory
  (`DATA_PATH/curated/<name>__dbt_tmp/`), which misleads anyone reading the lake. CREATE OR REPLACE is a single
  DuckLake transaction: readers see the old snapshot or the new one, never a gap, and the previous version stays
  reachable through time travel until snapshots are expired. See docs/decisions/0071-curated-ducklake-tables.md.
-#}
{% materialization ducklake_table, adapter='duckdb' %}
  {%- set target_relation = this.incorporate(type='table') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('main') -%}
    create or replace table {{ target_relation }} as (
      {{ sql }}
    )
  {%- endcall %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
