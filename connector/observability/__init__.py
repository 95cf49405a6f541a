"""What an operator sees of the running connector: structured logs with their context
(`context`, `middleware`), Prometheus metrics (`totals`, `prometheus`, `views`), the
LaunchDarkly call log (`launchdarkly`) and optional error tracking (`sentry`)."""
