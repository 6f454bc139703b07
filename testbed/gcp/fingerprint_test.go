package gcp

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

// The provider updates labels from its state: setLabels carries the labels planned from the state and
// the state's labelFingerprint, and the resource is read only after (rules §0, §1, §2, §5). Labels
// changed by hand since the last refresh make that fingerprint stale, and Compute Engine refuses the
// update with 412 conditionNotMet; after a refresh the same update goes through.

const staleFingerprint = "Error 412: Labels fingerprint either invalid or resource labels have changed, conditionNotMet"

// A hand edit changes the fingerprint; a setLabels with the one read before it is refused.
func TestAHandEditChangesTheFingerprint(t *testing.T) {
	f := newFixture(t)
	path := DiskPath("p1", "us-central1-a", "data")
	before, err := f.compute.PutDisk(Disk{Name: "data", Project: "p1", Zone: "us-central1-a", SizeGB: 10, Type: "pd-standard", Labels: map[string]string{"app": "loklak"}})
	if err != nil {
		t.Fatal(err)
	}
	after, err := f.compute.EditDiskLabels(path, func(l map[string]string) { l["owner"] = "ops" })
	if err != nil {
		t.Fatal(err)
	}
	if after.LabelFingerprint == before.LabelFingerprint {
		t.Fatalf("the fingerprint %q did not change with the labels", after.LabelFingerprint)
	}
	if got := f.disk("data").Labels; !same(anyMap(got), anyMap(map[string]string{"app": "loklak", "owner": "ops"})) {
		t.Errorf("labels after the hand edit = %v", got)
	}
	if _, err := f.compute.SetDiskLabels(path, map[string]string{"app": "x"}, before.LabelFingerprint); err == nil || !strings.Contains(err.Error(), staleFingerprint) {
		t.Errorf("setLabels with the fingerprint from before the edit: %v, want the 412", err)
	}
	if _, err := f.compute.SetDiskLabels(path, map[string]string{"app": "x"}, after.LabelFingerprint); err != nil {
		t.Errorf("setLabels with the current fingerprint: %v", err)
	}
}

// labeled is one resource type whose labels change in place.
type labeled struct {
	typ    string
	inputs func(labels map[string]any) map[string]any
	// edit changes the labels by hand, outside the stack.
	edit func(f fixture, id resource.ID) error
	// labels reads the live labels.
	labels func(f fixture, id resource.ID) map[string]string
}

var labeledTypes = []labeled{
	{
		typ:    DiskType,
		inputs: func(l map[string]any) map[string]any { return diskInputs(20, l) },
		edit:   addOwnerToDisk,
		labels: diskLabels,
	},
	{
		typ: RegionDiskType,
		inputs: func(l map[string]any) map[string]any {
			m := regionDiskInputs(200, "us-central1-a", "us-central1-b")
			m["labels"] = l
			return m
		},
		edit:   addOwnerToDisk,
		labels: diskLabels,
	},
	{
		typ: AddressType,
		inputs: func(l map[string]any) map[string]any {
			return map[string]any{"name": "loklak-dumps", "project": "p1", "region": "us-central1", "labels": l}
		},
		edit: func(f fixture, _ resource.ID) error {
			a, err := f.compute.GetAddress("p1", "us-central1", "loklak-dumps")
			if err != nil {
				return err
			}
			labels := map[string]string{"owner": "ops"}
			for k, v := range a.Labels {
				labels[k] = v
			}
			_, err = f.compute.SetAddressLabels("p1", "us-central1", "loklak-dumps", labels, a.LabelFingerprint)
			return err
		},
		labels: func(f fixture, _ resource.ID) map[string]string {
			a, _ := f.compute.GetAddress("p1", "us-central1", "loklak-dumps")
			return a.Labels
		},
	},
}

func addOwnerToDisk(f fixture, id resource.ID) error {
	_, err := f.compute.EditDiskLabels(string(id), func(l map[string]string) { l["owner"] = "ops" })
	return err
}

func diskLabels(f fixture, id resource.ID) map[string]string {
	d, err := f.compute.GetDisk(string(id))
	if err != nil {
		f.t.Fatal(err)
	}
	return d.Labels
}

