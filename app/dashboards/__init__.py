"""Dashboards (数据看板): the figures of DOMAIN.md §5 as SQL aggregates (`figures`), and the
page that shows them as charts and cards, their CSV and their drill-down links (`views`)."""
