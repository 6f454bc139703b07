//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

const (
	namespace = "loklak-local"
	pvName    = "loklak-local-dump"
	handle    = "projects/loklak-server/zones/us-central1-a/disks/loklak-local-data"
	image1    = "loklak/loklak_server:latest-development"
	image2    = "loklak/loklak_server:e2e-second-image"
)

// The stack's whole life on the real engine: up, a no-op preview, an image update, a disk growth, a
// destroy and a redeploy onto the same disk. Steps run in order and stop at the first failure.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	kubeconfig, err := os.ReadFile(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// The content, with its bearer token: what must never appear in clear.
	secrets := map[string]string{"kubeconfig": string(kubeconfig)}
	values := localValues(t, nil)
	stack, err := d.Stack(ctx, "e2e", values, secrets)
	if err != nil {
		t.Fatal(err)
	}
	var pvUID, pvcUID string

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("up from empty", func(t *testing.T) {
		start := time.Now()
		res, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t}))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("up took %.1f s", time.Since(start).Seconds())
		outputs := map[string]string{}
		for k, v := range res.Outputs {
			outputs[k], _ = v.Value.(string)
		}
		for k, v := range map[string]string{
			"volumeHandle": handle, "diskName": "loklak-local-data", "namespace": namespace,
			"storageClassName": pvName, "persistentVolumeName": pvName, "persistentVolumeClaimName": "dump",
			"deploymentName": "loklak-server", "serviceName": "loklak-server",
			"dumpUrl":             "http://loklak-server.loklak-local.svc.cluster.local:80/dump/",
			"dumpRotationCronJob": rotation,
		} {
			want(t, "output "+k, outputs[k], v)
		}
		if _, ok := res.Outputs["diskId"]; ok {
			t.Errorf("external mode exported diskId")
		}

		sc := kubectlJSON(t, "get", "storageclass", pvName)
		want(t, "StorageClass provisioner", sc.str("provisioner"), "pd.csi.storage.gke.io")
		want(t, "StorageClass reclaimPolicy", sc.str("reclaimPolicy"), "Retain")
		want(t, "StorageClass allowVolumeExpansion", sc.get("allowVolumeExpansion"), any(true))

		pv := kubectlJSON(t, "get", "pv", pvName)
		want(t, "PV csi.driver", pv.str("spec.csi.driver"), "pd.csi.storage.gke.io")
		want(t, "PV csi.volumeHandle", pv.str("spec.csi.volumeHandle"), handle)
		want(t, "PV csi.fsType", pv.str("spec.csi.fsType"), "ext4")
		want(t, "PV reclaim policy", pv.str("spec.persistentVolumeReclaimPolicy"), "Retain")
		want(t, "PV capacity", pv.str("spec.capacity.storage"), "10Gi")
		want(t, "PV zone affinity", pv.str("spec.nodeAffinity.required.nodeSelectorTerms.0.matchExpressions.0.values.0"), zone)
		want(t, "PV phase", pv.str("status.phase"), "Bound")

		pvc := kubectlJSON(t, "-n", namespace, "get", "pvc", "dump")
		want(t, "PVC phase", pvc.str("status.phase"), "Bound")
		want(t, "PVC volumeName", pvc.str("spec.volumeName"), pvName)
		want(t, "PV claimRef.uid is our PVC", pv.str("spec.claimRef.uid"), pvc.str("metadata.uid"))
		pvUID, pvcUID = pv.str("metadata.uid"), pvc.str("metadata.uid")

		dep := kubectlJSON(t, "-n", namespace, "get", "deployment", "loklak-server")
		want(t, "Deployment strategy", dep.str("spec.strategy.type"), "Recreate")
		want(t, "Deployment available replicas", dep.get("status.availableReplicas"), any(float64(1)))
		want(t, "Deployment claim", dep.str("spec.template.spec.volumes.0.persistentVolumeClaim.claimName"), "dump")

		pods := kubectlJSON(t, "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/name=loklak-server")
		want(t, "pods", len(pods.get("items").([]any)), 1)
		pod := object(pods.get("items.0").(map[string]any))
		want(t, "pod phase", pod.str("status.phase"), "Running")
		want(t, "pod node (in the PV's zone)", pod.str("spec.nodeName"), "kwok-node-0")
		want(t, "pod mount path", pod.str("spec.containers.0.volumeMounts.0.mountPath"), "/loklak_server/data")
		want(t, "pod claim", pod.str("spec.volumes.0.persistentVolumeClaim.claimName"), "dump")

		svc := kubectlJSON(t, "-n", namespace, "get", "service", "loklak-server")
		want(t, "Service type", svc.str("spec.type"), "ClusterIP")
		want(t, "Service port", svc.get("spec.ports.0.port"), any(float64(80)))
		want(t, "Service ports", len(svc.get("spec.ports").([]any)), 1)
	})

	step("the API server enforces least privilege", func(t *testing.T) {
		ns := kubectlJSON(t, "get", "namespace", namespace)
		labels, _ := ns.get("metadata.labels").(map[string]any)
		want(t, "Pod Security enforce", labels["pod-security.kubernetes.io/enforce"], any("baseline"))
		// Our pod was admitted under baseline (it is Running); a privileged pod is refused.
		_, err := cp.Kubectl(ctx, "-n", namespace, "run", "privileged", "--image=busybox:1.36", "--privileged", "--dry-run=server")
		if err == nil || !strings.Contains(err.Error(), `violates PodSecurity "baseline`) {
			t.Errorf("a privileged pod was not refused by Pod Security admission: %v", err)
		}
		// What the API server admitted, after its admission plugins ran: no service-account token volume
		// was injected, and nothing is mounted where the token would go.
		pod := kubectlJSON(t, "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/name=loklak-server")
		want(t, "capabilities dropped", pod.str("items.0.spec.containers.0.securityContext.capabilities.drop.0"), "ALL")
		for _, v := range pod.get("items.0.spec.volumes").([]any) {
			if projected := object(v.(map[string]any)).get("projected"); projected != nil {
				t.Errorf("the admitted pod has a projected (token) volume: %v", v)
			}
		}
		for _, m := range pod.get("items.0.spec.containers.0.volumeMounts").([]any) {
			if path := object(m.(map[string]any)).str("mountPath"); strings.HasPrefix(path, "/var/run/secrets/kubernetes.io") {
				t.Errorf("the admitted pod mounts %s", path)
			}
		}
		np := kubectlJSON(t, "-n", namespace, "get", "networkpolicy", "loklak-server")
		want(t, "NetworkPolicy port", np.get("spec.ingress.0.ports.0.port"), any(float64(9000)))

		// The daily dump rotation's identity, as the API server's RBAC authorizer judges it: it may read,
		// watch and patch loklak's Deployment (kubectl rollout restart, then rollout status) and nothing else.
		cron := kubectlJSON(t, "-n", namespace, "get", "cronjob", rotation)
		want(t, "rotation schedule", cron.str("spec.schedule"), "0 0 * * *")
		want(t, "rotation time zone", cron.str("spec.timeZone"), "Etc/UTC")
		want(t, "rotation service account", cron.str("spec.jobTemplate.spec.template.spec.serviceAccountName"), rotation)
		for _, c := range []struct {
			verb, resource string
			allowed        bool
		}{
			{"get", "deployments.apps/loklak-server", true},
			{"patch", "deployments.apps/loklak-server", true},
			{"list", "deployments.apps/loklak-server", true},
			{"watch", "deployments.apps/loklak-server", true},
			{"delete", "deployments.apps/loklak-server", false},
			{"update", "deployments.apps/loklak-server", false},
			{"patch", "deployments.apps/another", false},
			{"list", "deployments.apps", false},
			{"create", "deployments.apps", false},
			{"get", "pods", false},
			{"get", "secrets", false},
			{"patch", "persistentvolumeclaims/dump", false},
		} {
			want(t, "rotation may "+c.verb+" "+c.resource, canI(t, namespace, "system:serviceaccount:"+namespace+":"+rotation, c.verb, c.resource), c.allowed)
		}
	})

	step("the kubeconfig is a secret in the stack file and the state", func(t *testing.T) {
		// The state file as the backend stores it (stack export would decrypt secrets for us).
		state, err := os.ReadFile(filepath.Join(d.StateDir, "backend", ".pulumi", "stacks", "loklak-dumps", "e2e.json"))
		if err != nil {
			t.Fatal(err)
		}
		var kc struct {
			Users []struct {
				User struct{ Token string } `json:"user"`
			} `json:"users"`
		}
		if err := json.Unmarshal(kubeconfig, &kc); err != nil || len(kc.Users) == 0 || kc.Users[0].User.Token == "" {
			t.Fatalf("the loopback kubeconfig has no token: %v", err)
		}
		token := kc.Users[0].User.Token
		if strings.Contains(string(state), token) || strings.Contains(string(state), "certificate-authority-data") {
			t.Errorf("the state holds the kubeconfig in clear")
		}
		var checkpoint struct {
			Checkpoint struct {
				Latest struct {
					Resources []struct {
						Type   string         `json:"type"`
						Inputs map[string]any `json:"inputs"`
					} `json:"resources"`
				} `json:"latest"`
			} `json:"checkpoint"`
		}
		if err := json.Unmarshal(state, &checkpoint); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range checkpoint.Checkpoint.Latest.Resources {
			if r.Type == "pulumi:providers:kubernetes" {
				found = true
				kc, _ := r.Inputs["kubeconfig"].(map[string]any)
				if kc["ciphertext"] == nil {
					t.Errorf("the provider's kubeconfig input is not encrypted in the state: %v", r.Inputs["kubeconfig"])
				}
			}
		}
		if !found {
			t.Errorf("no Kubernetes provider in the state")
		}
		file, err := os.ReadFile(filepath.Join(d.StateDir, "workspace", "Pulumi.e2e.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(file), token) || !strings.Contains(string(file), "loklak-dumps:kubeconfig:\n    secure:") {
			t.Errorf("the stack file does not hold the kubeconfig as a secret:\n%s", file)
		}
	})

	step("a second preview changes nothing", func(t *testing.T) {
		steps, err := harness.PreviewSteps(ctx, stack)
		if err != nil {
			t.Fatal(err)
		}
		if c := changed(steps); len(c) != 0 {
			t.Errorf("preview right after up plans %v, want no changes", c)
		}
		if len(steps) < 8 {
			t.Errorf("preview saw %d resources, want the whole stack", len(steps))
		}
	})

	step("an image update touches only the Deployment and recreates the pod", func(t *testing.T) {
		values = values.With(map[string]string{"image": image2})
		if stack, err = d.Stack(ctx, "e2e", values, nil); err != nil {
			t.Fatal(err)
		}
		steps, err := harness.PreviewSteps(ctx, stack)
		if err != nil {
			t.Fatal(err)
		}
		if got, wantSteps := changed(steps), []string{"update kubernetes:apps/v1:Deployment::loklak-server"}; !slices.Equal(got, wantSteps) {
			t.Fatalf("image update plans %v, want %v", got, wantSteps)
		}
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		assertStorageKept(t, namespace, pvUID, pvcUID)
		dep := kubectlJSON(t, "-n", namespace, "get", "deployment", "loklak-server")
		want(t, "image", dep.str("spec.template.spec.containers.0.image"), image2)
		want(t, "updated replicas", dep.get("status.updatedReplicas"), any(float64(1)))
		want(t, "available replicas", dep.get("status.availableReplicas"), any(float64(1)))
		assertRecreated(t)
	})

	// The disk is external: the stack never resizes it, so a new size is refused before anything changes
	// (TestExternalDiskSizeIsRefusedBeforeAnythingChanges tries both ways).
	step("a new size of the external disk is refused; PV and PVC keep theirs", func(t *testing.T) {
		grown := values.With(map[string]string{"diskSizeGb": "20"})
		grownStack, err := d.Stack(ctx, "e2e", grown, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := harness.PreviewSteps(ctx, grownStack); err == nil || !strings.Contains(err.Error(), "in diskMode external") {
			t.Fatalf("the preview of a grown external disk: %v, want the refusal", err)
		}
		if stack, err = d.Stack(ctx, "e2e", values, nil); err != nil {
			t.Fatal(err)
		}
		assertStorageKept(t, namespace, pvUID, pvcUID)
		want(t, "PV capacity", kubectlJSON(t, "get", "pv", pvName).str("spec.capacity.storage"), "10Gi")
		want(t, "PVC request", kubectlJSON(t, "-n", namespace, "get", "pvc", "dump").str("spec.resources.requests.storage"), "10Gi")
	})

	step("destroy removes only Kubernetes objects; a redeploy finds the same disk", func(t *testing.T) {
		state, err := stack.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(state.Deployment), `"gcp:`) {
			t.Fatalf("external mode state holds a GCP resource")
		}
		res, err := stack.Destroy(ctx, optdestroy.ProgressStreams(testLog{T: t}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Summary.ResourceChanges == nil || (*res.Summary.ResourceChanges)["delete"] == 0 {
			t.Fatalf("destroy deleted nothing: %+v", res.Summary.ResourceChanges)
		}
		// In external mode the disk is not the stack's: nothing here can delete it, and the PV's
		// Retain policy means deleting the PV object never touches the disk either.
		if exists(t, "pv", pvName) {
			t.Errorf("PV %s still exists after destroy", pvName)
		}
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		pv := kubectlJSON(t, "get", "pv", pvName)
		want(t, "redeployed PV handle", pv.str("spec.csi.volumeHandle"), handle)
		want(t, "redeployed PV phase", pv.str("status.phase"), "Bound")
		want(t, "redeployed PVC phase", kubectlJSON(t, "-n", namespace, "get", "pvc", "dump").str("status.phase"), "Bound")
		if _, err := stack.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// assertStorageKept checks the namespace's PV and PVC are the same objects as before (same UIDs) and
// still Bound: nothing replaced, nothing lost.
func assertStorageKept(t *testing.T, ns, pvUID, pvcUID string) {
	t.Helper()
	assertVolumeKept(t, ns, ns+"-dump", "dump", pvUID, pvcUID)
}

// assertVolumeKept is assertStorageKept for a PV and a claim of other names (a regional or restored disk's).
func assertVolumeKept(t *testing.T, ns, pvName, claimName, pvUID, pvcUID string) {
	t.Helper()
	pv := kubectlJSON(t, "get", "pv", pvName)
	pvc := kubectlJSON(t, "-n", ns, "get", "pvc", claimName)
	want(t, "PV uid (replaced?)", pv.str("metadata.uid"), pvUID)
	want(t, "PVC uid (replaced?)", pvc.str("metadata.uid"), pvcUID)
	want(t, "PV phase", pv.str("status.phase"), "Bound")
	want(t, "PVC phase", pvc.str("status.phase"), "Bound")
}

// assertRecreated reads the Deployment controller's events: with Recreate, the old ReplicaSet is scaled
// to zero before the new one is scaled up, so the disk is free before the new pod wants it.
func assertRecreated(t *testing.T) {
	t.Helper()
	events := kubectlJSON(t, "-n", namespace, "get", "events", "--field-selector", "involvedObject.kind=Deployment,reason=ScalingReplicaSet")
	var messages []string
	for _, e := range events.get("items").([]any) {
		messages = append(messages, object(e.(map[string]any)).str("message"))
	}
	// In the order the API server stored them (resourceVersion): timestamps have one-second resolution.
	items := events.get("items").([]any)
	slices.SortFunc(items, func(a, b any) int {
		ra, _ := strconv.Atoi(object(a.(map[string]any)).str("metadata.resourceVersion"))
		rb, _ := strconv.Atoi(object(b.(map[string]any)).str("metadata.resourceVersion"))
		return ra - rb
	})
	messages = messages[:0]
	for _, e := range items {
		messages = append(messages, object(e.(map[string]any)).str("message"))
	}
	down, up := -1, -1
	for i, m := range messages {
		if strings.HasPrefix(m, "Scaled down replica set") && strings.HasSuffix(m, "from 1 to 0") {
			down = i
		}
		if strings.HasPrefix(m, "Scaled up replica set") {
			up = i
		}
	}
	if down < 0 || up < down {
		t.Errorf("want the old ReplicaSet scaled down before the new one scaled up; events: %q", messages)
	}
}

// canI asks the API server (kubectl auth can-i, impersonating user) whether user may do verb on resource
// in namespace ns.
func canI(t *testing.T, ns, user, verb, resource string) bool {
	t.Helper()
	out, err := cp.Kubectl(context.Background(), "auth", "can-i", verb, resource, "-n", ns, "--as", user)
	answer := strings.TrimSpace(string(out))
	switch {
	case answer == "yes":
		return true
	case answer == "no" || strings.HasPrefix(answer, "no - "): // with exit status 1, and any reason the authorizer gave
		return false
	}
	t.Fatalf("kubectl auth can-i %s %s --as %s: %q, %v", verb, resource, user, out, err)
	return false
}
