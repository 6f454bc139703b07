package gcp

import (
	"context"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// getDisk answers with the disk, and, like the real provider's data source, fails naming the ID of a disk
// that does not exist (the program tells a lost disk by it).
func TestGetDiskAnswersOrSaysNotFound(t *testing.T) {
	f := newFixture(t)
	f.create(DiskType, "dump-disk", map[string]any{
		"name": "loklak-dev-data", "project": "loklak-server", "zone": "us-central1-a", "size": 10, "type": "pd-standard",
	})
	invoke := func(name string) (plugin.InvokeResponse, error) {
		return f.p.Invoke(context.Background(), plugin.InvokeRequest{Tok: GetDiskToken,
			Args: props(map[string]any{"name": name, "project": "loklak-server", "zone": "us-central1-a"})})
	}
	got, err := invoke("loklak-dev-data")
	if err != nil {
		t.Fatal(err)
	}
	if size := got.Properties["size"].NumberValue(); size != 10 {
		t.Errorf("size = %v, want 10", size)
	}
	_, err = invoke("gone")
	const want = "projects/loklak-server/zones/us-central1-a/disks/gone not found"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	if _, err := f.p.Invoke(context.Background(), plugin.InvokeRequest{Tok: "gcp:compute/getImage:getImage"}); err == nil {
		t.Error("an unimplemented data source answered")
	}
}
