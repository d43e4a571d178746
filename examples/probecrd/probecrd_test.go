// Package probecrd checks the Kubernetes examples against the Go types the
// Prometheus Operator and Kubernetes themselves decode them with. Run it from
// this directory: cd examples/probecrd && go test ./...
package probecrd

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// exporterPort is the exporter's default --web.listen-address port.
const exporterPort = "10517"

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// documents splits a multi-document YAML file.
func documents(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func TestProbeStrict(t *testing.T) {
	var p monitoringv1.Probe
	// UnmarshalStrict fails on any field the operator's types do not know,
	// which is how a misspelt field would silently do nothing in a cluster.
	if err := yaml.UnmarshalStrict(readExample(t, "probe-crd.yaml"), &p); err != nil {
		t.Fatalf("probe-crd.yaml: %v", err)
	}
	if p.APIVersion != monitoringv1.SchemeGroupVersion.String() || p.Kind != monitoringv1.ProbesKind {
		t.Errorf("apiVersion/kind = %s/%s, want %s/%s", p.APIVersion, p.Kind, monitoringv1.SchemeGroupVersion, monitoringv1.ProbesKind)
	}
	s := p.Spec
	if s.ProberSpec.Path != "/probe" {
		t.Errorf("prober.path = %q, want /probe", s.ProberSpec.Path)
	}
	if _, port, err := net.SplitHostPort(s.ProberSpec.URL); err != nil {
		t.Errorf("prober.url = %q, want host:%s: %s", s.ProberSpec.URL, exporterPort, err)
	} else if port != exporterPort {
		t.Errorf("prober.url = %q, want host:%s", s.ProberSpec.URL, exporterPort)
	}
	if s.Module != "default" {
		t.Errorf("module = %q, want default (a module the shipped config.yml defines)", s.Module)
	}
	if s.JobName != "resumption" {
		t.Errorf("jobName = %q, want resumption, the job the mixin's alerts and dashboards select", s.JobName)
	}
	if s.Targets.StaticConfig == nil || len(s.Targets.StaticConfig.Targets) == 0 {
		t.Fatal("no static targets")
	}
	for _, target := range s.Targets.StaticConfig.Targets {
		if _, _, err := net.SplitHostPort(string(target)); err != nil {
			t.Errorf("target %q is not host:port: %v", target, err)
		}
	}
}

func TestKubernetesManifestsStrict(t *testing.T) {
	var sawStatefulSet, sawService, sawPolicy bool
	for i, doc := range documents(readExample(t, "kubernetes.yaml")) {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		switch meta.Kind {
		case "StatefulSet":
			sawStatefulSet = true
			var s appsv1.StatefulSet
			if err := yaml.UnmarshalStrict(doc, &s); err != nil {
				t.Fatalf("StatefulSet: %v", err)
			}
			checkExporterPod(t, s.Spec.Template.Spec, s.Spec.VolumeClaimTemplates)
		case "Service":
			sawService = true
			var s corev1.Service
			if err := yaml.UnmarshalStrict(doc, &s); err != nil {
				t.Fatalf("Service: %v", err)
			}
			if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 10517 {
				t.Errorf("Service ports = %+v, want 10517", s.Spec.Ports)
			}
		case "NetworkPolicy":
			sawPolicy = true
			var p networkingv1.NetworkPolicy
			if err := yaml.UnmarshalStrict(doc, &p); err != nil {
				t.Fatalf("NetworkPolicy: %v", err)
			}
			checkNetworkPolicy(t, p)
		default:
			t.Errorf("document %d: unexpected kind %q", i, meta.Kind)
		}
	}
	if !sawStatefulSet || !sawService || !sawPolicy {
		t.Errorf("want a StatefulSet, a Service and a NetworkPolicy, saw %v %v %v", sawStatefulSet, sawService, sawPolicy)
	}
}

// checkNetworkPolicy checks that the policy selects the exporter, admits
// scrapes only on its port, and keeps its egress off link-local addresses.
func checkNetworkPolicy(t *testing.T, p networkingv1.NetworkPolicy) {
	t.Helper()
	if p.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "resumption-exporter" {
		t.Errorf("podSelector %v does not select the exporter", p.Spec.PodSelector.MatchLabels)
	}
	if len(p.Spec.Ingress) != 1 || len(p.Spec.Ingress[0].From) == 0 || len(p.Spec.Ingress[0].Ports) != 1 || p.Spec.Ingress[0].Ports[0].Port.IntValue() != 10517 {
		t.Errorf("ingress %+v: want one rule, from Prometheus, on 10517", p.Spec.Ingress)
	}
	var blocks int
	for _, rule := range p.Spec.Egress {
		for _, peer := range rule.To {
			if peer.IPBlock == nil {
				continue
			}
			blocks++
			_, cidr, err := net.ParseCIDR(peer.IPBlock.CIDR)
			if err != nil {
				t.Fatal(err)
			}
			if !cidr.Contains(net.ParseIP("169.254.169.254")) {
				continue
			}
			excepted := false
			for _, e := range peer.IPBlock.Except {
				_, ex, err := net.ParseCIDR(e)
				excepted = excepted || err == nil && ex.Contains(net.ParseIP("169.254.169.254"))
			}
			if !excepted {
				t.Errorf("egress to %s lets the exporter reach the metadata service", peer.IPBlock.CIDR)
			}
		}
	}
	if blocks == 0 {
		t.Error("no egress ipBlock: the exporter may reach anything")
	}
}

// checkExporterPod checks what keeps the key history alive across restarts:
// --history.path on a mounted persistent volume, written as a non-root user.
func checkExporterPod(t *testing.T, pod corev1.PodSpec, claims []corev1.PersistentVolumeClaim) {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	var historyPath string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--history.path="); ok {
			historyPath = v
		}
	}
	if historyPath == "" {
		t.Fatalf("container args %q lack --history.path", c.Args)
	}
	var mounted bool
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(historyPath, strings.TrimSuffix(m.MountPath, "/")+"/") {
			for _, claim := range claims {
				mounted = mounted || claim.Name == m.Name
			}
		}
	}
	if !mounted {
		t.Errorf("--history.path=%s is not on a volume from a volumeClaimTemplate", historyPath)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod does not set runAsNonRoot")
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 10517 {
		t.Errorf("container ports = %+v, want 10517", c.Ports)
	}
}
