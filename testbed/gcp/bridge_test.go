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
// (conformance_test.go) have no case: a change of type through an alias, and the conversion of a string
// to a number.

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
