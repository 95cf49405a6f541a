"""Source adapters: one module per source product that can hand us its event catalog."""
