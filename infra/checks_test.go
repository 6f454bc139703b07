package infra_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/internal/recorder"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
)

// handle is the committed dev stack's disk.
const handle = "projects/loklak-server/zones/us-central1-a/disks/loklak-dev-data"

// runOn runs the program for stack (with overrides) against a fake cluster.
func runOn(t *testing.T, cluster recorder.Cluster, stack string, overrides map[string]string) (*recorder.Recorder, error) {
	t.Helper()
	_, values, err := stackconfig.Load("..", stack)
	if err != nil {
		t.Fatal(err)
	}
	return recorder.Run(t, project, stack, values.With(overrides), cluster.Program)
}

// wantRefused says the program failed with a config error naming key, the value and allowed, and
// registered nothing but the stack itself.
func wantRefused(t *testing.T, rec *recorder.Recorder, err error, key, value, allowed string) {
	t.Helper()
	var invalid *infra.ConfigError
	if !errors.As(err, &invalid) {
		t.Fatalf("err = %v, want a *infra.ConfigError", err)
	}
	msg := strings.Join(invalid.Problems(), "\n")
	for _, part := range []string{"loklak-dumps:" + key, `"` + value + `"`, allowed} {
		if !strings.Contains(msg, part) {
			t.Errorf("message %q does not say %q", msg, part)
		}
	}
	for _, r := range rec.Resources() {
		if r.Type != "pulumi:pulumi:Stack" {
			t.Errorf("registered %s before refusing", r.Key())
		}
	}
}

// With createNamespace false the stack only labels a namespace; a missing one (a typo, a fresh cluster) is
// refused before anything is declared, instead of created by the patch and left behind by destroy.
func TestMissingNamespaceToPatchIsRefused(t *testing.T) {
	cluster := recorder.Cluster{Missing: []string{"wbe"}}
	rec, err := runOn(t, cluster, "prod", map[string]string{"namespace": "wbe"})
	wantRefused(t, rec, err, "namespace", "wbe", "set createNamespace to true")

	// The namespace the stack creates itself needs no such check.
	if _, err := runOn(t, cluster, "prod", map[string]string{"namespace": "wbe", "createNamespace": "true"}); err != nil {
		t.Errorf("createNamespace true: %v", err)
	}
}

// A size below what a PersistentVolume on the disk already holds is refused in every disk mode: the
// API server would refuse the claim's shrink after the volume had been lowered.
func TestShrinkIsRefusedBeforeAnythingChanges(t *testing.T) {
	cluster := recorder.Cluster{Volumes: []infra.Volume{{Name: "loklak-dev-dump", Handle: handle, CapacityGiB: 20}}}
	for _, mode := range []string{"create", "external"} {
		t.Run(mode, func(t *testing.T) {
			rec, err := runOn(t, cluster, "dev", map[string]string{"diskMode": mode, "diskSizeGb": "10"})
			wantRefused(t, rec, err, "diskSizeGb", "10", "at least 20: PersistentVolume loklak-dev-dump on this disk holds 20Gi")
		})
	}
	// Growing a managed disk stays an update in place.
	if _, err := runOn(t, cluster, "dev", map[string]string{"diskSizeGb": "30"}); err != nil {
		t.Errorf("growing a managed disk: %v", err)
	}
	// A new namespace in the same up renames the volume; the old one still says what the disk holds.
	rec, err := runOn(t, cluster, "dev", map[string]string{"namespace": "loklak-other", "diskSizeGb": "10"})
	wantRefused(t, rec, err, "diskSizeGb", "10", "at least 20")

	// The same size, or another disk, are nothing to refuse.
	if _, err := runOn(t, cluster, "dev", map[string]string{"diskSizeGb": "20", "diskMode": "external"}); err != nil {
		t.Errorf("external at the recorded size: %v", err)
	}
	if _, err := runOn(t, cluster, "dev", map[string]string{"diskName": "other-disk", "diskSizeGb": "10"}); err != nil {
		t.Errorf("another disk: %v", err)
	}
}

// In external mode the stack never resizes the disk: a larger claim would make GKE's volume resizer grow
// a disk managed elsewhere.
func TestExternalDiskIsNeverGrownByTheStack(t *testing.T) {
	cluster := recorder.Cluster{Volumes: []infra.Volume{{Name: "loklak-dev-dump", Handle: handle, CapacityGiB: 20}}}
	rec, err := runOn(t, cluster, "dev", map[string]string{"diskMode": "external", "diskSizeGb": "30"})
	wantRefused(t, rec, err, "diskSizeGb", "30", "20, the size PersistentVolume loklak-dev-dump records: in diskMode external")
}

