package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	kubernetesDir  = "kubernetes"
	serviceMonitor = "kubernetes/optional/servicemonitor.yaml"
	containerName  = "hashrelay"
	// alertJob is the job label deploy/prometheus/alerts.yml selects on.
	alertJob = "hashrelay"
)

// kube is the set of manifests in deploy/kubernetes, decoded.
type kube struct {
	namespace  *corev1.Namespace
	configMap  *corev1.ConfigMap
	deployment *appsv1.Deployment
	services   []*corev1.Service
	pdb        *policyv1.PodDisruptionBudget
}

// yamlDocs splits a multi-document YAML file on its "---" lines and drops the
// documents holding only comments.
func yamlDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		for line := range strings.Lines(doc) {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, []byte(doc))
				break
			}
		}
	}
	return docs
}

// decodeManifest decodes one document strictly into the Kubernetes API type its
// apiVersion and kind name: an unknown or misspelled field, a duplicate key or a
// value of the wrong type is an error, as kubectl's server-side field
// validation would make it.
func decodeManifest(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		obj = &corev1.Namespace{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	default:
		return nil, fmt.Errorf("apiVersion %q kind %q: not a type this test knows", tm.APIVersion, tm.Kind)
	}
	// Not yaml.UnmarshalStrict: it converts YAML by the target's field types
	// (19000 into a string field becomes "19000"), and encoding/json matches
	// field names regardless of case, while the API server does neither. This
	// is the API server's own decoding: case-sensitive, unknown and duplicate
	// fields reported with their path.
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err = errors.Join(append(strict, err)...); err != nil {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	return obj, nil
}

// loadKube decodes every manifest of deploy/kubernetes (not optional/).
func loadKube(t *testing.T) *kube {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", kubernetesDir, err)
	}
	k := &kube{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range yamlDocs(b) {
			obj, err := decodeManifest(doc)
			if err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
			if !k.add(obj) {
				t.Fatalf("%s, document %d: a second %T", f, i+1, obj)
			}
		}
	}
	if k.namespace == nil || k.configMap == nil || k.deployment == nil || k.pdb == nil || len(k.services) == 0 {
		t.Fatalf("%s: want a Namespace, a ConfigMap, a Deployment, a PodDisruptionBudget and Services; have %+v", kubernetesDir, k)
	}
	return k
}

// add files obj in k, reporting false for a second object of a kind there is
// one of.
func (k *kube) add(obj any) bool {
	switch o := obj.(type) {
	case *corev1.Namespace:
		if k.namespace != nil {
			return false
		}
		k.namespace = o
	case *corev1.ConfigMap:
		if k.configMap != nil {
			return false
		}
		k.configMap = o
	case *appsv1.Deployment:
		if k.deployment != nil {
			return false
		}
		k.deployment = o
	case *policyv1.PodDisruptionBudget:
		if k.pdb != nil {
			return false
		}
		k.pdb = o
	case *corev1.Service:
		k.services = append(k.services, o)
	}
	return true
}

// deepCopy returns a copy of k that a negative test may break.
func (k *kube) deepCopy() *kube {
	c := &kube{
		namespace:  k.namespace.DeepCopy(),
		configMap:  k.configMap.DeepCopy(),
		deployment: k.deployment.DeepCopy(),
		pdb:        k.pdb.DeepCopy(),
	}
	for _, s := range k.services {
		c.services = append(c.services, s.DeepCopy())
	}
	return c
}

func TestKubernetesStrictDecode(t *testing.T) {
	// The real manifests decode (loadKube fails the test otherwise).
	loadKube(t)

	// And the decoding is strict: each of these breaks a manifest in a way a
	// lenient decoder would not notice.
	for _, c := range []struct{ name, doc, want string }{
		{"misspelled field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n", `unknown field "spec.replica"`},
		{"field at the wrong level", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: 80}]\n  targetPort: http\n", `unknown field "spec.targetPort"`},
		{"probe field misspelled", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSecond: 5}\n", `unknown field "spec.template.spec.containers[0].readinessProbe.periodSecond"`},
		{"duplicate key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  A: \"1\"\n  A: \"2\"\n", `key "A" already set`},
		{"wrong type", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  HASHRELAY_MAX_CONNECTIONS: 19000\n", "cannot unmarshal number"},
		{"field name in the wrong case", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  Replicas: 2\n", `unknown field "spec.Replicas"`},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n", "not a type"},
		{"wrong group", "apiVersion: policy/v1beta2\nkind: PodDisruptionBudget\nmetadata: {name: x}\n", "not a type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeManifest([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v; want one containing %q", err, c.want)
			}
		})
	}
}

