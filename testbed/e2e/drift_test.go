//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// driftCheck is the workflow's drift job: `pulumi preview --refresh --expect-no-changes --diff`. It
// returns what the job's log shows and the command's error.
func driftCheck(t *testing.T, stack auto.Stack) (string, error) {
	t.Helper()
	var out strings.Builder
	_, err := stack.Preview(context.Background(), optpreview.Refresh(), optpreview.ExpectNoChanges(), optpreview.Diff(),
		optpreview.ProgressStreams(&out), optpreview.ErrorProgressStreams(&out))
	return out.String(), err
}

// A hand edit on the cluster (kubectl set image, as `kubectl edit` would) is drift: the drift check
// exits non-zero and its diff names the object, the field and both values. docs/drift.md's
// reconciliation (`pulumi up --refresh`) restores the stack's version, and the check passes again.
func TestDriftCheckReportsAHandEdit(t *testing.T) {
	ctx := context.Background()
	const ns = "drift"
	stack, values, _, pvUID, pvcUID := faultStack(t, ns)
	if out, err := driftCheck(t, stack); err != nil {
		t.Fatalf("the drift check fails on a stack nobody touched: %v\n%s", err, out)
	}

	if _, err := cp.Kubectl(ctx, "-n", ns, "set", "image", "deployment/loklak-server", "loklak=loklak/loklak_server:hand-edited"); err != nil {
		t.Fatal(err)
	}
	out, err := driftCheck(t, stack)
	if err == nil {
		t.Fatalf("the drift check passed after a hand edit:\n%s", out)
	}
	t.Logf("the drift job's log:\n%s", out)
	// The diff names the object and the field, live value first. The preview then fails on the server's
	// dry run of that update: kubectl now owns the field, and a dry-run apply does not take it back.
	for _, part := range []string{"kubernetes:apps/v1:Deployment: (update)",
		fmt.Sprintf("image: %q => %q", "loklak/loklak_server:hand-edited", values["image"]),
		`conflict with "kubectl-set"`} {
		if !strings.Contains(out+err.Error(), part) {
			t.Errorf("the drift check does not show %q", part)
		}
	}

	// docs/drift.md, "Put the stack's version back".
	if _, err := stack.Up(ctx, optup.Refresh()); err != nil {
		t.Fatal(err)
	}
	want(t, "image after reconciling", kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server").str("spec.template.spec.containers.0.image"), values["image"])
	if out, err := driftCheck(t, stack); err != nil {
		t.Errorf("the drift check still fails after reconciling: %v\n%s", err, out)
	}
	assertStorageKept(t, ns, pvUID, pvcUID)
}

// The daily rotation is not drift: `kubectl rollout restart`, run as the rotation's service account,
// stamps the Deployment's pod template with kubectl.kubernetes.io/restartedAt, and the drift check of
// docs/drift.md must still pass afterwards, or every daily drift job would fail after midnight.
func TestDriftCheckPassesAfterARotation(t *testing.T) {
	ctx := context.Background()
	const ns = "drift-rotation"
	stack, _, _, _, _ := faultStack(t, ns)
	if out, err := cp.Kubectl(ctx, "--as", "system:serviceaccount:"+ns+":loklak-server-dump-rotation",
		"-n", ns, "rollout", "restart", "deployment/loklak-server"); err != nil {
		t.Fatalf("the rotation's restart: %v\n%s", err, out)
	}
	annotations, _ := kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server").get("spec.template.metadata.annotations").(map[string]any)
	if got, _ := annotations["kubectl.kubernetes.io/restartedAt"].(string); got == "" {
		t.Fatal("the restart left no restartedAt annotation: nothing was rotated")
	}
	if out, err := driftCheck(t, stack); err != nil {
		t.Fatalf("the drift check fails after a rotation: %v\n%s", err, out)
	}
}