// A disk lost outside the stack (deleted in the console, then dropped from the state by a refresh) is
// never created again blank under the same PersistentVolume, unless diskRecreateBlank says so.
func TestLostDiskIsNotRecreatedBlank(t *testing.T) {
	cluster := recorder.Cluster{Volumes: []infra.Volume{{Name: "loklak-dev-dump", Handle: handle, CapacityGiB: 10}}}
	_, values, err := stackconfig.Load("..", "dev")
	if err != nil {
		t.Fatal(err)
	}
	run := func(overrides map[string]string) (*recorder.Recorder, error) {
		rec := &recorder.Recorder{LostDisks: []string{handle}}
		return rec, rec.Run(t, project, "dev", values.With(overrides), cluster.Program)
	}

	rec, err := run(nil)
	wantRefused(t, rec, err, "diskName", "loklak-dev-data", "PersistentVolume loklak-dev-dump names "+handle+", which Compute Engine no longer has")
	if !strings.Contains(err.Error(), "docs/restore.md") || !strings.Contains(err.Error(), "diskRecreateBlank") {
		t.Errorf("the refusal does not point to the restore runbook and the key: %v", err)
	}

	// The user asks for a blank disk: it is declared as usual.
	rec, err = run(map[string]string{"diskRecreateBlank": "true"})
	if err != nil {
		t.Fatalf("diskRecreateBlank true: %v", err)
	}
	rec.One(t, tDisk)

	// A fresh restore makes a new disk, which no volume names yet: nothing to ask.
	if _, err := run(map[string]string{"diskSourceSnapshot": "loklak-dev-data-snap", "diskName": "loklak-dev-data-2"}); err != nil {
		t.Errorf("a restore: %v", err)
	}
	// The same loss, hidden behind a namespace change in the same up, or in adopt mode, or with the
	// snapshot the disk was once restored from still set (it would come back with old contents): refused.
	for _, overrides := range []map[string]string{
		{"namespace": "loklak-elsewhere"},
		{"diskMode": "adopt"},
		{"diskSourceSnapshot": "loklak-dev-data-snap"},
	} {
		rec, err := run(overrides)
		wantRefused(t, rec, err, "diskName", "loklak-dev-data", "which Compute Engine no longer has")
	}

	// A first deployment (no volume on the disk yet) asks Compute Engine nothing.
	first := &recorder.Recorder{}
	if err := first.Run(t, project, "dev", values, recorder.Cluster{}.Program); err != nil {
		t.Fatal(err)
	}
	if len(first.Invokes) != 0 {
		t.Errorf("a first deployment read %v", first.Invokes)
	}
}

// Turning createNamespace off for the namespace the stack created would make the engine delete it, with the
// claim and loklak in it: refused. A namespace the stack only labels (prod's web) is not affected.
func TestCreatedNamespaceIsNeverLetGo(t *testing.T) {
	cluster := recorder.Cluster{Created: []string{"loklak-dev"}}
	rec, err := runOn(t, cluster, "dev", map[string]string{"createNamespace": "false"})
	wantRefused(t, rec, err, "createNamespace", "false", "namespace loklak-dev is one a loklak-dumps stack created")
	if _, err := runOn(t, cluster, "dev", nil); err != nil {
		t.Errorf("createNamespace true: %v", err)
	}
	if _, err := runOn(t, cluster, "prod", nil); err != nil {
		t.Errorf("prod's web, which the stack only labels: %v", err)
	}
}

// A new clusterIdentifier on the cluster that holds the stack's objects would replace them all there
// (and hang on the claim the pod holds): refused. The identifier is recorded on the PV.
func TestNewClusterIdentifierOnTheSameClusterIsRefused(t *testing.T) {
	pv := infra.Volume{Name: "loklak-dev-dump", Handle: handle, CapacityGiB: 10, ClusterIdentifier: "default"}
	cluster := recorder.Cluster{Volumes: []infra.Volume{pv}}
	rec, err := runOn(t, cluster, "dev", map[string]string{"clusterIdentifier": "gke_other"})
	wantRefused(t, rec, err, "clusterIdentifier", "gke_other", "default, the identifier the stack made its objects under on this cluster")

	rec = mustRun(t, "dev", nil)
	annotations, _ := rec.One(t, tPV).Get("metadata.annotations").(map[string]any)
	want(t, "PV annotation", annotations[infra.ClusterIdentifierAnnotation], any("default"))
}

// The program reads the cluster with the kubeconfig the provider gets: content, a path (~ expanded, as
// pulumi-kubernetes does), and a path that does not exist is named as such.
func TestKubeconfigAsContentOrPath(t *testing.T) {
	const content = `{"apiVersion": "v1", "kind": "Config", "current-context": "c",
  "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
  "users": [{"name": "u", "user": {"token": "t"}}],
  "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}`
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.WriteFile(filepath.Join(home, "kc"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kc := range []string{content, filepath.Join(home, "kc"), "~/kc"} {
		if _, err := infra.NewKubeCluster(infra.KubeConfig{Kubeconfig: kc}); err != nil {
			t.Errorf("kubeconfig %.20q: %v", kc, err)
		}
	}
	_, err := infra.NewKubeCluster(infra.KubeConfig{Kubeconfig: "~/missing-kubeconfig"})
	if err == nil || !strings.Contains(err.Error(), `"~/missing-kubeconfig" is neither a kubeconfig nor a file that exists`) {
		t.Errorf("a missing path: %v", err)
	}
}

// Without any kubeconfig the program says what this stack needs, not client-go's KUBERNETES_MASTER hint.
func TestNoKubeconfigSaysWhatTheStackNeeds(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := infra.NewKubeCluster(infra.KubeConfig{})
	if err == nil {
		t.Fatal("no kubeconfig anywhere, and no error")
	}
	for _, part := range []string{"gcloud container clusters get-credentials", "KUBECONFIG", "kubeconfig key"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not name %q", err, part)
		}
	}
	if strings.Contains(err.Error(), "KUBERNETES_MASTER") {
		t.Errorf("error %q sends the user to KUBERNETES_MASTER", err)
	}
}
