{% macro points_in_last(n, condition='true') -%}
  {#- How many of the last n points of the series (this one included) meet `condition`: a standard SQL window
      (ROWS frame) that DuckDB and PostgreSQL evaluate alike. Series = product x attribute in seq order. -#}
  sum(case when {{ condition }} then 1 else 0 end) over (
      partition by product_code, attribute order by seq rows between {{ n - 1 }} preceding and current row
  )
{%- endmacro %}
