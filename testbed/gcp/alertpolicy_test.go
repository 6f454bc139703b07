package gcp

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

const channel = "projects/p1/notificationChannels/42"

func alertInputs(threshold float64, channels ...any) map[string]any {
	return map[string]any{
		"project": "p1", "displayName": "dumps volume full", "combiner": "OR",
		"conditions": []any{map[string]any{"displayName": "utilization", "conditionThreshold": map[string]any{
			"filter": `metric.type = "kubernetes.io/pod/volume/utilization"`, "comparison": "COMPARISON_GT",
			"thresholdValue": threshold, "duration": "600s"}}},
		"notificationChannels": channels,
	}
}

// Check refuses what the provider's schema refuses, naming the property (monitoring-rules.md §1-3).
func TestAlertPolicyCheckFollowsTheSchema(t *testing.T) {
	f := newFixture(t)
	bad := alertInputs(0.8)
	bad["combiner"] = "XOR"
	delete(bad, "displayName")
	cond := bad["conditions"].([]any)[0].(map[string]any)["conditionThreshold"].(map[string]any)
	cond["comparison"] = "BIGGER"
	delete(cond, "duration")
	res, err := f.p.Check(context.Background(), plugin.CheckRequest{URN: urn(AlertPolicyType, "a"), Type: AlertPolicyType, News: props(bad)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fl := range res.Failures {
		got = append(got, string(fl.Property)+": "+fl.Reason)
	}
	for _, want := range []string{"displayName: Missing required", "combiner: expected combiner to be one of", "conditions[0].conditionThreshold.comparison: expected comparison", "conditions[0].conditionThreshold.duration: Missing required"} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("no failure %q in %q", want, got)
		}
	}
}

// Create: the API assigns the name, which is the ID; a channel that does not exist is refused. A new
// threshold or channel list is patched in place under the same name; a new project replaces the
// policy (monitoring-rules.md §4-6).
func TestAlertPolicyLifecycle(t *testing.T) {
	f := newFixture(t)
	checked := f.check(AlertPolicyType, "a", nil, props(alertInputs(0.8, channel)))
	if _, err := f.p.Create(context.Background(), plugin.CreateRequest{URN: urn(AlertPolicyType, "a"), Type: AlertPolicyType, Properties: checked}); err == nil || !IsNotFound(err) {
		t.Fatalf("create naming a missing channel: %v, want a 404", err)
	}
	if err := f.compute.PutNotificationChannel(NotificationChannel{Name: channel, Type: "email"}); err != nil {
		t.Fatal(err)
	}
	id, inputs, state := f.create(AlertPolicyType, "a", alertInputs(0.8, channel))
	if !strings.HasPrefix(string(id), "projects/p1/alertPolicies/") || state["name"].StringValue() != string(id) {
		t.Fatalf("id %q, name %v: want the API's projects/p1/alertPolicies/ID as both", id, state["name"])
	}

	d := f.diff(AlertPolicyType, "a", id, inputs, state, alertInputs(0.9, channel))
	if d.Changes != plugin.DiffSome || len(replaceKeys(d)) != 0 {
		t.Fatalf("new threshold: %v, replaces %v; want an in-place update", d.Changes, replaceKeys(d))
	}
	news := f.check(AlertPolicyType, "a", inputs, props(alertInputs(0.9, channel)))
	up, err := f.p.Update(context.Background(), plugin.UpdateRequest{URN: urn(AlertPolicyType, "a"), Type: AlertPolicyType, ID: id, OldOutputs: state, NewInputs: news})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.compute.GetAlertPolicy(string(id))
	if err != nil {
		t.Fatal(err)
	}
	threshold := got.Policy["conditions"].([]any)[0].(map[string]any)["conditionThreshold"].(map[string]any)["thresholdValue"]
	if threshold != 0.9 || up.Properties["name"].StringValue() != string(id) {
		t.Errorf("after the update: threshold %v, name %v; want 0.9 under %s", threshold, up.Properties["name"], id)
	}

	moved := alertInputs(0.9, channel)
	moved["project"] = "p2"
	if d := f.diff(AlertPolicyType, "a", id, news, up.Properties, moved); !slices.Contains(replaceKeys(d), "project") {
		t.Errorf("new project: replaces %v, want project", replaceKeys(d))
	}

	if _, err := f.p.Delete(context.Background(), plugin.DeleteRequest{URN: urn(AlertPolicyType, "a"), Type: tokens.Type(AlertPolicyType), ID: id, Outputs: up.Properties}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.compute.GetAlertPolicy(string(id)); !IsNotFound(err) {
		t.Errorf("after delete: %v, want not found", err)
	}
}
