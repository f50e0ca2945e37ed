// Package deploy holds what an operator runs beside HashRelay, and the tests that
// keep it true to the code:
//
//   - prometheus/alerts.yml: Prometheus alert rules on HashRelay's metrics, with
//     unit tests in prometheus/alerts_test.yml (promtool test rules).
//   - grafana/hashrelay.json: a Grafana dashboard, importable as is; it asks for a
//     Prometheus data source (the ${datasource} variable) and an instance.
//
// The Go package is empty: it exists for its tests, which run promtool on the rules
// and on a live /metrics scrape of a proxy with simulated miners, and check that
// every metric the rules and the dashboard query is one the metrics package
// defines, so renaming a metric breaks a test rather than a dashboard. The
// promtool tests skip when promtool is not installed (Debian: apt-get install
// prometheus), unless HASHRELAY_CI=1.
package deploy
