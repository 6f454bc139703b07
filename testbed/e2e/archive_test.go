//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// The archive bucket holds every dump ever archived, so nothing a user does by config may replace or
// delete it: a rename, a location change, a project change and a destroy are refused before any
// Google Cloud call, in a preview and in an up without one; turning the archiver off, and a destroy of
// everything else, leave the bucket and its objects where they are. On kwok's nodes and the stand-in.
func TestArchiveBucketIsNeverReplacedNorDeleted(t *testing.T) {
	ctx := context.Background()
	const bucket = "loklak-safety-dumps"
	d, gce, stack := devOnStandIn(t, map[string]string{"namespace": "loklak-archive", "archiveBucket": bucket})
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	// The archiver is an ordinary container beside loklak (not an init container, so loklak starts even
	// when the archiver's image cannot be pulled), and the pod's fsGroup is the archiver's group.
	wantDeep(t, "loklak's pod's containers", podTemplateContainers(t, "loklak-archive"), []string{"loklak", "archiver"})
	want(t, "the pod's fsGroup", kubectlJSON(t, "-n", "loklak-archive", "get", "deployment", "loklak-server").
		get("spec.template.spec.securityContext.fsGroup"), any(float64(65532)))
	// What an archiver copied: an object the bucket must keep through everything below.
	const object = "dump/own/messages_20170601_00000001.txt.gz"
	dump := []byte("a closed day of loklak's messages\n")
	if err := gce.PutObject(bucket, object, dump); err != nil {
		t.Fatal(err)
	}
	wantKept := func(t *testing.T) {
		t.Helper()
		got, err := gce.ReadObject(bucket, object)
		if err != nil || !bytes.Equal(got, dump) {
			t.Fatalf("gs://%s/%s = %q, %v; want the archived bytes", bucket, object, got, err)
		}
		b, err := gce.GetBucket(bucket)
		if err != nil {
			t.Fatal(err)
		}
		want(t, "bucket location", b.Location, "US-CENTRAL1")
	}
	baseline := configOf(t, stack)
	// The refusals must name the bucket: the protected disk says "marked for protection" too (a project
	// change replaces both), and a test that only looked for the words would pass with the bucket unprotected.
	const bucketURN = "DumpArchive$gcp:storage/bucket:Bucket::bucket"
	refusesBucket := func(out string) bool {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, bucketURN) && (strings.Contains(line, "protect") || strings.Contains(out, "marked for protection")) {
				return true
			}
		}
		return false
	}

	for _, tc := range []struct {
		name   string
		change map[string]string
		// diskFirst: the change replaces the protected disk too, and an up stops at the first refusal,
		// which may be the disk's; the preview names both.
		diskFirst bool
	}{
		{"rename", map[string]string{"archiveBucket": "loklak-safety-dumps-2"}, false},
		{"location", map[string]string{"archiveLocation": "US"}, false},
		{"project", map[string]string{"gcpProject": "loklak-other"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer restoreConfig(t, stack, baseline)
			setValues(t, stack, tc.change)
			calls, before := callCount(t, gce), stackObjects(t)
			var out strings.Builder
			_, err := stack.Preview(ctx, optpreview.ProgressStreams(&out), optpreview.ErrorProgressStreams(&out))
			if err == nil || !refusesBucket(out.String()) {
				t.Errorf("preview of %v: err %v; want the bucket's replacement refused:\n%s", tc.change, err, lastLines(out.String(), 15))
			}
			// An up without a preview: the Automation API runs `pulumi up --yes --skip-preview`.
			out.Reset()
			_, err = stack.Up(ctx, optup.ProgressStreams(&out), optup.ErrorProgressStreams(&out))
			refused := refusesBucket(out.String()) || (tc.diskFirst && strings.Contains(out.String(), "marked for protection"))
			if err == nil || !refused {
				t.Errorf("up without a preview of %v: err %v; want the bucket's replacement refused:\n%s", tc.change, err, lastLines(out.String(), 15))
			}
			wantCalls(t, gce, calls, nil)
			wantDeep(t, "the stack's objects after the refused change", stackObjects(t), before)
			wantKept(t)
		})
	}

	t.Run("archiver off", func(t *testing.T) {
		setValues(t, stack, map[string]string{"archiverEnabled": "false"})
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		wantKept(t)
		wantDeep(t, "loklak's pod's containers with the archiver off", podTemplateContainers(t, "loklak-archive"), []string{"loklak"})
		dep := kubectlJSON(t, "-n", "loklak-archive", "get", "deployment", "loklak-server")
		if fsGroup := dep.get("spec.template.spec.securityContext.fsGroup"); fsGroup != nil {
			t.Errorf("the pod keeps the archiver's fsGroup %v with the archiver off", fsGroup)
		}
		policy, err := gce.GetBucketIAMPolicy(bucket)
		if err != nil {
			t.Fatal(err)
		}
		if len(policy.Bindings) != 0 {
			t.Errorf("bucket grants left with the archiver off: %+v", policy.Bindings)
		}
		if !protectedInState(t, stack, "gcp:storage/bucket:Bucket") {
			t.Errorf("the bucket is no longer protected in the state")
		}
	})

	t.Run("destroy", func(t *testing.T) {
		out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive")
		if err == nil || !strings.Contains(out, "gcp:storage/bucket:Bucket::bucket") {
			t.Errorf("destroy: err %v; want it refused by the protected bucket and disk:\n%s", err, lastLines(out, 15))
		}
		wantKept(t)
		if out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Fatalf("destroy --exclude-protected: %v\n%s", err, out)
		}
		wantKept(t)
		objects, err := gce.Objects(bucket)
		if err != nil {
			t.Fatal(err)
		}
		want(t, "objects after destroy", len(objects), 1)
	})
}

// podTemplateContainers names the containers of loklak's pod template in namespace ns, in order; it
// fails the test if the template has init containers (the archiver was one, a native sidecar, before it
// became an ordinary container).
func podTemplateContainers(t *testing.T, ns string) []string {
	t.Helper()
	dep := kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server")
	if inits := dep.get("spec.template.spec.initContainers"); inits != nil {
		t.Errorf("loklak's pod has init containers: %v", inits)
	}
	var names []string
	containers, _ := dep.get("spec.template.spec.containers").([]any)
	for _, c := range containers {
		names = append(names, object(c.(map[string]any)).str("name"))
	}
	return names
}
