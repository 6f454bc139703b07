package gcp

import (
	"context"
	"slices"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

// What the Pulumi bridge does around the provider's own rules, where the recorded answers
// (conformance_test.go) have no case: a change of type through an alias, the inputs an import records,
// the schema defaults Check fills in, and the conversion of a string to a number.

// A disk turned regional (or back) keeps its URN through an alias, so the engine diffs the old type's state
// with the new type. The provider reads that state through the new type's schema only: an input the old
// type alone has is no change.
func TestADiffAcrossTypesUsesTheNewTypesSchema(t *testing.T) {
	f := newFixture(t)
	zonalID, zonalInputs, zonalState := f.create(DiskType, "dump-disk", diskInputs(200, nil))
	regionalID, regionalInputs, regionalState := f.create(RegionDiskType, "dump-disk", func() map[string]any {
		m := regionDiskInputs(200, "us-central1-a", "us-central1-b")
		m["name"] = "data-r"
		return m
	}())
	diff := func(typ string, id resource.ID, inputs, state resource.PropertyMap, news map[string]any) plugin.DiffResult {
		t.Helper()
		checked := f.check(typ, "dump-disk", inputs, props(news))
		d, err := f.p.Diff(context.Background(), plugin.DiffRequest{URN: urn(typ, "dump-disk"), Type: tokens.Type(typ), ID: id,
			OldInputs: inputs, OldOutputs: state, NewInputs: checked})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	toRegional := diff(RegionDiskType, zonalID, zonalInputs, zonalState, regionDiskInputs(200, "us-central1-a", "us-central1-b"))
	if got := replaceKeys(toRegional); !slices.Equal(got, []string{"region", "replicaZones"}) {
		t.Errorf("zonal -> regional: replaces %v, want [region replicaZones] (no zone: a RegionDisk has none)", got)
	}
	toZonal := diff(DiskType, regionalID, regionalInputs, regionalState, func() map[string]any {
		m := diskInputs(200, nil)
		m["name"] = "data-r"
		return m
	}())
	if got := replaceKeys(toZonal); !slices.Equal(got, []string{"zone"}) {
		t.Errorf("regional -> zonal: replaces %v, want [zone] (no region, no replicaZones: a Disk has neither)", got)
	}
	if !toRegional.DeleteBeforeReplace || !toZonal.DeleteBeforeReplace {
		t.Errorf("an explicitly named disk replaced across types is not deleted first")
	}
}

// Import records what was read, less the optional inputs at their default or zero value.
func TestImportLeavesOutDefaults(t *testing.T) {
	f := newFixture(t)
	if _, err := f.p.Configure(context.Background(), plugin.ConfigureRequest{Inputs: props(map[string]any{"project": "p1", "zone": "us-central1-a", "region": "us-central1"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.compute.PutDisk(Disk{Name: "fast", Project: "p1", Zone: "us-central1-a", SizeGB: 10, Type: "pd-ssd"}); err != nil {
		t.Fatal(err)
	}
	res, err := f.p.Read(context.Background(), plugin.ReadRequest{URN: urn(DiskType, "d"), Type: DiskType, ID: "fast"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Inputs["type"]; !got.IsString() || got.StringValue() != "pd-ssd" {
		t.Errorf("an imported pd-ssd disk's type input = %v, want pd-ssd (not the default, so kept)", got)
	}
	for _, key := range []resource.PropertyKey{"description", "labels"} {
		if _, ok := res.Inputs[key]; ok {
			t.Errorf("imported inputs hold %s = %v, an empty value", key, res.Inputs[key])
		}
	}
	if _, err := f.compute.PutAddress(Address{Name: "internal", Project: "p1", Region: "us-central1", Address: "10.0.0.7", AddressType: "INTERNAL", NetworkTier: "PREMIUM"}); err != nil {
		t.Fatal(err)
	}
	a, err := f.p.Read(context.Background(), plugin.ReadRequest{URN: urn(AddressType, "a"), Type: AddressType, ID: "internal"})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Inputs["addressType"]; !got.IsString() || got.StringValue() != "INTERNAL" {
		t.Errorf("an imported INTERNAL address's addressType input = %v", got)
	}
}

// Check fills in the schema's defaults and records them in __defaults.
func TestCheckFillsInSchemaDefaults(t *testing.T) {
	f := newFixture(t)
	in := f.check(AlertPolicyType, "a", nil, props(alertInputs(0.8)))
	if got := in["enabled"]; !got.IsBool() || !got.BoolValue() {
		t.Errorf("enabled = %v, want the default true", got)
	}
	if d := in[defaultsKey]; !d.IsArray() || len(d.ArrayValue()) != 1 || d.ArrayValue()[0].StringValue() != "enabled" {
		t.Errorf("__defaults = %v, want [enabled]", d)
	}
	off := alertInputs(0.8)
	off["enabled"] = false
	if got := f.check(AlertPolicyType, "a", nil, props(off))["enabled"]; got.BoolValue() {
		t.Errorf("enabled: false given, checked as %v", got)
	}
}

// A number given as a string is converted as the bridge converts it; one that does not parse fails the
// whole Check, not as a check failure.
func TestCheckConvertsNumbersLikeTheBridge(t *testing.T) {
	f := newFixture(t)
	in := diskInputs(10, nil)
	in["size"] = "20"
	if got := f.check(DiskType, "d", nil, props(in))["size"]; !got.IsNumber() || got.NumberValue() != 20 {
		t.Errorf(`size "20" checked as %v, want 20`, got)
	}
	in["size"] = "ten"
	_, err := f.p.Check(context.Background(), plugin.CheckRequest{URN: urn(DiskType, "d"), Type: DiskType, News: props(in)})
	if err == nil || err.Error() != `size: strconv.ParseInt: parsing "ten": invalid syntax` {
		t.Errorf(`size "ten": %v, want the bridge's conversion error`, err)
	}
}