func TestYAMLDocs(t *testing.T) {
	docs := yamlDocs([]byte("# only a comment\n---\na: 1\n---   \n\n---\nb: 2\n# c\n"))
	if len(docs) != 2 || !bytes.Contains(docs[0], []byte("a: 1")) || !bytes.Contains(docs[1], []byte("b: 2")) {
		t.Errorf("got %q; want the a and b documents", docs)
	}
}

// kubeProblems cross-checks the manifests against each other and against
// HashRelay: its flags, its user, its endpoints, its shutdown.
func kubeProblems(k *kube, flags map[string]bool, uid int64) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	ns := k.namespace.Name
	for _, m := range []metav1.ObjectMeta{k.configMap.ObjectMeta, k.deployment.ObjectMeta, k.pdb.ObjectMeta} {
		if m.Namespace != ns {
			add("%s: namespace %q; want %q", m.Name, m.Namespace, ns)
		}
	}
	for _, s := range k.services {
		if s.Namespace != ns {
			add("service %s: namespace %q; want %q", s.Name, s.Namespace, ns)
		}
	}

	d := k.deployment
	pod := d.Spec.Template
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchExpressions) > 0 || !selects(d.Spec.Selector.MatchLabels, pod.Labels) {
		add("deployment: selector %v does not select its pod labels %v", d.Spec.Selector, pod.Labels)
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate == nil ||
		!isZero(d.Spec.Strategy.RollingUpdate.MaxUnavailable) {
		add("deployment: strategy %+v; want RollingUpdate with maxUnavailable 0 (a new pod ready before an old one stops)", d.Spec.Strategy)
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}

	// The PDB selects the pods and lets one go.
	if k.pdb.Spec.Selector == nil || len(k.pdb.Spec.Selector.MatchExpressions) > 0 || !selects(k.pdb.Spec.Selector.MatchLabels, pod.Labels) {
		add("pdb: selector %v does not select the pods (%v)", k.pdb.Spec.Selector, pod.Labels)
	}
	if m := k.pdb.Spec.MinAvailable; m == nil || m.Type != intstr.Int || m.IntVal < 1 || m.IntVal >= replicas {
		add("pdb: minAvailable %v; want an integer from 1 to replicas-1 (%d) so drains can evict one pod", m, replicas-1)
	}

	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == containerName {
			c = &pod.Spec.Containers[i]
		}
	}
	if c == nil {
		add("deployment: no container %q", containerName)
		return problems
	}
	ports := make(map[string]corev1.ContainerPort)
	for _, p := range c.Ports {
		ports[p.Name] = p
	}

	// Services: they select the pods, and their targetPorts are container ports.
	for _, s := range k.services {
		if len(s.Spec.Selector) == 0 || !selects(s.Spec.Selector, pod.Labels) {
			add("service %s: selector %v does not select the pods (%v)", s.Name, s.Spec.Selector, pod.Labels)
		}
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.Type != intstr.String {
				add("service %s: targetPort %s is a number; name a container port", s.Name, sp.TargetPort.String())
				continue
			}
			cp, ok := ports[sp.TargetPort.StrVal]
			switch {
			case !ok:
				add("service %s: targetPort %q is no port of container %s", s.Name, sp.TargetPort.StrVal, c.Name)
			case protocol(sp.Protocol) != protocol(cp.Protocol):
				add("service %s: port %s protocol %s; the container's is %s", s.Name, sp.Name, sp.Protocol, cp.Protocol)
			}
		}
	}

	// Configuration: every key is a flag, loaded by envFrom.
	if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
		return e.ConfigMapRef != nil && e.ConfigMapRef.Name == k.configMap.Name
	}) {
		add("container: no envFrom configMapRef %s", k.configMap.Name)
	}
	problems = append(problems, unknownEnv("configmap "+k.configMap.Name, slices.Sorted(maps.Keys(k.configMap.Data)), flags, true)...)
	for _, e := range c.Env {
		problems = append(problems, unknownEnv("container env", []string{e.Name}, flags, false)...)
	}
	env := settings{where: "configmap " + k.configMap.Name, env: k.configMap.Data, problems: &problems}
	if p := env.port("HASHRELAY_LISTEN"); p != ports["stratum"].ContainerPort {
		add("HASHRELAY_LISTEN port %d; container port stratum is %d", p, ports["stratum"].ContainerPort)
	}
	if p := env.port("HASHRELAY_HTTP"); p != ports["http"].ContainerPort {
		add("HASHRELAY_HTTP port %d; container port http is %d", p, ports["http"].ContainerPort)
	}

	// Probes: liveness on /healthz (not the pools), readiness on /readyz (pools
	// and drain), both on the HTTP port.
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			add("container: %s is not an httpGet", pr.name)
			continue
		}
		g := pr.probe.HTTPGet
		if g.Path != pr.path {
			add("container: %s path %q; want %q", pr.name, g.Path, pr.path)
		}
		if g.Port.String() != "http" && g.Port.IntValue() != int(ports["http"].ContainerPort) {
			add("container: %s port %s; want the http port", pr.name, g.Port.String())
		}
	}

	// Shutdown: the drain fits in the grace period, the jitter in the drain.
	shutdown := env.duration("HASHRELAY_SHUTDOWN_TIMEOUT")
	jitter := env.duration("HASHRELAY_RECONNECT_JITTER")
	if jitter >= shutdown {
		add("HASHRELAY_RECONNECT_JITTER %v; want below HASHRELAY_SHUTDOWN_TIMEOUT %v", jitter, shutdown)
	}
	var preStop int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
	}
	grace := int64(30) // Kubernetes' default
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	if need := preStop + int64(shutdown.Seconds()); grace <= need {
		add("terminationGracePeriodSeconds %d; want above preStop %ds + HASHRELAY_SHUTDOWN_TIMEOUT %v", grace, preStop, shutdown)
	}

	// Security: the image's user, nothing writable but the state volume, no
	// privilege.
	sc := c.SecurityContext
	psc := pod.Spec.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if v := firstBool(sc.RunAsNonRoot, psc.RunAsNonRoot); !v {
		add("container: runAsNonRoot not true")
	}
	if v := firstInt(sc.RunAsUser, psc.RunAsUser); v != uid {
		add("container: runAsUser %d; want %d, the Dockerfile's USER", v, uid)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		add("container: readOnlyRootFilesystem not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		add("container: allowPrivilegeEscalation not false")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		add("container: capabilities %+v; want drop ALL, add none", sc.Capabilities)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			add("container: no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			add("container: no %s limit", r)
		}
	}

	// The state directory is a writable volume (the root filesystem is not).
	if dir := k.configMap.Data["HASHRELAY_STATE_DIR"]; dir == "" {
		add("HASHRELAY_STATE_DIR not set: worker counters restart from zero with every container")
	} else {
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
		switch {
		case i < 0:
			add("HASHRELAY_STATE_DIR %s: no volume mounted there (the root filesystem is read-only)", dir)
		case c.VolumeMounts[i].ReadOnly:
			add("HASHRELAY_STATE_DIR %s: mounted read-only", dir)
		case !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[i].Name }):
			add("HASHRELAY_STATE_DIR %s: volume %s is not defined", dir, c.VolumeMounts[i].Name)
		}
	}
	return problems
}

