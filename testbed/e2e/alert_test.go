//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
)

// The volume alert on the committed dev stack, against the stand-in's Cloud Monitoring: config declares
// it with its threshold and channel; a new threshold updates the policy in place under the same name; a
// channel that does not exist fails the up with the API's answer and leaves the policy as it was.
func TestVolumeAlertOnTheStandIn(t *testing.T) {
	const (
		project = "loklak-server"
		ns      = "alert-dev"
		known   = "projects/loklak-server/notificationChannels/101"
		missing = "projects/loklak-server/notificationChannels/102"
	)
	ctx := context.Background()
	d := newDriver(t)
	gce := openGCE(t, d)
	if err := gce.PutNotificationChannel(gcp.NotificationChannel{Name: known, Type: "email", DisplayName: "ops"}); err != nil {
		t.Fatal(err)
	}
	stack, err := d.CommittedStack(ctx, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string]string{"namespace": ns, "diskName": "alert-dev-data", "diskProtect": "false",
		"volumeAlertPercent": "80", "volumeAlertChannels": known,
		"archiveBucket": ""} { // the archive's protected bucket would stop the plain destroy below
		setConfig(t, stack, key, value)
	}
	t.Cleanup(func() {
		if _, err := stack.Destroy(ctx, optdestroy.ProgressStreams(testLog{T: t})); err != nil {
			t.Errorf("clean-up destroy: %v", err)
		}
	})
	res, err := stack.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := res.Outputs["volumeAlertPolicy"].Value.(string)
	policy := func() map[string]any {
		t.Helper()
		p, err := gce.GetAlertPolicy(name)
		if err != nil {
			t.Fatalf("the policy %q named by the stack output: %v", name, err)
		}
		return p.Policy
	}
	threshold := func(p map[string]any) any { return lookup(p, "conditions.0.conditionThreshold.thresholdValue") }
	got := policy()
	want(t, "threshold", threshold(got), any(0.8))
	if filter, _ := lookup(got, "conditions.0.conditionThreshold.filter").(string); !strings.Contains(filter, `resource.labels.namespace_name = "alert-dev"`) {
		t.Errorf("filter %q does not select the stack's namespace", filter)
	}
	wantDeep(t, "channels", got["notificationChannels"], any([]any{known}))

	setConfig(t, stack, "volumeAlertPercent", "90")
	wantSteps(t, previewChanges(t, stack), []string{"update gcp:monitoring/alertPolicy:AlertPolicy::volume-alert"})
	res, err = stack.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "policy name after the update (in place)", res.Outputs["volumeAlertPolicy"].Value, any(name))
	want(t, "threshold after the update", threshold(policy()), any(0.9))

	setConfig(t, stack, "volumeAlertChannels", missing)
	_, err = stack.Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "Notification channel "+missing+" does not exist") {
		t.Fatalf("up naming a channel that does not exist: %v", err)
	}
	wantDeep(t, "channels after the refused update", policy()["notificationChannels"], any([]any{known}))
	setConfig(t, stack, "volumeAlertChannels", known) // so the clean-up destroy runs the program as deployed
}

func lookup(m map[string]any, path string) any { return object(m).get(path) }
