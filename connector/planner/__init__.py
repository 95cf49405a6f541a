"""The planner: where a person picks source events, chooses how each becomes a metric,
reviews the resulting plan and applies it. It sits on top: it reads the catalog
(sources) and the mappings (metrics), and hands the applied plan to the sync engine."""
