// Package deploy holds what an operator runs beside HashRelay, and the tests that
// keep it true to the code. The files:
//
//   - prometheus/alerts.yml: Prometheus alert rules on HashRelay's metrics, with
//     unit tests in prometheus/alerts_test.yml (promtool test rules).
//   - grafana/hashrelay.json: a Grafana dashboard, importable as is; it asks for a
//     Prometheus data source (the ${datasource} variable) and an instance.
//   - compose/: HashRelay, Prometheus (with those rules) and Grafana (provisioned
//     with that dashboard) on one host with docker compose.
//   - kubernetes/: a Namespace, ConfigMap, Deployment, Services and
//     PodDisruptionBudget for rolling restarts that lose no share; optional/ has a
//     Prometheus Operator ServiceMonitor.
//   - haproxy/haproxy.cfg: HAProxy balancing miners over several instances,
//     passing their addresses with PROXY protocol v2.
//   - docker/: the passwd and group files the Dockerfile copies into the image.
//
// The Go package is empty: it exists for its tests. They run promtool on the rules,
// on the compose stack's prometheus.yml (with the rules beside it, as the container
// sees them) and on a live /metrics scrape of a proxy with simulated miners, and
// check that every metric the rules and the dashboard query is one the metrics
// package defines. They decode every Kubernetes manifest strictly into the API's
// own types (an unknown or misspelled field fails) and load the compose file with
// the Compose Specification's loader and schema, then check both against each
// other and against HashRelay: every HASHRELAY_ variable is a flag in the README's
// Configuration table, ports and probes name the right listeners, the grace period
// outlasts the drain, the image's user and a writable state directory, ports
// without authentication on loopback or in-cluster only. They run haproxy -c with
// warnings fatal and check that servers get PROXY v2 headers and health checks ask
// /readyz on the HTTP port. Every check also runs on broken copies of its input,
// so it is known to fail when it should. Tests needing promtool or haproxy skip
// when they are not installed (Debian: apt-get install prometheus haproxy),
// unless HASHRELAY_CI=1.
package deploy
