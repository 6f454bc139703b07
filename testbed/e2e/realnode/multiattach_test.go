//go:build e2e

package realnode

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/dockerhub"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// TestRollingUpdateToAnotherNodeHitsMultiAttach shows why the program uses Recreate. The Deployment is
// changed by hand to RollingUpdate, and its new pod is sent to another node in the zone: the attach/detach
// controller refuses to attach the ReadWriteOnce disk there while the old pod, on the real node, still
// uses it ("Multi-Attach error"), so on GKE the new pod waits in ContainerCreating and the rollout never
// ends while the old pod runs on. The other node is kwok's, which would mark the new pod Ready without its
// volume; a readiness gate nobody sets holds it unready instead, as GKE's kubelet holds a pod whose volume
// is not attached. The refusal is kube-controller-manager's own.
func TestRollingUpdateToAnotherNodeHitsMultiAttach(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	stack, err := d.CommittedStack(ctx, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "loklak-multi-attach"
	for key, value := range map[string]string{"namespace": ns, "diskName": "loklak-multi-attach", "archiveBucket": "loklak-multi-attach-dumps",
		// Pulumi.yaml pins Docker Hub's rclone by its digest, which no image here has: the same tag.
		"archiverImage": dockerhub.RcloneRef} {
		if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Errorf("clean-up: %v\n%s", err, out)
		}
	})
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	old := readyPod(t, ns, "")
	oldPID := old.pid(t)

	const other = "gke-loklak-default-pool-1"
	if err := cp.AddNode(ctx, other, zone); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The hand-edited Deployment first, while kwok still runs the other node's pod and confirms its
		// deletion; with the node gone first, that pod would wait for the pod garbage collector.
		if _, err := cp.Kubectl(ctx, "-n", ns, "delete", "deployment", serverName, "--wait=true", "--timeout=60s"); err != nil {
			t.Errorf("clean-up: %v", err)
		}
		if _, err := cp.Kubectl(ctx, "delete", "node", other, "--wait=true", "--timeout=60s"); err != nil {
			t.Errorf("clean-up: %v", err)
		}
	})
	// A kubelet marks its node so (enableControllerAttachDetach, the default), and only then does the
	// attach/detach controller, with its Multi-Attach check, act for pods there. kwok does not.
	if _, err := cp.Kubectl(ctx, "annotate", "node", other, "volumes.kubernetes.io/controller-managed-attach-detach=true"); err != nil {
		t.Fatal(err)
	}
	patch := `{"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
	  "template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": "` + other + `"},
	    "readinessGates": [{"conditionType": "loklak.org/volume-attached"}]}}}}`
	if _, err := cp.Kubectl(ctx, "-n", ns, "patch", "deployment", serverName, "--type=merge", "-p", patch); err != nil {
		t.Fatal(err)
	}
	var refusal string
	waitUntil(t, "the attach/detach controller's Multi-Attach refusal", func() bool {
		refusal = multiAttachEvent(t, ns)
		return refusal != ""
	})
	for _, says := range []string{"Multi-Attach error for volume", ns + "-dump", "Volume is already used by pod(s) " + old.Name} {
		if !strings.Contains(refusal, says) {
			t.Errorf("the FailedAttachVolume event %q does not say %q", refusal, says)
		}
	}
	if !gke.ProcessRunning(oldPID) {
		t.Errorf("the old loklak process stopped during the rolling update")
	}

}

// multiAttachEvent returns the message of a FailedAttachVolume event in ns that reports a Multi-Attach
// error, or "".
func multiAttachEvent(t *testing.T, ns string) string {
	t.Helper()
	out, err := cp.Kubectl(context.Background(), "-n", ns, "get", "events", "--field-selector", "reason=FailedAttachVolume", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []struct{ Message string } }
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if strings.Contains(e.Message, "Multi-Attach error") {
			return e.Message
		}
	}
	return ""
}