func TestLabelsChangedByHandFailTheUpdate(t *testing.T) {
	for _, lt := range labeledTypes {
		t.Run(lt.typ, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			u := urn(lt.typ, "r")
			id, inputs, state := f.create(lt.typ, "r", lt.inputs(map[string]any{"app": "loklak"}))
			if err := lt.edit(f, id); err != nil {
				t.Fatal(err)
			}
			calls := len(f.calls())

			// A plain up: the program adds a label; the update sends the state's fingerprint.
			wanted := lt.inputs(map[string]any{"app": "loklak", "env": "dev"})
			news := f.check(lt.typ, "r", inputs, props(wanted))
			_, err := f.p.Update(ctx, plugin.UpdateRequest{URN: u, Type: tokens.Type(lt.typ), ID: id, OldInputs: inputs, OldOutputs: state, NewInputs: news})
			if err == nil || !strings.Contains(err.Error(), staleFingerprint) {
				t.Fatalf("update after a hand edit: %v, want %q", err, staleFingerprint)
			}
			if got, want := f.calls()[calls:], []string{"POST " + lt.setLabelsPath(id)}; !slices.Equal(got, want) {
				t.Errorf("calls = %q, want %q: setLabels first, from the state, and nothing after the 412", got, want)
			}
			if got := lt.labels(f, id); !same(anyMap(got), anyMap(map[string]string{"app": "loklak", "owner": "ops"})) {
				t.Errorf("labels after the refused update = %v, want the hand-edited ones", got)
			}

			// up --refresh: Read takes the live fingerprint and labels into the state, then the same update goes
			// through and keeps the label the stack does not manage.
			refreshed, err := f.p.Read(ctx, plugin.ReadRequest{URN: u, Type: tokens.Type(lt.typ), ID: id, Inputs: inputs, State: state})
			if err != nil {
				t.Fatal(err)
			}
			if refreshed.Outputs["labelFingerprint"].StringValue() == state["labelFingerprint"].StringValue() {
				t.Errorf("the refresh kept the stale fingerprint")
			}
			news = f.check(lt.typ, "r", refreshed.Inputs, props(wanted))
			up, err := f.p.Update(ctx, plugin.UpdateRequest{URN: u, Type: tokens.Type(lt.typ), ID: id, OldInputs: refreshed.Inputs, OldOutputs: refreshed.Outputs, NewInputs: news})
			if err != nil {
				t.Fatalf("update after a refresh: %v", err)
			}
			if got := lt.labels(f, id); !same(anyMap(got), anyMap(map[string]string{"app": "loklak", "env": "dev", "owner": "ops"})) {
				t.Errorf("labels after the update = %v", got)
			}
			// Converged: the program's inputs against the new state plan nothing.
			d, err := f.p.Diff(ctx, plugin.DiffRequest{URN: u, Type: tokens.Type(lt.typ), ID: id, OldInputs: news, OldOutputs: up.Properties, NewInputs: f.check(lt.typ, "r", news, props(wanted))})
			if err != nil || d.Changes != plugin.DiffNone {
				t.Errorf("diff after the update: %v %v (%v), want none", d.Changes, d.ChangedKeys, err)
			}
		})
	}
}

func (lt labeled) setLabelsPath(id resource.ID) string {
	if lt.typ == AddressType {
		return "projects/p1/regions/us-central1/addresses/loklak-dumps/setLabels"
	}
	return string(id) + "/setLabels"
}

// A hand edit of labels does not stand in the way of an update that leaves the labels alone: growing the
// disk sends no setLabels.
func TestAHandEditDoesNotStopAResize(t *testing.T) {
	f := newFixture(t)
	id, inputs, state := f.create(DiskType, "dump-disk", diskInputs(20, map[string]any{"app": "loklak"}))
	if _, err := f.compute.EditDiskLabels(string(id), func(l map[string]string) { l["owner"] = "ops" }); err != nil {
		t.Fatal(err)
	}
	news := f.check(DiskType, "dump-disk", inputs, props(diskInputs(30, map[string]any{"app": "loklak"})))
	if _, err := f.p.Update(context.Background(), plugin.UpdateRequest{URN: urn(DiskType, "dump-disk"), Type: DiskType, ID: id, OldInputs: inputs, OldOutputs: state, NewInputs: news}); err != nil {
		t.Fatal(err)
	}
	if d := f.disk("data"); d.SizeGB != 30 || d.Labels["owner"] != "ops" {
		t.Errorf("disk after the resize = %+v", d)
	}
}

// calls returns the Compute API calls made so far other than reads, as "METHOD path".
func (f fixture) calls() []string {
	f.t.Helper()
	calls, err := f.compute.Calls()
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, c := range calls {
		if c.Method != "GET" {
			out = append(out, c.Method+" "+c.Path)
		}
	}
	return out
}