// selects reports whether a matchLabels selector (non-empty) matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func isZero(v *intstr.IntOrString) bool {
	return v != nil && (v.Type == intstr.Int && v.IntVal == 0 || v.Type == intstr.String && v.StrVal == "0%")
}

// protocol is p with Kubernetes' default, TCP.
func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// firstBool is the container's setting if set, else the pod's.
func firstBool(container, pod *bool) bool {
	if container != nil {
		return *container
	}
	return pod != nil && *pod
}

func firstInt(container, pod *int64) int64 {
	if container != nil {
		return *container
	}
	if pod != nil {
		return *pod
	}
	return -1
}

func TestKubernetesManifests(t *testing.T) {
	k := loadKube(t)
	flags := envFlags(t)
	uid := dockerfileUser(t)
	for _, p := range kubeProblems(k, flags, uid) {
		t.Error(p)
	}

	// Each check can fail: break a copy and look for the problem.
	for _, c := range []struct {
		name   string
		mutate func(k *kube)
		want   string
	}{
		{"deployment selector", func(k *kube) { k.deployment.Spec.Selector.MatchLabels["tier"] = "x" }, "deployment: selector"},
		{"service selector", func(k *kube) { k.services[0].Spec.Selector = map[string]string{"app": "other"} }, "does not select the pods"},
		{"service targetPort name", func(k *kube) { k.services[0].Spec.Ports[0].TargetPort = intstr.FromString("stratm") }, `targetPort "stratm"`},
		{"service targetPort number", func(k *kube) { k.services[0].Spec.Ports[0].TargetPort = intstr.FromInt32(3333) }, "is a number"},
		{"pdb selector", func(k *kube) { k.pdb.Spec.Selector.MatchLabels = map[string]string{"app": "x"} }, "pdb: selector"},
		{"pdb blocks drains", func(k *kube) { v := intstr.FromInt32(*k.deployment.Spec.Replicas); k.pdb.Spec.MinAvailable = &v }, "pdb: minAvailable"},
		{"maxUnavailable", func(k *kube) { v := intstr.FromInt32(1); k.deployment.Spec.Strategy.RollingUpdate.MaxUnavailable = &v }, "maxUnavailable 0"},
		{"unknown variable", func(k *kube) { k.configMap.Data["HASHRELAY_SHUTDOWN_TIMOUT"] = "1s" }, "HASHRELAY_SHUTDOWN_TIMOUT is not a flag"},
		{"unprefixed variable", func(k *kube) { k.configMap.Data["GOGC"] = "50" }, "GOGC is not a HASHRELAY_ variable"},
		{"listen port", func(k *kube) { k.configMap.Data["HASHRELAY_LISTEN"] = "0.0.0.0:3334" }, "HASHRELAY_LISTEN port"},
		{"listen loopback", func(k *kube) { k.configMap.Data["HASHRELAY_HTTP"] = "127.0.0.1:8080" }, "binds loopback"},
		{"liveness path", func(k *kube) { pc(k).LivenessProbe.HTTPGet.Path = "/readyz" }, `livenessProbe path "/readyz"`},
		{"readiness port", func(k *kube) { pc(k).ReadinessProbe.HTTPGet.Port = intstr.FromString("stratum") }, "readinessProbe port"},
		{"grace period", func(k *kube) { v := int64(60); k.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds = &v }, "terminationGracePeriodSeconds"},
		{"jitter", func(k *kube) {
			k.configMap.Data["HASHRELAY_RECONNECT_JITTER"] = k.configMap.Data["HASHRELAY_SHUTDOWN_TIMEOUT"]
		}, "HASHRELAY_RECONNECT_JITTER"},
		{"root", func(k *kube) { v := int64(0); pc(k).SecurityContext.RunAsUser = &v }, "runAsUser 0"},
		{"writable root", func(k *kube) { pc(k).SecurityContext.ReadOnlyRootFilesystem = nil }, "readOnlyRootFilesystem"},
		{"escalation", func(k *kube) { v := true; pc(k).SecurityContext.AllowPrivilegeEscalation = &v }, "allowPrivilegeEscalation"},
		{"capabilities", func(k *kube) { pc(k).SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"} }, "capabilities"},
		{"no memory limit", func(k *kube) { delete(pc(k).Resources.Limits, corev1.ResourceMemory) }, "no memory limit"},
		{"state dir unmounted", func(k *kube) { k.configMap.Data["HASHRELAY_STATE_DIR"] = "/state" }, "no volume mounted"},
		{"state dir read-only", func(k *kube) { pc(k).VolumeMounts[0].ReadOnly = true }, "mounted read-only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			broken := k.deepCopy()
			c.mutate(broken)
			if p := kubeProblems(broken, flags, uid); !containsProblem(p, c.want) {
				t.Errorf("problems %q; want one containing %q", p, c.want)
			}
		})
	}
}

// pc is the HashRelay container of k's Deployment.
func pc(k *kube) *corev1.Container {
	cs := k.deployment.Spec.Template.Spec.Containers
	return &cs[slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == containerName })]
}

