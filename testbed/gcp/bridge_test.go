package gcp

import (
	"context"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// What the Pulumi bridge does around the provider's own rules, where the recorded answers
// (conformance_test.go) have no case: the conversion of a string to a number.

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
