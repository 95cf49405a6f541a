"""LaunchDarkly's REST API, metric event import and OAuth, as the connector uses them.

Only the types in `errors` ever leave these modules, so callers decide retry, fail or
re-authorise by exception type.
"""