// monitor is the part of a Prometheus Operator ServiceMonitor the test reads:
// its CRD is not a dependency, so it is decoded as plain YAML.
type monitor struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		JobLabel  string               `json:"jobLabel"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// monitorProblems checks that the ServiceMonitor scrapes exactly one Service's
// /metrics, by port name, as the job the alert rules expect.
func monitorProblems(m *monitor, k *kube) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if m.APIVersion != "monitoring.coreos.com/v1" || m.Kind != "ServiceMonitor" {
		add("servicemonitor: %s %s; want monitoring.coreos.com/v1 ServiceMonitor", m.APIVersion, m.Kind)
	}
	if m.Metadata.Namespace != k.namespace.Name {
		add("servicemonitor: namespace %q; want %q", m.Metadata.Namespace, k.namespace.Name)
	}
	var selected []*corev1.Service
	for _, s := range k.services {
		if len(m.Spec.Selector.MatchExpressions) == 0 && selects(m.Spec.Selector.MatchLabels, s.Labels) {
			selected = append(selected, s)
		}
	}
	if len(selected) != 1 {
		add("servicemonitor: selector %v matches %d services; want 1 (a second would scrape twice)", m.Spec.Selector.MatchLabels, len(selected))
		return problems
	}
	s := selected[0]
	if job := s.Labels[m.Spec.JobLabel]; job != alertJob {
		add("servicemonitor: jobLabel %q gives job %q; the alert rules want job %q", m.Spec.JobLabel, job, alertJob)
	}
	if len(m.Spec.Endpoints) == 0 {
		add("servicemonitor: no endpoints")
	}
	for _, e := range m.Spec.Endpoints {
		if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
			add("servicemonitor: endpoint port %q is no port of service %s", e.Port, s.Name)
		}
		if e.Path != "" && e.Path != "/metrics" {
			add("servicemonitor: endpoint path %q; want /metrics", e.Path)
		}
	}
	return problems
}

func TestKubernetesServiceMonitor(t *testing.T) {
	k := loadKube(t)
	b, err := os.ReadFile(serviceMonitor)
	if err != nil {
		t.Fatal(err)
	}
	var m monitor
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", serviceMonitor, err)
	}
	for _, p := range monitorProblems(&m, k) {
		t.Error(p)
	}
	for _, c := range []struct {
		name   string
		mutate func(m *monitor)
		want   string
	}{
		{"port", func(m *monitor) { m.Spec.Endpoints[0].Port = "metrics" }, `port "metrics"`},
		{"selector", func(m *monitor) {
			m.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "hashrelay"}
		}, "matches 2 services"},
		{"job", func(m *monitor) { m.Spec.JobLabel = "app.kubernetes.io/component" }, `job "metrics"`},
		{"kind", func(m *monitor) { m.Kind = "PodMonitor" }, "want monitoring.coreos.com/v1 ServiceMonitor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var broken monitor
			if err := yaml.Unmarshal(b, &broken); err != nil {
				t.Fatal(err)
			}
			c.mutate(&broken)
			if p := monitorProblems(&broken, k); !containsProblem(p, c.want) {
				t.Errorf("problems %q; want one containing %q", p, c.want)
			}
		})
	}
}
